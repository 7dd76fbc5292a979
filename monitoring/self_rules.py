"""``monitoring.self_rules``: the thresholds of the alerts logwarden raises about itself.

    monitoring:
      self_rules:
        enabled: true                  # every self-rule (default true)
        disabled: [spool_backlog]      # or some of them off
        ingestion_stopped_after: 5m    # no record came in for this long, while sources are known
        backlog_for: 10m               # the spool's backlog grew (and its oldest batch waited) for this long
        backlog_min_batches: 10        # ... and holds at least this many batches
        disk_low_water: 1GiB           # free space of the data dir under this
        worker_lost_for: 2m            # a Dask worker or a Ray detector actor missing for this long
        channel_failing_for: 5m        # an alert channel failing for this long (sent through the others)

The defaults are the fields of :class:`SelfRulesConfig`; the rules themselves are built by the wiring
(``logwarden.selfrules``). ``batch_quarantined`` has no threshold: it fires for each quarantined batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from logwarden.collector.config import parse_size
from logwarden.common.yamlconf import ConfigError, check_bool, check_duration, check_int, check_mapping, \
    check_str_list

PATH = ("monitoring", "self_rules")
INGESTION_STOPPED = "ingestion_stopped"
SPOOL_BACKLOG = "spool_backlog"
BATCH_QUARANTINED = "batch_quarantined"
DISK_LOW = "disk_low"
DASK_WORKER_LOST = "dask_worker_lost"
RAY_ACTOR_LOST = "ray_actor_lost"
CHANNEL_FAILING = "channel_failing"
RULE_NAMES = (INGESTION_STOPPED, SPOOL_BACKLOG, BATCH_QUARANTINED, DISK_LOW, DASK_WORKER_LOST, RAY_ACTOR_LOST,
              CHANNEL_FAILING)
DURATIONS = ("ingestion_stopped_after", "backlog_for", "worker_lost_for", "channel_failing_for")
KEYS = ("enabled", "disabled", *DURATIONS, "backlog_min_batches", "disk_low_water")


@dataclass(frozen=True)
class SelfRulesConfig:
    """Which self-rules run, and their thresholds (seconds, batches, bytes)."""

    enabled: bool = True
    disabled: tuple[str, ...] = ()
    ingestion_stopped_after: float = 300.0
    backlog_for: float = 600.0
    backlog_min_batches: int = 10
    disk_low_water: int = 1024 ** 3
    worker_lost_for: float = 120.0
    channel_failing_for: float = 300.0

    def active(self, rule: str) -> bool:
        """Whether self-rule ``rule`` runs."""
        return self.enabled and rule not in self.disabled

    @classmethod
    def from_dict(cls, section: Any) -> "SelfRulesConfig":
        """The config from the ``monitoring.self_rules`` mapping (None: the defaults); raises ConfigError
        with the key path (``monitoring.self_rules.backlog_for``) on an unknown key or a bad value."""
        section = check_mapping(section, PATH, KEYS)
        kwargs: dict[str, Any] = {}
        if "enabled" in section:
            kwargs["enabled"] = check_bool(section["enabled"], (*PATH, "enabled"))
        if "disabled" in section:
            names = check_str_list(section["disabled"], (*PATH, "disabled"))
            for index, name in enumerate(names):
                if name not in RULE_NAMES:
                    raise ConfigError.at((*PATH, "disabled", index),
                                         f"unknown self-rule {name!r} (known: {', '.join(RULE_NAMES)})")
            kwargs["disabled"] = names
        for key in DURATIONS:
            if key in section:
                kwargs[key] = check_duration(section[key], (*PATH, key), positive=True)
        if "backlog_min_batches" in section:
            kwargs["backlog_min_batches"] = check_int(section["backlog_min_batches"], (*PATH, "backlog_min_batches"),
                                                      minimum=1)
        if "disk_low_water" in section:
            kwargs["disk_low_water"] = parse_size(section["disk_low_water"], (*PATH, "disk_low_water"))
        return cls(**kwargs)
