"""The ``alerting:`` section of the logwarden configuration file, validated on load.

Every string may name an environment variable as ``${NAME}`` (secrets such as tokens and
passwords belong there); an unset variable is an error naming the key. A bad section is
refused with a :class:`~logwarden.common.yamlconf.ConfigError` naming the key, e.g.
``alerting.email.smtp_port: 'x' is not of type 'integer'``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from logwarden.common.durations import parse_duration
from logwarden.common.yamlconf import ConfigError

SOURCE = "config"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_PD_SEVERITY = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning", "LOW": "info"}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_DURATION = {"type": ["string", "number"]}
_RATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["count", "per"],
    "properties": {"count": {"type": "integer", "minimum": 1}, "per": _DURATION},
}
_SEVERITY_LIST = {"type": "array", "items": {"enum": list(SEVERITIES)}}
_CHANNEL_COMMON = {"rate_limit": _RATE, "group_wait": _DURATION}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dashboard_url": {"type": "string"},
        "group_wait": _DURATION,
        "poll_interval": _DURATION,
        "flush_timeout": _DURATION,
        "delivery": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_attempts": {"type": "integer", "minimum": 1},
                "initial_backoff": _DURATION,
                "max_backoff": _DURATION,
                "breaker_failures": {"type": "integer", "minimum": 1},
                "breaker_reset": _DURATION,
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
                "after": _DURATION,
                "repeat": {"type": "integer", "minimum": 1},
                "severities": _SEVERITY_LIST,
                "channels": {"type": "array", "items": {"type": "string"}},
            },
        },
        "pagerduty": {
            "type": "object",
            "additionalProperties": False,
            "required": ["routing_key"],
            "properties": {
                "routing_key": {"type": "string", "minLength": 1},
                "events_url": {"type": "string"},
                "severity_map": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {s: {"enum": ["critical", "error", "warning", "info"]} for s in SEVERITIES},
                },
                "timeout": _DURATION,
                **_CHANNEL_COMMON,
            },
        },
        "slack": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "webhook_url": {"type": "string"},
                "token": {"type": "string"},
                "channel": {"type": "string"},
                "base_url": {"type": "string"},
                "timeout": _DURATION,
                **_CHANNEL_COMMON,
            },
        },
        "email": {
            "type": "object",
            "additionalProperties": False,
            "required": ["smtp_host", "from", "to"],
            "properties": {
                "smtp_host": {"type": "string"},
                "smtp_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "security": {"enum": ["starttls", "ssl", "none"]},
                "username": {"type": "string"},
                "password": {"type": "string"},
                "from": {"type": "string"},
                "to": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "ca_file": {"type": "string"},
                "timeout": _DURATION,
                "digest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "every": _DURATION,
                        "max_alerts": {"type": "integer", "minimum": 1},
                        "severities": _SEVERITY_LIST,
                    },
                },
                **_CHANNEL_COMMON,
            },
        },
        "webhook": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "timeout": _DURATION,
                **_CHANNEL_COMMON,
            },
        },
        "alertmanager": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {"url": {"type": "string"}, "timeout": _DURATION, **_CHANNEL_COMMON},
        },
        "remediation": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "dry_run": {"type": "boolean"},
                "allowed_commands": {"type": "array", "items": {"type": "string"}},
                "allowed_urls": {"type": "array", "items": {"type": "string"}},
                "rate_limit": _RATE,
                "actions": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["rules"],
                        "properties": {
                            "rules": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                            "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                            "webhook": {"type": "string"},
                            "timeout": _DURATION,
                            "rate_limit": _RATE,
                        },
                        "oneOf": [{"required": ["command"]}, {"required": ["webhook"]}],
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` messages per ``per`` seconds."""

    count: int
    per: float


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retries with exponential backoff and jitter, and the circuit breaker of each channel."""

    max_attempts: int = 12
    initial_backoff: float = 1.0
    max_backoff: float = 300.0
    breaker_failures: int = 5
    breaker_reset: float = 30.0


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours in a time zone (end exclusive; ``end`` before ``start`` spans midnight)."""

    timezone: ZoneInfo
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: dtime = dtime(9, 0)
    end: dtime = dtime(18, 0)


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
class DigestPolicy:
    """E-mail digest: alerts of ``severities`` sent together every ``every`` seconds, and at once
    when more than ``max_alerts`` wait."""

    every: float = 900.0
    max_alerts: int = 20
    severities: tuple[str, ...] = ("MEDIUM",)


@dataclass(frozen=True)
class RemediationAction:
    """A command or webhook run with the anomaly as input when one of ``rules`` fires."""

    name: str
    rules: tuple[str, ...]
    command: tuple[str, ...] = ()
    webhook: str | None = None
    timeout: float = 30.0
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class RemediationPolicy:
    """Remediation actions behind an allow-list, a rate limit and a dry-run mode (on by default)."""

    dry_run: bool = True
    allowed_commands: tuple[str, ...] = ()
    allowed_urls: tuple[str, ...] = ()
    rate_limit: RateLimit = RateLimit(1, 600.0)
    actions: tuple[RemediationAction, ...] = ()


@dataclass(frozen=True)
class AlertingConfig:
    """The validated ``alerting:`` section; channel sections stay plain dicts for their receivers."""

    dashboard_url: str | None = None
    group_wait: float = 10.0
    poll_interval: float = 1.0
    flush_timeout: float = 10.0
    delivery: DeliveryPolicy = DeliveryPolicy()
    business_hours: BusinessHours | None = None
    after_hours: tuple[AfterHoursRoute, ...] = ()
    escalation: EscalationPolicy = EscalationPolicy()
    digest: DigestPolicy = DigestPolicy()
    remediation: RemediationPolicy = RemediationPolicy()
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    group_waits: dict[str, float] = field(default_factory=dict)

    def group_wait_for(self, channel: str) -> float:
        """The grouping delay of ``channel`` (its own ``group_wait`` or the section's)."""
        return self.group_waits.get(channel, self.group_wait)


CHANNEL_SECTIONS = ("pagerduty", "slack", "email", "webhook", "alertmanager")
DEFAULT_RATE_LIMITS = {"email": RateLimit(30, 3600.0)}


class AlertingConfigError(ConfigError):
    """A refused ``alerting:`` section; ``path`` is the key path below ``alerting`` (for a line number:
    ``raise doc.error(["alerting", *exc.path], str(exc.problem))`` with the config file's YamlDocument)."""

    def __init__(self, path: list, message: str, source: str = SOURCE) -> None:
        self.path = list(path)
        self.detail = message
        key = ".".join(["alerting", *(str(p) for p in path)])
        super().__init__(source, None, f"{key}: {message}")


def _error(path: list, message: str) -> ConfigError:
    return AlertingConfigError(path, message)


def _expand_env(value: Any, path: list, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, path + [k], env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, path + [i], env) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name not in env:
                raise _error(path, f"environment variable {name} is not set")
            return env[name]

        return _ENV.sub(substitute, value)
    return value


def _duration(value: Any, path: list) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _error(path, str(exc)) from None


def _clock(value: str, path: list) -> dtime:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise _error(path, f"not a time of day: {value!r} (use HH:MM)")
    return dtime(int(match.group(1)), int(match.group(2)))


def _rate(raw: dict | None, path: list) -> RateLimit | None:
    if raw is None:
        return None
    return RateLimit(int(raw["count"]), _duration(raw["per"], path + ["per"]))


def _schema_check(data: dict) -> None:
    errors = sorted(
        jsonschema.Draft202012Validator(SCHEMA).iter_errors(data),
        key=lambda e: len(list(e.absolute_path)),
        reverse=True,
    )
    if errors:
        error = errors[0]
        raise _error(list(error.absolute_path), error.message)


def _business_hours(raw: dict) -> BusinessHours:
    try:
        zone = ZoneInfo(raw["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise _error(["business_hours", "timezone"], f"unknown time zone {raw['timezone']!r}") from None
    days = tuple(DAYS.index(d) for d in raw.get("days", DAYS[:5]))
    return BusinessHours(
        zone,
        days,
        _clock(raw.get("start", "09:00"), ["business_hours", "start"]),
        _clock(raw.get("end", "18:00"), ["business_hours", "end"]),
    )


def _remediation(raw: dict) -> RemediationPolicy:
    allowed_commands = tuple(raw.get("allowed_commands", ()))
    allowed_urls = tuple(raw.get("allowed_urls", ()))
    actions = []
    for name, spec in (raw.get("actions") or {}).items():
        path = ["remediation", "actions", name]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise _error(path, "an action name may hold letters, digits, '_', '.' and '-' only")
        command = tuple(spec.get("command", ()))
        if command:
            executable = shutil.which(command[0]) or command[0]
            if command[0] not in allowed_commands and executable not in allowed_commands:
                raise _error(
                    path + ["command"], f"{command[0]!r} is not in alerting.remediation.allowed_commands"
                )
        webhook = spec.get("webhook")
        if webhook and not any(webhook.startswith(prefix) for prefix in allowed_urls):
            raise _error(
                path + ["webhook"], f"{webhook!r} matches no prefix of alerting.remediation.allowed_urls"
            )
        actions.append(
            RemediationAction(
                name=name,
                rules=tuple(spec["rules"]),
                command=command,
                webhook=webhook,
                timeout=_duration(spec.get("timeout", 30), path + ["timeout"]),
                rate_limit=_rate(spec.get("rate_limit"), path + ["rate_limit"]),
            )
        )
    return RemediationPolicy(
        dry_run=raw.get("dry_run", True),
        allowed_commands=allowed_commands,
        allowed_urls=allowed_urls,
        rate_limit=_rate(raw.get("rate_limit"), ["remediation", "rate_limit"]) or RateLimit(1, 600.0),
        actions=tuple(actions),
    )


def _check_channels(data: dict) -> None:
    slack = data.get("slack")
    if slack is not None:
        if not slack.get("webhook_url") and not slack.get("token"):
            raise _error(
                ["slack"], "set webhook_url (incoming webhook) or token and channel (chat.postMessage)"
            )
        if slack.get("token") and not slack.get("channel"):
            raise _error(["slack", "channel"], "a bot token needs the channel to post to")
    email = data.get("email")
    if email is not None and bool(email.get("username")) != bool(email.get("password")):
        raise _error(
            ["email", "password" if email.get("username") else "username"],
            "username and password go together",
        )


def parse_alerting(
    section: dict | None, env: dict[str, str] | None = None, source: str = SOURCE
) -> AlertingConfig:
    """Validate the ``alerting:`` mapping (None: the embedded defaults) into an AlertingConfig.

    ``source`` (the config file's name) starts error messages; ``env`` replaces ``os.environ``.
    """
    try:
        return _parse(section, env)
    except AlertingConfigError as exc:
        if source == SOURCE:
            raise
        raise AlertingConfigError(exc.path, exc.detail, source) from None


def _parse(section: dict | None, env: dict[str, str] | None) -> AlertingConfig:
    if section is None:
        return AlertingConfig(rate_limits=dict(DEFAULT_RATE_LIMITS))
    if not isinstance(section, dict):
        raise _error([], "must be a mapping")
    data = _expand_env(section, [], dict(os.environ) if env is None else env)
    _schema_check(data)
    _check_channels(data)
    delivery_raw = data.get("delivery", {})
    delivery = DeliveryPolicy(
        max_attempts=delivery_raw.get("max_attempts", 12),
        initial_backoff=_duration(delivery_raw.get("initial_backoff", 1), ["delivery", "initial_backoff"]),
        max_backoff=_duration(delivery_raw.get("max_backoff", 300), ["delivery", "max_backoff"]),
        breaker_failures=delivery_raw.get("breaker_failures", 5),
        breaker_reset=_duration(delivery_raw.get("breaker_reset", 30), ["delivery", "breaker_reset"]),
    )
    routes = []
    for i, raw in enumerate(data.get("after_hours", ())):
        if raw["action"] == "escalate" and not raw.get("escalate_to"):
            raise _error(["after_hours", i, "escalate_to"], "action 'escalate' needs escalate_to channels")
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
        raise _error(["after_hours"], "needs alerting.business_hours")
    esc = data.get("escalation", {})
    escalation = EscalationPolicy(
        enabled=esc.get("enabled", True),
        after=_duration(esc.get("after", "15m"), ["escalation", "after"]),
        repeat=esc.get("repeat", 3),
        severities=tuple(esc.get("severities", ("CRITICAL",))),
        channels=tuple(esc.get("channels", ())),
    )
    digest_raw = (data.get("email") or {}).get("digest", {})
    digest = DigestPolicy(
        every=_duration(digest_raw.get("every", "15m"), ["email", "digest", "every"]),
        max_alerts=digest_raw.get("max_alerts", 20),
        severities=tuple(digest_raw.get("severities", ("MEDIUM",))),
    )
    channels = {name: data[name] for name in CHANNEL_SECTIONS if name in data}
    rate_limits = dict(DEFAULT_RATE_LIMITS)
    group_waits = {}
    for name, raw in channels.items():
        if "rate_limit" in raw:
            rate_limits[name] = _rate(raw["rate_limit"], [name, "rate_limit"])
        if "group_wait" in raw:
            group_waits[name] = _duration(raw["group_wait"], [name, "group_wait"])
    return AlertingConfig(
        dashboard_url=data.get("dashboard_url"),
        group_wait=_duration(data.get("group_wait", 10), ["group_wait"]),
        poll_interval=max(0.01, _duration(data.get("poll_interval", 1), ["poll_interval"])),
        flush_timeout=_duration(data.get("flush_timeout", 10), ["flush_timeout"]),
        delivery=delivery,
        business_hours=_business_hours(data["business_hours"]) if "business_hours" in data else None,
        after_hours=tuple(routes),
        escalation=escalation,
        digest=digest,
        remediation=_remediation(data.get("remediation", {})),
        channels=channels,
        rate_limits=rate_limits,
        group_waits=group_waits,
    )
