"""Remediation actions (e.g. "restart the connection pool"): a command or a webhook run with the
anomaly as input, behind an allow-list, a rate limit (enforced by the delivery worker, which skips
rather than defers a rate-limited action) and a dry-run mode."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping

import orjson
import requests

from logwarden.alerting.notify.base import DeliveryError, Outgoing
from logwarden.alerting.notify.registry import (
    DURATION,
    RATE,
    Channel,
    RateLimit,
    ReceiverContext,
    SectionConfig,
    SectionError,
    as_tuple,
    duration,
    parse_rate_limit,
    register_receiver,
    setting,
)
from logwarden.alerting.notify.webhook import post_json

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "remediation."
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dry_run": {"type": "boolean"},
        "allowed_commands": {"type": "array", "items": {"type": "string"}},
        "allowed_urls": {"type": "array", "items": {"type": "string"}},
        "rate_limit": RATE,
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
                    "timeout": DURATION,
                    "rate_limit": RATE,
                },
                "oneOf": [{"required": ["command"]}, {"required": ["webhook"]}],
            },
        },
    },
}


@dataclass(frozen=True)
class RemediationAction(SectionConfig):
    """A command or webhook run with the anomaly as input when one of ``rules`` fires."""

    name: str
    rules: tuple[str, ...] = setting(convert=as_tuple)
    command: tuple[str, ...] = setting((), convert=as_tuple)
    webhook: str | None = None
    timeout: float = setting(30.0, convert=duration)
    rate_limit: RateLimit | None = setting(None, convert=parse_rate_limit)


def _actions(raw: Mapping[str, Any], path: list) -> tuple[RemediationAction, ...]:
    actions = []
    for name, spec in raw.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise SectionError(path + [name], "an action name may hold letters, digits, '_', '.' and '-' only")
        actions.append(RemediationAction.from_dict({**spec, "name": name}, path + [name]))
    return tuple(actions)


def _command_allowed(command: tuple[str, ...], allowed: tuple[str, ...]) -> bool:
    executable = shutil.which(command[0]) or command[0]
    return command[0] in allowed or executable in allowed


@dataclass(frozen=True)
class RemediationPolicy(SectionConfig):
    """``alerting.remediation``: actions behind an allow-list, a rate limit (skipped, not deferred,
    when exceeded) and a dry-run mode (on by default)."""

    dry_run: bool = True
    allowed_commands: tuple[str, ...] = setting((), convert=as_tuple)
    allowed_urls: tuple[str, ...] = setting((), convert=as_tuple)
    rate_limit: RateLimit = setting(RateLimit(1, 600.0), convert=parse_rate_limit)
    actions: tuple[RemediationAction, ...] = setting((), convert=_actions)

    def __post_init__(self) -> None:
        for action in self.actions:
            path = ["actions", action.name]
            if action.command and not _command_allowed(action.command, self.allowed_commands):
                raise SectionError(
                    path + ["command"], f"{action.command[0]!r} is not in alerting.remediation.allowed_commands"
                )
            if action.webhook and not any(action.webhook.startswith(p) for p in self.allowed_urls):
                raise SectionError(
                    path + ["webhook"], f"{action.webhook!r} matches no prefix of alerting.remediation.allowed_urls"
                )


def channel_of(action: RemediationAction) -> str:
    """The delivery channel of an action."""
    return f"{CHANNEL_PREFIX}{action.name}"


class RemediationReceiver:
    """Runs one configured action for each message (one firing anomaly)."""

    skip_when_rate_limited = True

    def __init__(self, action: RemediationAction, policy: RemediationPolicy) -> None:
        self.action = action
        self.policy = policy
        self.name = channel_of(action)
        self.session = requests.Session()

    def _allowed(self) -> None:
        if self.action.command and not _command_allowed(self.action.command, self.policy.allowed_commands):
            raise DeliveryError(f"command {self.action.command[0]!r} is not allowed", retryable=False)
        if self.action.webhook and not any(
            self.action.webhook.startswith(p) for p in self.policy.allowed_urls
        ):
            raise DeliveryError(f"webhook {self.action.webhook!r} is not allowed", retryable=False)

    def deliver(self, message: Outgoing) -> str:
        """Run (or, in dry-run mode, describe) the action; returns what was done."""
        self._allowed()
        anomaly = message.anomalies[-1]
        payload = {
            "action": self.action.name,
            "dry_run": self.policy.dry_run,
            "anomaly": anomaly.to_dict(),
            "dedup_key": anomaly.dedup_key,
        }
        target = " ".join(self.action.command) if self.action.command else f"POST {self.action.webhook}"
        if self.policy.dry_run:
            log.warning(
                "remediation %s (dry run) for %s: would run %s", self.action.name, anomaly.dedup_key, target
            )
            return f"dry run: would run {target}"
        if self.action.command:
            env = {
                **os.environ,
                "LOGWARDEN_ACTION": self.action.name,
                "LOGWARDEN_RULE": anomaly.rule,
                "LOGWARDEN_KEY": anomaly.key,
                "LOGWARDEN_SEVERITY": anomaly.severity,
                "LOGWARDEN_DEDUP_KEY": anomaly.dedup_key,
            }
            try:
                done = subprocess.run(
                    list(self.action.command),
                    input=orjson.dumps(payload),
                    env=env,
                    capture_output=True,
                    timeout=self.action.timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise DeliveryError(f"remediation {self.action.name} failed: {exc}", retryable=False) from exc
            if done.returncode != 0:
                raise DeliveryError(
                    f"remediation {self.action.name} exited {done.returncode}: "
                    f"{done.stderr.decode(errors='replace')[-300:]}",
                    retryable=False,
                )
            log.warning("remediation %s ran for %s", self.action.name, anomaly.dedup_key)
            return f"ran {target}: exit 0 {done.stdout.decode(errors='replace')[-200:].strip()}".strip()
        post_json(self.session, self.action.webhook, payload, self.action.timeout)
        log.warning("remediation %s posted for %s", self.action.name, anomaly.dedup_key)
        return f"posted to {self.action.webhook}"

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def build(policy: RemediationPolicy, context: ReceiverContext) -> list[Channel]:
    """A channel per action, triggered by the firing anomalies of its rules, under its rate limit
    (or the section's)."""
    return [
        Channel(
            channel_of(action),
            RemediationReceiver(action, policy),
            rate_limit=action.rate_limit or policy.rate_limit,
            triggered_by=action.rules,
        )
        for action in policy.actions
    ]


register_receiver("remediation", SCHEMA, RemediationPolicy, build, channel_keys=False)
