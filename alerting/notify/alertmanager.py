"""Prometheus Alertmanager as a receiver: ``POST /api/v2/alerts``.

Labels identify the incident (alertname = rule, key, service, severity); a resolved anomaly is sent
with ``endsAt`` set, which resolves the alert in Alertmanager.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from logwarden.alerting.format import view
from logwarden.alerting.notify.base import ACKNOWLEDGE, Outgoing
from logwarden.alerting.notify.registry import (
    DURATION,
    Channel,
    ReceiverContext,
    SectionConfig,
    duration,
    register_receiver,
    setting,
)
from logwarden.alerting.notify.webhook import post_json
from logwarden.monitoring.anomaly import RESOLVED

FIRING_FOR = timedelta(hours=1)  # a firing alert re-sent by escalation or realert extends this
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {"url": {"type": "string"}, "timeout": DURATION},
}


@dataclass(frozen=True)
class AlertmanagerConfig(SectionConfig):
    """``alerting.alertmanager``: the Alertmanager's base URL (or its ``/api/v2/alerts``)."""

    url: str
    timeout: float = setting(10.0, convert=duration)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _started(window_start: str, now: datetime) -> datetime:
    """The start of an alert in wall-clock time: the window start, never later than a second ago
    (event time may run ahead of the wall clock, and Alertmanager refuses a start after the end)."""
    try:
        start = datetime.fromisoformat(window_start.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        start = now
    return min(start, now - timedelta(seconds=1))


def alertmanager_alerts(message: Outgoing, now: datetime | None = None) -> list[dict[str, Any]]:
    """The postable alerts of a message."""
    now = now or datetime.now(timezone.utc)
    alerts = []
    for anomaly in message.anomalies:
        v = view(anomaly, message.dashboard_url)
        labels = {
            "alertname": anomaly.rule,
            "key": anomaly.key,
            "service": v.service,
            "severity": anomaly.severity.lower(),
            "source": "logwarden",
        }
        annotations = {
            "summary": v.title,
            "description": anomaly.description or v.title,
            "count": v.count_and_window,
            "value": v.value_vs_threshold,
            "window": v.window,
            "action": v.action,
            "samples": "\n".join(v.samples),
        }
        alert = {
            "labels": labels,
            "annotations": {k: val for k, val in annotations.items() if val},
            "startsAt": _rfc3339(_started(anomaly.window_start, now)),
        }
        alert["endsAt"] = _rfc3339(now) if anomaly.status == RESOLVED else _rfc3339(now + FIRING_FOR)
        if v.link:
            alert["generatorURL"] = v.link
        alerts.append(alert)
    return alerts


class AlertmanagerReceiver:
    """Posts alerts to an Alertmanager (``url`` is its base, e.g. http://127.0.0.1:9093)."""

    name = "alertmanager"

    def __init__(self, config: AlertmanagerConfig) -> None:
        base = config.url.rstrip("/")
        self.url = base if base.endswith("/api/v2/alerts") else f"{base}/api/v2/alerts"
        self.timeout = config.timeout
        self.session = requests.Session()

    def deliver(self, message: Outgoing) -> None:
        """POST the alerts of the message."""
        if message.kind == ACKNOWLEDGE:
            return
        post_json(self.session, self.url, alertmanager_alerts(message), self.timeout)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def build(config: AlertmanagerConfig, context: ReceiverContext) -> Channel:
    """The Alertmanager channel."""
    return Channel(context.name, AlertmanagerReceiver(config))


register_receiver("alertmanager", SCHEMA, AlertmanagerConfig, build)
