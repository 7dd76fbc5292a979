"""The ``alerting:`` section of the logwarden configuration file, validated on load.

This module holds what is generic: routing outside business hours, escalation, delivery (retries
and circuit breakers), grouping, the generic keys of every channel (``rate_limit``,
``group_wait``), and the Alertmanager-style routing: the tree ``route``, the named ``receivers``
(each a list of channel configurations of the registered kinds, ``slack_configs``,
``pagerduty_configs``, ...), ``inhibit_rules`` and ``time_intervals``. Each receiver section (``pagerduty``, ``slack``, ``email``, ...) is described by
its own module in ``alerting/notify/``, which registers its schema, its typed configuration and its
construction (``alerting.notify.registry``); the schema of the section is assembled from them.

``${NAME}`` references are expanded by the configuration loader (``logwarden.common.yamlconf``)
before this module sees the section. A bad section is refused with an :class:`AlertingConfigError`
(a :class:`~logwarden.common.yamlconf.ConfigError`) naming the key, e.g.
``alerting.email.smtp_port: 'x' is not of type 'integer'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from logwarden.alerting.dispatch.hours import BusinessHours
from logwarden.alerting.dispatch.intervals import INTERVALS_SCHEMA, TimeInterval, parse_intervals
from logwarden.alerting.dispatch.tree import DASHBOARD, ROUTE_SCHEMA, RouteNode, parse_route
from logwarden.alerting.inhibit.rules import INHIBIT_SCHEMA, InhibitRule, parse_inhibit_rules
from logwarden.alerting.notify.registry import (
    DURATION,
    SEVERITIES,
    SEVERITY_LIST,
    RateLimit,
    ReceiverKind,
    SectionError,
    duration,
    parse_rate_limit,
    receivers,
    unavailable,
)
from logwarden.common.yamlconf import ConfigError

SOURCE = "config"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

SETTINGS_SCHEMA: dict[str, Any] = {
    "dashboard_url": {"type": "string"},
    "group_wait": DURATION,
    "poll_interval": DURATION,
    "flush_timeout": DURATION,
    "delivery": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_attempts": {"type": "integer", "minimum": 1},
            "initial_backoff": DURATION,
            "max_backoff": DURATION,
            "breaker_failures": {"type": "integer", "minimum": 1},
            "breaker_reset": DURATION,
        },
    },
    "business_hours": {
        "type": "object",
        "additionalProperties": False,
        "required": ["timezone"],
        "properties": {
            "timezone": {"type": "string"},
            "days": {"type": "array", "items": {"enum": list(DAYS)}, "minItems": 1},
            "start": {"type": "string"},
            "end": {"type": "string"},
        },
    },
    "after_hours": {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["channel", "action"],
            "properties": {
                "channel": {"type": "string"},
                "severity": {"enum": list(SEVERITIES)},
                "rule": {"type": "string"},
                "action": {"enum": ["hold", "escalate"]},
                "escalate_to": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
        },
    },
    "escalation": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean"},
            "after": DURATION,
            "repeat": {"type": "integer", "minimum": 1},
            "severities": SEVERITY_LIST,
            "channels": {"type": "array", "items": {"type": "string"}},
        },
    },
    "route": {"$ref": "#/$defs/route"},
    "receivers": {"type": "array"},  # its items are described per registered kind (alerting_schema)
    "inhibit_rules": INHIBIT_SCHEMA,
    "time_intervals": INTERVALS_SCHEMA,
}
CONFIGS_SUFFIX = "_configs"  # receivers[].slack_configs: a list of alerting.slack sections


def receivers_schema(kinds: dict[str, ReceiverKind]) -> dict[str, Any]:
    """The JSON Schema of ``receivers:``: named receivers, each with ``<kind>_configs`` lists."""
    configs = {
        f"{name}{CONFIGS_SUFFIX}": {"type": "array", "items": kind.section_schema()}
        for name, kind in kinds.items()
        if kind.channel_keys
    }
    return {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"}, **configs},
        },
    }


def alerting_schema(kinds: dict[str, ReceiverKind] | None = None) -> dict[str, Any]:
    """The JSON Schema of the ``alerting:`` section: the generic settings plus a property per
    registered receiver (``kinds``: the registry's receivers by default)."""
    kinds = receivers() if kinds is None else kinds
    clash = sorted(set(kinds) & set(SETTINGS_SCHEMA))
    if clash:
        raise RuntimeError(f"receiver name(s) {', '.join(clash)} clash with alerting settings")
    return {
        "type": "object",
        "additionalProperties": False,
        "$defs": {"route": ROUTE_SCHEMA},
        "properties": {
            **SETTINGS_SCHEMA,
            "receivers": receivers_schema(kinds),
            **{name: kind.section_schema() for name, kind in kinds.items()},
        },
    }


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retries with exponential backoff and jitter, and the circuit breaker of each channel."""

    max_attempts: int = 12
    initial_backoff: float = 1.0
    max_backoff: float = 300.0
    breaker_failures: int = 5
    breaker_reset: float = 30.0


@dataclass(frozen=True)
class ChannelConfig:
    """One channel of a named receiver: ``receivers[i].<kind>_configs[j]``, delivered as ``channel``."""

    channel: str
    kind: str
    config: Any
    rate_limit: RateLimit | None = None
    group_wait: float | None = None


@dataclass(frozen=True)
class NamedReceiver:
    """A receiver of ``receivers:``: a name and its channels (none: alerts stop at the dashboard)."""

    name: str
    channels: tuple[ChannelConfig, ...] = ()


@dataclass(frozen=True)
class AfterHoursRoute:
    """What happens to ``channel`` (for a severity or a rule) outside business hours."""

    channel: str
    action: str
    severity: str | None = None
    rule: str | None = None
    escalate_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalationPolicy:
    """Page again, up to ``repeat`` times, every ``after`` seconds while unacknowledged."""

    enabled: bool = True
    after: float = 900.0
    repeat: int = 3
    severities: tuple[str, ...] = ("CRITICAL",)
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertingConfig:
    """The validated ``alerting:`` section.

    ``receivers`` holds the typed configuration of each receiver section present (by section name,
    e.g. ``receivers["email"].digest.every``); ``rate_limits`` and ``group_waits`` the generic keys
    of those sections (a rate limit also from the receiver's registered default), and of the channels
    of named receivers.

    ``route`` is the routing tree (None: the default tree of the rules file), ``named_receivers`` the
    receivers of ``receivers:`` by name, ``inhibit_rules`` and ``time_intervals`` (by name, with
    ``business_hours`` among them when set) what mutes alerts.
    """

    dashboard_url: str | None = None
    group_wait: float = 10.0
    poll_interval: float = 1.0
    flush_timeout: float = 10.0
    delivery: DeliveryPolicy = DeliveryPolicy()
    business_hours: BusinessHours | None = None
    after_hours: tuple[AfterHoursRoute, ...] = ()
    escalation: EscalationPolicy = EscalationPolicy()
    receivers: dict[str, Any] = field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    group_waits: dict[str, float] = field(default_factory=dict)
    route: RouteNode | None = None
    named_receivers: dict[str, NamedReceiver] = field(default_factory=dict)
    inhibit_rules: tuple[InhibitRule, ...] = ()
    time_intervals: dict[str, TimeInterval] = field(default_factory=dict)

    def channels_of(self, receiver: str) -> list[str]:
        """The channels a receiver of the routing tree delivers to: a named receiver's channels, else
        the channel of that name (a top-level section such as ``slack``, or ``dashboard``)."""
        named = self.named_receivers.get(receiver)
        if named is None:
            return [receiver]
        return [c.channel for c in named.channels]

    def group_wait_for(self, channel: str) -> float:
        """The grouping delay of ``channel`` (its own ``group_wait`` or the section's)."""
        return self.group_waits.get(channel, self.group_wait)


class AlertingConfigError(ConfigError):
    """A refused ``alerting:`` section: ``source: alerting.<key path>: problem``.

    ``path`` is the key path below ``alerting`` and ``keys`` the full one (``("alerting", *path)``);
    ``problem`` (and ``detail``) the problem alone. For a line number: ``doc.locate(exc)`` or
    ``doc.error(["alerting", *exc.path], exc.problem)`` with the config file's YamlDocument."""

    def __init__(self, path: list, message: str, source: str = SOURCE) -> None:
        self.path = list(path)
        self.detail = message
        super().__init__(source, None, message, keys=("alerting", *self.path))


def _clock(value: str, path: list) -> dtime:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise SectionError(path, f"not a time of day: {value!r} (use HH:MM)")
    return dtime(int(match.group(1)), int(match.group(2)))


def _check_keys(data: dict, kinds: dict[str, ReceiverKind]) -> None:
    """Refuse a key that is neither a setting nor a registered receiver, listing both."""
    for key in data:
        if key in SETTINGS_SCHEMA or key in kinds:
            continue
        broken = unavailable().get(str(key))
        if broken is not None:
            raise SectionError([key], f"receiver '{key}' is unavailable: {broken}")
        raise SectionError(
            [key],
            f"unknown receiver or setting (receivers: {', '.join(sorted(kinds))}; "
            f"settings: {', '.join(sorted(SETTINGS_SCHEMA))})",
        )


def _schema_check(data: dict, kinds: dict[str, ReceiverKind]) -> None:
    errors = sorted(
        jsonschema.Draft202012Validator(alerting_schema(kinds)).iter_errors(data),
        key=lambda e: len(list(e.absolute_path)),
        reverse=True,
    )
    if errors:
        error = errors[0]
        raise SectionError(list(error.absolute_path), error.message)


def _business_hours(raw: dict) -> BusinessHours:
    try:
        zone = ZoneInfo(raw["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise SectionError(["business_hours", "timezone"], f"unknown time zone {raw['timezone']!r}") from None
    days = tuple(DAYS.index(d) for d in raw.get("days", DAYS[:5]))
    return BusinessHours(
        zone,
        days,
        _clock(raw.get("start", "09:00"), ["business_hours", "start"]),
        _clock(raw.get("end", "18:00"), ["business_hours", "end"]),
    )


def parse_alerting(section: dict | None, source: str = SOURCE) -> AlertingConfig:
    """Validate the ``alerting:`` mapping (None: the embedded defaults) into an AlertingConfig.

    ``source`` (the config file's name) starts error messages. ``${NAME}`` references must already
    be expanded (the configuration loader does it).
    """
    try:
        return _parse(section)
    except SectionError as exc:
        raise AlertingConfigError(exc.path, exc.message, source) from None


def _parse(section: dict | None) -> AlertingConfig:
    if section is None:
        return AlertingConfig()
    if not isinstance(section, dict):
        raise SectionError([], "must be a mapping")
    kinds = receivers()
    _check_keys(section, kinds)
    _schema_check(section, kinds)
    data = section
    delivery_raw = data.get("delivery", {})
    delivery = DeliveryPolicy(
        max_attempts=delivery_raw.get("max_attempts", 12),
        initial_backoff=duration(delivery_raw.get("initial_backoff", 1), ["delivery", "initial_backoff"]),
        max_backoff=duration(delivery_raw.get("max_backoff", 300), ["delivery", "max_backoff"]),
        breaker_failures=delivery_raw.get("breaker_failures", 5),
        breaker_reset=duration(delivery_raw.get("breaker_reset", 30), ["delivery", "breaker_reset"]),
    )
    routes = []
    for i, raw in enumerate(data.get("after_hours", ())):
        if raw["action"] == "escalate" and not raw.get("escalate_to"):
            raise SectionError(["after_hours", i, "escalate_to"], "action 'escalate' needs escalate_to channels")
        routes.append(
            AfterHoursRoute(
                channel=raw["channel"],
                action=raw["action"],
                severity=raw.get("severity"),
                rule=raw.get("rule"),
                escalate_to=tuple(raw.get("escalate_to", ())),
            )
        )
    if routes and "business_hours" not in data:
        raise SectionError(["after_hours"], "needs alerting.business_hours")
    esc = data.get("escalation", {})
    escalation = EscalationPolicy(
        enabled=esc.get("enabled", True),
        after=duration(esc.get("after", "15m"), ["escalation", "after"]),
        repeat=esc.get("repeat", 3),
        severities=tuple(esc.get("severities", ("CRITICAL",))),
        channels=tuple(esc.get("channels", ())),
    )
    configured: dict[str, Any] = {}
    rate_limits: dict[str, RateLimit] = {}
    group_waits: dict[str, float] = {}
    for name, raw in data.items():
        kind = kinds.get(name)
        if kind is None:
            continue
        try:
            configured[name] = kind.parse(raw)
        except SectionError as exc:
            raise SectionError([name, *exc.path], exc.message) from None
        if not kind.channel_keys:
            continue
        rate = parse_rate_limit(raw.get("rate_limit"), [name, "rate_limit"]) or kind.rate_limit
        if rate is not None:
            rate_limits[name] = rate
        if "group_wait" in raw:
            group_waits[name] = duration(raw["group_wait"], [name, "group_wait"])
    business_hours = _business_hours(data["business_hours"]) if "business_hours" in data else None
    intervals = parse_intervals(data.get("time_intervals") or (), business_hours, ["time_intervals"])
    named = _named_receivers(data.get("receivers") or (), kinds)
    for receiver in named.values():
        for channel in receiver.channels:
            if channel.rate_limit is not None:
                rate_limits[channel.channel] = channel.rate_limit
            if channel.group_wait is not None:
                group_waits[channel.channel] = channel.group_wait
    route = None
    if "route" in data:
        names = set(named) | {n for n, k in kinds.items() if k.channel_keys} | {DASHBOARD}
        route = parse_route(data["route"], names, set(intervals))
    return AlertingConfig(
        dashboard_url=data.get("dashboard_url"),
        group_wait=duration(data.get("group_wait", 10), ["group_wait"]),
        poll_interval=max(0.01, duration(data.get("poll_interval", 1), ["poll_interval"])),
        flush_timeout=duration(data.get("flush_timeout", 10), ["flush_timeout"]),
        delivery=delivery,
        business_hours=business_hours,
        after_hours=tuple(routes),
        escalation=escalation,
        receivers=configured,
        rate_limits=rate_limits,
        group_waits=group_waits,
        route=route,
        named_receivers=named,
        inhibit_rules=parse_inhibit_rules(data.get("inhibit_rules") or (), ["inhibit_rules"]),
        time_intervals=intervals,
    )


def _named_receivers(raw: list[dict], kinds: dict[str, ReceiverKind]) -> dict[str, NamedReceiver]:
    """The validated ``receivers:`` list by name; each channel is ``<receiver>.<kind>`` (then ``.2``,
    ``.3`` for further channels of the same kind)."""
    out: dict[str, NamedReceiver] = {}
    for i, item in enumerate(raw):
        name = item["name"]
        if name in out:
            raise SectionError(["receivers", i, "name"], f"receiver {name!r} is defined twice")
        if name in kinds or name == DASHBOARD:
            raise SectionError(["receivers", i, "name"], f"{name!r} is the name of a built-in receiver")
        channels: list[ChannelConfig] = []
        for key, configs in item.items():
            if key == "name":
                continue
            kind = kinds[key[: -len(CONFIGS_SUFFIX)]]
            for j, section in enumerate(configs):
                path = ["receivers", i, key, j]
                channel = f"{name}.{kind.name}" + (f".{j + 1}" if j else "")
                channels.append(_channel_config(channel, kind, section, path))
        out[name] = NamedReceiver(name, tuple(channels))
    return out


def _channel_config(channel: str, kind: ReceiverKind, section: dict, path: list) -> ChannelConfig:
    try:
        config = kind.parse(section)
    except SectionError as exc:
        raise SectionError([*path, *exc.path], exc.message) from None
    rate = parse_rate_limit(section.get("rate_limit"), [*path, "rate_limit"]) or kind.rate_limit
    wait = duration(section["group_wait"], [*path, "group_wait"]) if "group_wait" in section else None
    return ChannelConfig(channel, kind.name, config, rate, wait)


__all__ = [
    "AfterHoursRoute",
    "ChannelConfig",
    "NamedReceiver",
    "AlertingConfig",
    "AlertingConfigError",
    "BusinessHours",
    "DeliveryPolicy",
    "EscalationPolicy",
    "RateLimit",
    "alerting_schema",
    "parse_alerting",
]
