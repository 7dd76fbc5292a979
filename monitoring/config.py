"""The ``monitoring:`` section of the logwarden configuration file: what ``logwarden up`` runs the
detectors from.

    monitoring:
      rules: /etc/logwarden/rules.yaml   # the rules file: detectors and severity routing (--rules overrides)
      idle_advance_after: 5s             # with no batch for this long, event time moves on with the
                                         # wall clock (so that silence is detected on idle sources)
      self_rules: {disk_low_water: 2GiB}  # the alerts logwarden raises about itself (monitoring/self_rules.py)
      rule_actors: grouped               # grouped: the ML rules share one Ray actor, the other rules another
                                         # (a sharded rule has one per shard); per_rule: one actor per rule

The defaults are the fields of :class:`MonitoringConfig`. What each detector does (windows,
allowed lateness, shards) is declared per rule in the rules file, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logwarden.common.yamlconf import ConfigError, check_duration, check_mapping, check_str
from logwarden.monitoring.self_rules import SelfRulesConfig
from logwarden.schemas import ANOMALY_SCHEMA_PATH

SECTION = "monitoring"
KEYS = ("rules", "idle_advance_after", "self_rules", "rule_actors")
RULE_ACTORS = ("grouped", "per_rule")


@dataclass(frozen=True)
class MonitoringConfig:
    """The rules file and how event time moves on when sources are idle."""

    rules: Path = ANOMALY_SCHEMA_PATH  # the shipped schemas/anomaly_schema.yaml
    idle_advance_after: float = 5.0  # seconds
    self_rules: SelfRulesConfig = field(default_factory=SelfRulesConfig)
    rule_actors: str = "grouped"  # one of RULE_ACTORS

    @classmethod
    def from_dict(cls, section: Any) -> "MonitoringConfig":
        """The config from the ``monitoring`` mapping (None: the defaults); raises ConfigError with the
        key path (``monitoring.rules``) on an unknown key or a bad value."""
        section = check_mapping(section, (SECTION,), KEYS)
        kwargs: dict[str, Any] = {}
        if section.get("rules") is not None:
            path = Path(check_str(section["rules"], (SECTION, "rules"))).expanduser()
            if not path.is_file():
                raise ConfigError.at((SECTION, "rules"), f"no such file: {path}")
            kwargs["rules"] = path
        if "idle_advance_after" in section:
            kwargs["idle_advance_after"] = check_duration(section["idle_advance_after"],
                                                          (SECTION, "idle_advance_after"), positive=True)
        if "rule_actors" in section:
            value = check_str(section["rule_actors"], (SECTION, "rule_actors"))
            if value not in RULE_ACTORS:
                raise ConfigError.at((SECTION, "rule_actors"), f"{value!r} is not one of {', '.join(RULE_ACTORS)}")
            kwargs["rule_actors"] = value
        if "self_rules" in section:
            kwargs["self_rules"] = SelfRulesConfig.from_dict(section["self_rules"])
        return cls(**kwargs)
