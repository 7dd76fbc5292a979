"""A generic webhook: the alerts of a message POSTed as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import requests

from logwarden.alerting.format import view
from logwarden.alerting.notify.base import DeliveryError, Outgoing
from logwarden.alerting.notify.registry import (
    DURATION,
    Channel,
    ReceiverContext,
    SectionConfig,
    duration,
    register_receiver,
    setting,
)

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "timeout": DURATION,
    },
}


@dataclass(frozen=True)
class WebhookConfig(SectionConfig):
    """``alerting.webhook``: the URL the alerts are POSTed to, with extra headers."""

    url: str
    headers: Mapping[str, str] = setting(default_factory=dict, convert=lambda v, path: dict(v))
    timeout: float = setting(10.0, convert=duration)


def webhook_body(message: Outgoing) -> dict[str, Any]:
    """The JSON document sent: the message, then each alert with its readable fields."""
    alerts = []
    for alert_id, anomaly in zip(message.alert_ids or [None] * len(message.anomalies), message.anomalies):
        v = view(anomaly, message.dashboard_url)
        alerts.append(
            {
                **anomaly.to_dict(),
                "alert_id": alert_id,
                "dedup_key": anomaly.dedup_key,
                "service": v.service,
                "title": v.title,
                "count_and_window": v.count_and_window,
                "link": v.link,
                "why": v.why,
            }
        )
    return {
        "source": "logwarden",
        "message_id": message.message_id,
        "kind": message.kind,
        "escalation_level": message.escalation_level,
        "alerts": alerts,
    }


def post_json(
    session: requests.Session, url: str, body: Any, timeout: float, headers: dict[str, str] | None = None
) -> requests.Response:
    """POST ``body``; a 5xx, 429 or network error is retryable, another 4xx is not."""
    try:
        response = session.post(url, json=body, timeout=timeout, headers=headers or {})
    except requests.RequestException as exc:
        raise DeliveryError(f"POST {url} failed: {exc}") from exc
    if response.status_code >= 400:
        raise DeliveryError(
            f"POST {url} answered HTTP {response.status_code}: {response.text[:200]}",
            retryable=response.status_code >= 500 or response.status_code in (408, 429),
        )
    return response


class WebhookReceiver:
    """POSTs each message as JSON to a configured URL."""

    name = "webhook"

    def __init__(self, config: WebhookConfig) -> None:
        self.url = config.url
        self.headers = dict(config.headers)
        self.timeout = config.timeout
        self.session = requests.Session()

    def deliver(self, message: Outgoing) -> None:
        """POST the message."""
        post_json(self.session, self.url, webhook_body(message), self.timeout, self.headers)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def build(config: WebhookConfig, context: ReceiverContext) -> Channel:
    """The webhook channel."""
    return Channel(context.name, WebhookReceiver(config))


register_receiver("webhook", SCHEMA, WebhookConfig, build)
