"""The ``processing:`` section of the logwarden configuration file.

    processing:
      inventory: schemas/service_inventory.yaml   # services: team, tier, environment; hosts: owner
                                                   # team, environment, criticality (unset: the
                                                   # inventory shipped with logwarden)
      masking:                                     # what is masked before storage and alerts
        emails: true
        extra_rules: [{name: order-ids, pattern: 'ORD-\\d+', replacement: 'ORD-***'}]
      geoip:                                       # country, AS, city of client/source/destination addresses
        database: embedded                         # embedded (country: geoip2fast; AS number and name:
                                                   # plevin-db-network) or a .mmdb path
        asn_database: GeoLite2-ASN.mmdb            # optional: AS numbers and organisations (.mmdb)
        enabled: true
      threat_intel:                                # indicator files: plain lists, CSV, MISP CSV, STIX 2.1 JSON
        files: [bad-ips.txt, {path: feeds/stix.json, name: vendor-x, confidence: 90}]
        reload: 10s                                # how often the files are looked at for changes
      users: users.csv                             # user directory: user_id, name, department, privileged

The masking keys and their defaults are the fields of
:class:`~logwarden.processing.masking.MaskingConfig`.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from logwarden.common.yamlconf import (
    ConfigError, check_bool, check_duration, check_int, check_mapping, check_str, check_str_list, describe,
)
from logwarden.processing.enrich import Context, Inventory
from logwarden.processing.geoip import EMBEDDED, GeoConfig, check_database
from logwarden.processing.threatintel import DEFAULT_CONFIDENCE, DEFAULT_RELOAD, Indicators, ThreatConfig, \
    ThreatFeed, read_feed
from logwarden.processing.users import UsersConfig, read_directory
from logwarden.processing.masking import MaskingConfig
from logwarden.schemas import SERVICE_INVENTORY_PATH

SECTION = "processing"
KEYS = ("inventory", "masking", "geoip", "threat_intel", "users")
GEOIP_KEYS = ("database", "asn_database", "enabled")
THREAT_KEYS = ("files", "reload")
FEED_KEYS = ("path", "name", "confidence")
USERS_KEYS = ("path", "reload")
RULE_KEYS = ("name", "pattern", "replacement")


def shipped_inventory() -> Inventory:
    """The service inventory shipped with logwarden (empty if it is not installed)."""
    return Inventory.load(SERVICE_INVENTORY_PATH if SERVICE_INVENTORY_PATH.exists() else None)


@dataclass(frozen=True)
class ProcessingConfig:
    """The service inventory, the masking rules, and the security context (GeoIP, threat intelligence,
    user directory), which enrichment reaches through ``inventory.context``."""

    inventory: Inventory = field(default_factory=shipped_inventory)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    geoip: GeoConfig = field(default_factory=GeoConfig)
    threat_intel: ThreatConfig = field(default_factory=ThreatConfig)
    users: UsersConfig = field(default_factory=UsersConfig)

    def __post_init__(self) -> None:
        context = Context(self.geoip, self.threat_intel, self.users)
        object.__setattr__(self, "inventory", dataclasses.replace(self.inventory, context=context))

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
        if section.get("geoip") is not None:
            kwargs["geoip"] = _geoip(section["geoip"])
        if section.get("threat_intel") is not None:
            kwargs["threat_intel"] = _threat_intel(section["threat_intel"])
        if section.get("users") is not None:
            kwargs["users"] = _users(section["users"])
        return cls(**kwargs)


def _path(value: Any, where: tuple) -> str:
    path = Path(check_str(value, where)).expanduser()
    if not path.is_file():
        raise ConfigError.at(where, f"no such file: {path}")
    return str(path)


def _geoip(value: Any) -> GeoConfig:
    where = (SECTION, "geoip")
    value = check_mapping(value, where, GEOIP_KEYS)
    database = check_str(value.get("database", EMBEDDED), (*where, "database"))
    if database != EMBEDDED:
        database = _path(database, (*where, "database"))
    asn = value.get("asn_database")
    config = GeoConfig(database=database,
                       asn_database=None if asn is None else _path(asn, (*where, "asn_database")),
                       enabled=check_bool(value.get("enabled", True), (*where, "enabled")))
    try:
        check_database(config)
    except ValueError as exc:
        raise ConfigError.at(where, str(exc)) from None
    return config


def _threat_intel(value: Any) -> ThreatConfig:
    where = (SECTION, "threat_intel")
    value = check_mapping(value, where, THREAT_KEYS)
    files = _list(value.get("files", []), (*where, "files"))
    feeds = tuple(_feed(item, (*where, "files", index)) for index, item in enumerate(files))
    reload = check_duration(value.get("reload", DEFAULT_RELOAD), (*where, "reload"), positive=True)
    return ThreatConfig(feeds, reload)


def _feed(value: Any, where: tuple) -> ThreatFeed:
    """One indicator file (a path, or {path, name, confidence}), read once here so a bad file is refused."""
    value, path = _file_entry(value, where, FEED_KEYS, "an indicator file needs a path (and may have name, confidence)")
    name = check_str(value.get("name", Path(path).stem), (*where, "name"))
    confidence = check_int(value.get("confidence", DEFAULT_CONFIDENCE), (*where, "confidence"), 0, 100)
    feed = ThreatFeed(path, name, confidence)
    try:
        read_feed(feed, Indicators())
    except (ValueError, OSError) as exc:
        raise ConfigError.at(where, str(exc)) from None
    return feed


def _file_entry(value: Any, where: tuple, keys: tuple[str, ...], missing: str) -> tuple[dict, str]:
    """A file entry written as a path or as a mapping with ``path`` (and ``keys``): the mapping and the path."""
    path_at = where if isinstance(value, str) else (*where, "path")
    if isinstance(value, str):
        value = {"path": value}
    value = check_mapping(value, where, keys)
    if "path" not in value:
        raise ConfigError.at(where, missing)
    return value, _path(value["path"], path_at)


def _users(value: Any) -> UsersConfig:
    where = (SECTION, "users")
    value, path = _file_entry(value, where, USERS_KEYS, "the user directory needs a path (and may have reload)")
    try:
        read_directory(path)
    except ConfigError as exc:  # located in the directory file: keep its own file and line
        raise ConfigError.at(where, str(exc)) from None
    except (ValueError, OSError) as exc:
        raise ConfigError.at(where, str(exc)) from None
    return UsersConfig(path, check_duration(value.get("reload", DEFAULT_RELOAD), (*where, "reload"), positive=True))


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
