"""Collector configuration: the ``collector:`` section of the logwarden config file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collector.ingest import BatchPolicy
from collector.validation import SkewLimits
from logwarden.common.durations import parse_duration


@dataclass
class CollectorConfig:
    """Where the collector listens and how it batches and limits input."""

    host: str = "127.0.0.1"
    http_port: int = 8080
    tcp_port: int = 5170
    max_body_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 1024 * 1024
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    skew: SkewLimits = field(default_factory=SkewLimits)
    tokens: dict[str, str] = field(default_factory=dict)  # bearer token -> tenant
    default_tenant: str = "default"

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None) -> "CollectorConfig":
        """Build from the ``collector:`` mapping of a config file (unknown keys are refused)."""
        section = dict(section or {})
        batch = section.pop("batch", {}) or {}
        skew = section.pop("timestamp_skew", {}) or {}
        config = cls(**section)
        config.batch = BatchPolicy(max_records=int(batch.get("max_records", 50_000)),
                                   max_age=parse_duration(batch.get("max_age", 1.0)))
        config.skew = SkewLimits(max_future=parse_duration(skew.get("max_future", 3600)),
                                 max_past=parse_duration(skew.get("max_past", 30 * 86400)))
        return config
