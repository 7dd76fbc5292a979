"""Remediation actions (e.g. "restart the connection pool"): a command or a webhook run with the
anomaly as input, behind an allow-list, a rate limit (enforced by the delivery worker, which skips
rather than defers a rate-limited action) and a dry-run mode."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

import orjson
import requests

from logwarden.alerting.config import RemediationAction, RemediationPolicy
from logwarden.alerting.notify.base import DeliveryError, Outgoing
from logwarden.alerting.notify.webhook import post_json

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "remediation."


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
        if self.action.command:
            executable = shutil.which(self.action.command[0]) or self.action.command[0]
            if (
                self.action.command[0] not in self.policy.allowed_commands
                and executable not in self.policy.allowed_commands
            ):
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
