"""The ``processing:`` section of the logwarden configuration file.

    processing:
      inventory: schemas/service_inventory.yaml   # service metadata: team, tier, environment
      masking:                                     # what is masked before storage and alerts
        emails: true
        extra_rules: [{name: order-ids, pattern: 'ORD-\\d+', replacement: 'ORD-***'}]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logwarden.schemas import SERVICE_INVENTORY_PATH
from logwarden.common.yamlconf import ConfigError
from logwarden.processing.enrich import Inventory
from logwarden.processing.masking import MaskingConfig

DEFAULT_INVENTORY = SERVICE_INVENTORY_PATH
KEYS = ("inventory", "masking")


@dataclass(frozen=True)
class ProcessingConfig:
    """The service inventory and the masking rules."""

    inventory: Inventory = field(default_factory=Inventory)
    masking: MaskingConfig = field(default_factory=MaskingConfig)

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None) -> "ProcessingConfig":
        """The config from the ``processing`` mapping (None: defaults, with the shipped inventory)."""
        section = section or {}
        if not isinstance(section, dict) or set(section) - set(KEYS):
            raise ConfigError("processing", None, f"section 'processing' takes only: {', '.join(KEYS)}")
        path = section.get("inventory", DEFAULT_INVENTORY if DEFAULT_INVENTORY.exists() else None)
        try:
            masking = MaskingConfig.from_dict(section.get("masking") or {})
        except (TypeError, ValueError) as exc:
            raise ConfigError("processing", None, f"masking: {exc}") from None
        return cls(inventory=Inventory.load(Path(path) if path else None), masking=masking)
