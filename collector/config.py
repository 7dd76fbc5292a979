"""Collector configuration: the ``collector:`` section of the logwarden config file.

Every key is optional; unknown keys are refused with the list of known ones::

    collector:
      host: 127.0.0.1
      http_port: 8080
      tcp_port: 5170              # newline-delimited JSON
      syslog_port: 5514           # RFC 6587 over TCP, and UDP on the same number; null disables.
                                  # When left at the default and 5514 is taken, the collector runs
                                  # without syslog (and says so); a port set here or with
                                  # --syslog-port must bind.
      udp_syslog: true
      tokens: {s3cr3t: acme}      # bearer token -> tenant; without tokens only loopback clients
      default_tenant: default     # the tenant of loopback HTTP clients when no tokens are configured
      stream_tenant: default      # the tenant of TCP and syslog input
      stream_networks: [127.0.0.0/8, "::1/128"]   # who may send TCP and syslog input
      tls: {cert_file: cert.pem, key_file: key.pem}   # TLS on HTTP, TCP and syslog TCP
      max_body_bytes: 64MiB
      max_line_bytes: 1MiB
      max_fields: 1000
      max_depth: 32
      memory_budget_bytes: 256MiB
      body_timeout: 30s
      idle_timeout: 5m
      spool_high_water: 1000      # /ready turns false past this many waiting batches
      min_free_disk_bytes: 256MiB
      columnar: true              # the vectorized validation fast path
      batch: {max_records: 50000, max_age: 1s, max_bytes: 64MiB}
      timestamp_skew: {max_future: 1h, max_past: 30d}
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from logwarden.collector.ingest import BatchPolicy
from logwarden.collector.validation import RecordLimits, SkewLimits
from logwarden.common.durations import parse_duration

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_size(value: Any, name: str) -> int:
    """Bytes in ``value``: an integer, or a string such as ``64MiB`` or ``500KB``."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: not a size: {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"{name}: not a size: {value!r} (use e.g. 1048576, 64MiB, 500KB)")
        size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"{name}: must be positive, not {value!r}")
    return size


@dataclass(frozen=True)
class TlsConfig:
    """A certificate chain and its private key (PEM files)."""

    cert_file: Path
    key_file: Path


@dataclass
class CollectorConfig:
    """Where the collector listens, who may send, and how it batches and limits input."""

    host: str = "127.0.0.1"
    http_port: int = 8080
    tcp_port: int | None = 5170
    syslog_port: int | None = 5514
    udp_syslog: bool = True
    tokens: dict[str, str] = field(default_factory=dict)  # bearer token -> tenant
    default_tenant: str = "default"
    stream_tenant: str = "default"
    stream_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    tls: TlsConfig | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 1024 * 1024
    max_fields: int = 1000
    max_depth: int = 32
    memory_budget_bytes: int = 256 * 1024 * 1024
    body_timeout: float = 30.0
    idle_timeout: float = 300.0
    spool_high_water: int = 1000
    min_free_disk_bytes: int = 256 * 1024 * 1024
    columnar: bool = True
    syslog_port_required: bool = False  # set when the syslog port was chosen explicitly
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    skew: SkewLimits = field(default_factory=SkewLimits)

    @property
    def limits(self) -> RecordLimits:
        """The structural limits of one record."""
        return RecordLimits(max_fields=self.max_fields, max_depth=self.max_depth)

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None) -> "CollectorConfig":
        """Build from the ``collector:`` mapping of a config file; unknown keys or bad values: ValueError."""
        section = dict(section or {})
        if not isinstance(section, dict):
            raise ValueError("the collector section must be a mapping")
        known = {f.name for f in fields(cls) if f.name not in ("skew", "syslog_port_required")} | {
            "timestamp_skew"
        }
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"(known keys: {', '.join(sorted(known))})"
            )
        config = cls()
        for name in ("host", "default_tenant", "stream_tenant"):
            if name in section:
                setattr(config, name, _string(section[name], name))
        for name in ("http_port", "tcp_port", "syslog_port"):
            if name in section:
                setattr(config, name, _port(section[name], name, optional=name != "http_port"))
        config.syslog_port_required = "syslog_port" in section
        for name in ("udp_syslog", "columnar"):
            if name in section:
                setattr(config, name, _bool(section[name], name))
        for name in ("max_body_bytes", "max_line_bytes", "memory_budget_bytes", "min_free_disk_bytes"):
            if name in section:
                setattr(config, name, parse_size(section[name], name))
        for name in ("max_fields", "max_depth", "spool_high_water"):
            if name in section:
                setattr(config, name, _positive_int(section[name], name))
        for name in ("body_timeout", "idle_timeout"):
            if name in section:
                setattr(config, name, parse_duration(section[name]))
        if "tokens" in section:
            config.tokens = _tokens(section["tokens"])
        if "stream_networks" in section:
            config.stream_networks = _networks(section["stream_networks"])
        if section.get("tls") is not None:
            config.tls = _tls(section["tls"])
        config.batch = _batch(section.get("batch") or {})
        config.skew = _skew(section.get("timestamp_skew") or {})
        return config


def _sub_keys(value: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name}: must be a mapping")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(
            f"{name}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(known keys: {', '.join(sorted(allowed))})"
        )
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: must be a non-empty string, not {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false, not {value!r}")
    return value


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: must be a positive integer, not {value!r}")
    return value


def _port(value: Any, name: str, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(
            f"{name}: must be a port number 0-65535{' or null' if optional else ''}, not {value!r}"
        )
    return value


def _tokens(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("tokens: must map each bearer token to a tenant")
    tokens = {}
    for token, tenant in value.items():
        if not isinstance(token, str) or len(token) < 16:
            raise ValueError("tokens: each token must be a string of at least 16 characters")
        tokens[token] = _string(tenant, f"tokens[{token[:4]}…]")
    return tokens


def _networks(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("stream_networks: must be a non-empty list of networks such as 10.0.0.0/8")
    for network in value:
        try:
            ipaddress.ip_network(str(network), strict=False)
        except ValueError as exc:
            raise ValueError(f"stream_networks: {exc}") from None
    return tuple(str(network) for network in value)


def _tls(value: Any) -> TlsConfig:
    value = _sub_keys(value, "tls", {"cert_file", "key_file"})
    if set(value) != {"cert_file", "key_file"}:
        raise ValueError("tls: needs both cert_file and key_file")
    return TlsConfig(
        Path(_string(value["cert_file"], "tls.cert_file")), Path(_string(value["key_file"], "tls.key_file"))
    )


def _batch(value: Any) -> BatchPolicy:
    value = _sub_keys(value, "batch", {"max_records", "max_age", "max_bytes"})
    default = BatchPolicy()
    return BatchPolicy(
        max_records=_positive_int(value.get("max_records", default.max_records), "batch.max_records"),
        max_age=parse_duration(value.get("max_age", default.max_age)),
        max_bytes=parse_size(value.get("max_bytes", default.max_bytes), "batch.max_bytes"),
    )


def _skew(value: Any) -> SkewLimits:
    value = _sub_keys(value, "timestamp_skew", {"max_future", "max_past"})
    default = SkewLimits()
    return SkewLimits(
        max_future=parse_duration(value.get("max_future", default.max_future)),
        max_past=parse_duration(value.get("max_past", default.max_past)),
    )
