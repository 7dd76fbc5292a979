"""Collector configuration: the ``collector:`` section of the logwarden config file.

Every key is optional (the defaults are the fields of :class:`CollectorConfig`); an unknown key
is refused naming the known ones, a wrong value names its key (``collector.http_port: expected
a port number from 0 to 65535, got 'abc'``). The keys::

    collector:
      host: 0.0.0.0               # the address every listener binds
      http_port: 8080             # 0 picks a free port
      tcp_port: 5170              # newline-delimited JSON; null disables
      syslog_port: 5514           # RFC 6587 over TCP, and UDP on the same number; null disables.
                                  # When left unset and the default is taken, the collector runs
                                  # without syslog (and says so); a port set here or with
                                  # --syslog-port must bind.
      udp_syslog: true
      forward_port: 24224         # Fluent forward (msgpack over TCP, Fluent Bit / Fluentd); null disables;
                                  # like syslog, a default port that is taken is skipped with a message
      forward: {tag_service: first, max_message_bytes: 64MiB, shared_keys: {"${FLUENT_KEY}": team-a}}
                                  # tag_service: first|last|full part of the tag names a record's service;
                                  # shared_keys (key -> tenant) turn on the forward handshake
      loki: {service_labels: [service_name, service, app, job], level_labels: [level, severity, detected_level]}
      tokens: {"${TEAM_A_TOKEN}": team-a}   # bearer token -> tenant; without tokens only loopback clients
      default_tenant: default     # the tenant of loopback HTTP clients when no tokens are configured
      stream_tenant: default      # the tenant of TCP and syslog input
      stream_networks: [10.0.0.0/8]         # who may send TCP and syslog input
      tls: {cert_file: cert.pem, key_file: key.pem}   # TLS on HTTP, TCP and syslog TCP
      max_body_bytes: 64MiB       # sizes: bytes, or 500KB, 64MiB, 1GiB ...
      max_line_bytes: 1MiB
      max_fields: 1000
      max_depth: 32
      memory_budget_bytes: 256MiB
      body_timeout: 30s           # durations: 500ms, 30s, 5m, 2h, 7d (a bare number is seconds)
      header_timeout: 10s         # HTTP: a connection's request headers must be in within this (slowloris)
      max_connections_per_client: 256   # HTTP: open connections per client address; 0: no limit
      idle_timeout: 5m
      spool_high_water: 1000      # /ready turns false past this many waiting batches
      min_free_disk_bytes: 256MiB # under this much free space on the data disk, /ready is false and
                                  # new records are refused (503 with Retry-After) until space returns
      max_deadletter_bytes: 1GiB  # the dead-letter store's cap: past it, the oldest letters are evicted
      columnar: true              # the vectorized validation fast path
      batch: {max_records: 50000, max_age: 250ms, max_bytes: 64MiB}
      timestamp_skew: {max_future: 1h, max_past: 30d}
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

from logwarden.collector.forward import TAG_SERVICE, ForwardOptions
from logwarden.collector.ingest import BatchPolicy
from logwarden.collector.protocols.loki import DEFAULT_LEVEL_LABELS, DEFAULT_SERVICE_LABELS
from logwarden.collector.validation import RecordLimits, SkewLimits
from logwarden.common.tls import TlsConfig  # one TLS setting for every listener (see common/tls.py)
from logwarden.common.yamlconf import (
    ConfigError, check_bool, check_choice, check_duration, check_int, check_mapping, check_str, check_str_list,
    describe,
)

SECTION = "collector"
MIN_TOKEN_LENGTH = 16
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_size(value: Any, keys: Sequence[Any] | str) -> int:
    """Bytes in ``value``: an integer, or a string such as ``64MiB`` or ``500KB``; ConfigError at ``keys``."""
    size = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    if size is None:
        raise ConfigError.at(keys, f"expected a size (e.g. 1048576, 500KB, 64MiB), got {describe(value)}")
    if size <= 0:
        raise ConfigError.at(keys, f"expected a size larger than 0, got {describe(value)}")
    return size


@dataclass
class CollectorConfig:
    """Where the collector listens, who may send, and how it batches and limits input."""

    host: str = "127.0.0.1"
    http_port: int = 8080
    tcp_port: int | None = 5170
    syslog_port: int | None = 5514
    udp_syslog: bool = True
    forward_port: int | None = 24224
    forward: ForwardOptions = field(default_factory=ForwardOptions)
    loki: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"service_labels": DEFAULT_SERVICE_LABELS, "level_labels": DEFAULT_LEVEL_LABELS})
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
    header_timeout: float = 10.0
    max_connections_per_client: int = 256
    idle_timeout: float = 300.0
    spool_high_water: int = 1000
    min_free_disk_bytes: int = 256 * 1024 * 1024
    max_deadletter_bytes: int = 1024 * 1024 * 1024
    columnar: bool = True
    syslog_port_required: bool = False  # set when the syslog port was chosen explicitly
    forward_port_required: bool = False  # likewise for the forward port
    reuse_port: bool = False  # set by --reuse-port: listen beside other collectors on the same ports
    admin_port: int | None = None  # set by --admin-port: /health and /metrics of this collector alone
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    skew: SkewLimits = field(default_factory=SkewLimits)

    @property
    def limits(self) -> RecordLimits:
        """The structural limits of one record."""
        return RecordLimits(max_fields=self.max_fields, max_depth=self.max_depth)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys the ``collector:`` section takes."""
        hidden = ("skew", "syslog_port_required", "forward_port_required", "reuse_port", "admin_port")
        return tuple(f.name for f in fields(cls) if f.name not in hidden) + ("timestamp_skew",)

    @classmethod
    def from_dict(cls, section: Any) -> "CollectorConfig":
        """Build from the ``collector:`` mapping of a config file (None: the defaults).

        Raises ConfigError with the key path (``collector.http_port``) on an unknown key or a bad value.
        """
        section = check_mapping(section, (SECTION,), cls.keys())
        config = cls()
        for name in ("host", "default_tenant", "stream_tenant"):
            if name in section:
                setattr(config, name, check_str(section[name], (SECTION, name)))
        if "http_port" in section:
            config.http_port = _port(section["http_port"], "http_port", optional=False)
        for name in ("tcp_port", "syslog_port", "forward_port"):
            if name in section:
                setattr(config, name, _port(section[name], name, optional=True))
        config.syslog_port_required = "syslog_port" in section
        config.forward_port_required = "forward_port" in section
        config.forward = _forward(section.get("forward"))
        config.loki = _loki(section.get("loki"))
        for name in ("udp_syslog", "columnar"):
            if name in section:
                setattr(config, name, check_bool(section[name], (SECTION, name)))
        for name in ("max_body_bytes", "max_line_bytes", "memory_budget_bytes", "min_free_disk_bytes",
                     "max_deadletter_bytes"):
            if name in section:
                setattr(config, name, parse_size(section[name], (SECTION, name)))
        for name in ("max_fields", "max_depth", "spool_high_water"):
            if name in section:
                setattr(config, name, check_int(section[name], (SECTION, name), minimum=1))
        for name in ("body_timeout", "header_timeout", "idle_timeout"):
            if name in section:
                setattr(config, name, check_duration(section[name], (SECTION, name), positive=True))
        if "max_connections_per_client" in section:
            config.max_connections_per_client = check_int(section["max_connections_per_client"],
                                                          (SECTION, "max_connections_per_client"), minimum=0)
        if "tokens" in section:
            config.tokens = _tokens(section["tokens"])
        if "stream_networks" in section:
            config.stream_networks = _networks(section["stream_networks"])
        config.tls = TlsConfig.from_dict(section.get("tls"), (SECTION, "tls"))
        config.batch = _batch(section.get("batch"))
        config.skew = _skew(section.get("timestamp_skew"))
        return config


def _port(value: Any, name: str, optional: bool) -> int | None:
    if value is None and optional:
        return None
    try:
        return check_int(value, (SECTION, name), 0, 65535)
    except ConfigError:
        raise ConfigError.at((SECTION, name), f"expected a port number from 0 to 65535"
                                              f"{' or null' if optional else ''}, got {describe(value)}") from None


def _tokens(value: Any) -> dict[str, str]:
    """Bearer token -> tenant. Errors name ``collector.tokens`` (with the token's line) but never the token."""
    where = (SECTION, "tokens")
    if not isinstance(value, dict):
        raise ConfigError.at(where, f"expected a mapping of bearer token to tenant, got {describe(value, True)}")
    tokens = {}
    for token, tenant in value.items():
        at = (*where, token)
        if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError.at(at, f"a token must be a string of at least {MIN_TOKEN_LENGTH} characters",
                                 key="collector.tokens")
        if not isinstance(tenant, str) or not tenant:
            raise ConfigError.at(at, f"the tenant of a token: expected a non-empty string, got {describe(tenant)}",
                                 key="collector.tokens")
        tokens[token] = tenant
    return tokens


def _networks(value: Any) -> tuple[str, ...]:
    where = (SECTION, "stream_networks")
    if not isinstance(value, list) or not value:
        raise ConfigError.at(where, f"expected a non-empty list of networks such as 10.0.0.0/8, "
                                    f"got {describe(value)}")
    for index, network in enumerate(value):
        try:
            ipaddress.ip_network(check_str(network, (*where, index)), strict=False)
        except ValueError as exc:
            raise ConfigError.at((*where, index), f"not a network: {exc}") from None
    return tuple(value)


def _forward(value: Any) -> ForwardOptions:
    where = (SECTION, "forward")
    value = check_mapping(value, where, ("tag_service", "max_message_bytes", "shared_keys"))
    default = ForwardOptions()
    shared_keys = None
    if value.get("shared_keys") is not None:
        keys = value["shared_keys"]
        if not isinstance(keys, dict) or not keys:
            raise ConfigError.at((*where, "shared_keys"), f"expected a mapping of shared key to tenant, "
                                                          f"got {describe(keys, True)}")
        shared_keys = {}
        for key, tenant in keys.items():
            if not isinstance(key, str) or len(key) < MIN_TOKEN_LENGTH or not isinstance(tenant, str) or not tenant:
                raise ConfigError.at((*where, "shared_keys"), f"each shared key must be a string of at least "
                                                              f"{MIN_TOKEN_LENGTH} characters naming a tenant",
                                     key="collector.forward.shared_keys")
            shared_keys[key] = tenant
    return ForwardOptions(
        tag_service=check_choice(value.get("tag_service", default.tag_service), (*where, "tag_service"),
                                 TAG_SERVICE),
        max_message_bytes=parse_size(value.get("max_message_bytes", default.max_message_bytes),
                                     (*where, "max_message_bytes")),
        shared_keys=shared_keys,
    )


def _loki(value: Any) -> dict[str, tuple[str, ...]]:
    where = (SECTION, "loki")
    value = check_mapping(value, where, ("service_labels", "level_labels"))
    return {
        "service_labels": check_str_list(value.get("service_labels", list(DEFAULT_SERVICE_LABELS)),
                                         (*where, "service_labels"), empty=False),
        "level_labels": check_str_list(value.get("level_labels", list(DEFAULT_LEVEL_LABELS)),
                                       (*where, "level_labels"), empty=False),
    }


def _batch(value: Any) -> BatchPolicy:
    where = (SECTION, "batch")
    value = check_mapping(value, where, ("max_records", "max_age", "max_bytes"))
    default = BatchPolicy()
    return BatchPolicy(
        max_records=check_int(value.get("max_records", default.max_records), (*where, "max_records"), minimum=1),
        max_age=check_duration(value.get("max_age", default.max_age), (*where, "max_age"), positive=True),
        max_bytes=parse_size(value.get("max_bytes", default.max_bytes), (*where, "max_bytes")),
    )


def _skew(value: Any) -> SkewLimits:
    where = (SECTION, "timestamp_skew")
    value = check_mapping(value, where, ("max_future", "max_past"))
    default = SkewLimits()
    return SkewLimits(
        max_future=check_duration(value.get("max_future", default.max_future), (*where, "max_future")),
        max_past=check_duration(value.get("max_past", default.max_past), (*where, "max_past")),
    )
