"""The ``processing:`` section of the logwarden configuration file.

    processing:
      inventory: schemas/service_inventory.yaml   # service metadata: team, tier, environment
                                                   # (unset: the inventory shipped with logwarden)
      masking:                                     # what is masked before storage and alerts
        emails: true
        extra_rules: [{name: order-ids, pattern: 'ORD-\\d+', replacement: 'ORD-***'}]

The masking keys and their defaults are the fields of
:class:`~logwarden.processing.masking.MaskingConfig`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from logwarden.common.yamlconf import (
    ConfigError, check_bool, check_mapping, check_str, check_str_list, describe,
)
from logwarden.processing.enrich import Inventory
from logwarden.processing.masking import MaskingConfig
from logwarden.schemas import SERVICE_INVENTORY_PATH

SECTION = "processing"
KEYS = ("inventory", "masking")
RULE_KEYS = ("name", "pattern", "replacement")


def shipped_inventory() -> Inventory:
    """The service inventory shipped with logwarden (empty if it is not installed)."""
    return Inventory.load(SERVICE_INVENTORY_PATH if SERVICE_INVENTORY_PATH.exists() else None)


@dataclass(frozen=True)
class ProcessingConfig:
    """The service inventory and the masking rules."""

    inventory: Inventory = field(default_factory=shipped_inventory)
    masking: MaskingConfig = field(default_factory=MaskingConfig)

    @classmethod
    def from_dict(cls, section: Any) -> "ProcessingConfig":
        """The config from the ``processing`` mapping (None: the defaults).

        Raises ConfigError with the key path (``processing.masking.emails``) on an unknown key or a bad value.
        """
        section = check_mapping(section, (SECTION,), KEYS)
        kwargs: dict[str, Any] = {}
        if section.get("inventory") is not None:
            kwargs["inventory"] = _inventory(section["inventory"])
        if section.get("masking") is not None:
            kwargs["masking"] = _masking(section["masking"])
        return cls(**kwargs)


def _inventory(value: Any) -> Inventory:
    where = (SECTION, "inventory")
    path = Path(check_str(value, where)).expanduser()
    try:
        return Inventory.load(path)
    except ConfigError as exc:  # located in the inventory file: keep its own file and line
        raise ConfigError.at(where, str(exc)) from None


def _masking(value: Any) -> MaskingConfig:
    where = (SECTION, "masking")
    known = tuple(f.name for f in fields(MaskingConfig))
    value = check_mapping(value, where, known)
    clean: dict[str, Any] = {}
    for name, raw in value.items():
        at = (*where, name)
        if name == "mask":
            clean[name] = check_str(raw, at)
        elif name == "secret_keys":
            clean[name] = check_str_list(raw, at)
        elif name == "extra_rules":
            clean[name] = tuple(_rule(item, (*at, index)) for index, item in enumerate(_list(raw, at)))
        else:
            clean[name] = check_bool(raw, at)
    try:
        return MaskingConfig.from_dict(clean)
    except (TypeError, ValueError) as exc:
        raise ConfigError.at(where, str(exc)) from None


def _list(value: Any, where: tuple) -> list:
    if not isinstance(value, list):
        raise ConfigError.at(where, f"expected a list, got {describe(value)}")
    return value


def _rule(value: Any, where: tuple) -> dict[str, str]:
    value = check_mapping(value, where, RULE_KEYS)
    for name in ("name", "pattern"):
        if name not in value:
            raise ConfigError.at(where, f"a masking rule needs {', '.join(RULE_KEYS[:2])} (and may have replacement)")
    rule = {name: check_str(raw, (*where, name), empty=name == "replacement") for name, raw in value.items()}
    try:
        re.compile(rule["pattern"])
    except re.error as exc:
        raise ConfigError.at((*where, "pattern"), f"invalid regular expression: {exc}") from None
    return rule
