"""PagerDuty through the Events API v2 (pdpyras): trigger with ``dedup_key`` = rule:key (tenant/rule:key
for a tenant other than the default: ``Anomaly.dedup_key``, so two tenants never resolve each other's
incident), resolve when the anomaly clears, acknowledge when acknowledged here, severity mapped."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Mapping

with warnings.catch_warnings():  # pdpyras announces its successor on import; it is the library asked for
    warnings.simplefilter("ignore", UserWarning)
    import pdpyras

from logwarden.alerting.format import signals, view
from logwarden.alerting.notify.base import ACKNOWLEDGE, DeliveryError, Outgoing
from logwarden.alerting.notify.registry import (
    DURATION,
    SEVERITIES,
    Channel,
    ReceiverContext,
    SectionConfig,
    duration,
    register_receiver,
    setting,
)
from logwarden.monitoring.anomaly import RESOLVED, Anomaly

log = logging.getLogger(__name__)
DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_PD_SEVERITY = {"CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning", "LOW": "info"}

SCHEMA = {
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
        "timeout": DURATION,
    },
}


@dataclass(frozen=True)
class PagerDutyConfig(SectionConfig):
    """``alerting.pagerduty``: the integration's routing key; our severities mapped to PagerDuty's."""

    routing_key: str
    events_url: str = DEFAULT_EVENTS_URL
    severity_map: Mapping[str, str] = setting(
        default_factory=lambda: dict(DEFAULT_PD_SEVERITY), convert=lambda v, path: {**DEFAULT_PD_SEVERITY, **v}
    )
    timeout: float = setting(10.0, convert=duration)


def escalation_dedup_key(dedup_key: str, level: int) -> str:
    """The dedup key of the ``level``-th re-page: a new incident, so PagerDuty pages again."""
    return dedup_key if level == 0 else f"{dedup_key}#escalation-{level}"


class PagerDutyReceiver:
    """Sends Events API v2 events; retries are the outbox's, not the client's."""

    name = "pagerduty"

    def __init__(self, config: PagerDutyConfig) -> None:
        url = config.events_url.rstrip("/")
        base = url[: -len("/v2/enqueue")] if url.endswith("/v2/enqueue") else url
        self.session = pdpyras.EventsAPISession(config.routing_key)
        self.session.url = base
        self.session.timeout = config.timeout
        self.session.retry = {}  # no retries inside the client: the outbox retries with backoff
        self.session.max_network_attempts = 0
        self.session.retry[429] = 1  # one bounded retry on 429 instead of the client's endless loop
        self.session.sleep_timer = 0.1
        self.severity_map = dict(config.severity_map)

    def _trigger(self, anomaly: Anomaly, level: int, dashboard_url: str | None) -> None:
        v = view(anomaly, dashboard_url)
        summary = f"{v.title}: {v.count_and_window}, {v.value_vs_threshold}"
        if level:
            summary = f"ESCALATION {level} (unacknowledged) {summary}"
        links = [{"href": v.link, "text": "logwarden dashboard"}] if v.link else None
        self.session.trigger(
            summary=summary[:1024],
            source=v.service,
            severity=self.severity_map.get(anomaly.severity, "error"),
            dedup_key=escalation_dedup_key(anomaly.dedup_key, level),
            links=links,
            custom_details={
                "rule": anomaly.rule,
                "type": v.type,
                "key": anomaly.key,
                "tenant": anomaly.tenant,
                "service": v.service,
                "count": v.count_and_window,
                "window": v.window,
                "time": v.time,
                "action": v.action,
                "samples": v.samples,
                "value": anomaly.value,
                "threshold": anomaly.threshold,
                "anomaly_id": anomaly.id,
                **({"why": v.why, "signals": signals(anomaly)} if v.why else {}),
            },
        )

    def deliver(self, message: Outgoing) -> None:
        """One event per incident (dedup_key) of the message."""
        incidents: dict[str, Anomaly] = {}
        for anomaly in message.anomalies:
            incidents[anomaly.dedup_key] = anomaly  # the newest event of an incident wins
        try:
            for dedup_key, anomaly in incidents.items():
                if message.kind == ACKNOWLEDGE:
                    for level in range(int(message.meta.get("escalations", 0)) + 1):
                        self.session.acknowledge(escalation_dedup_key(dedup_key, level))
                elif anomaly.status == RESOLVED:
                    for level in range(int(message.meta.get("escalations", 0)) + 1):
                        self.session.resolve(escalation_dedup_key(dedup_key, level))
                else:
                    self._trigger(anomaly, message.escalation_level, message.dashboard_url)
        except pdpyras.PDHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise DeliveryError(
                f"PagerDuty refused the event: HTTP {status}: {exc}",
                retryable=status is None or status >= 500 or status == 429,
            ) from exc
        except pdpyras.PDClientError as exc:
            raise DeliveryError(f"PagerDuty unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def build(config: PagerDutyConfig, context: ReceiverContext) -> Channel:
    """The PagerDuty channel."""
    return Channel(context.name, PagerDutyReceiver(config))


register_receiver("pagerduty", SCHEMA, PagerDutyConfig, build)
