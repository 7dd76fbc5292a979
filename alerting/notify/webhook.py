"""A generic webhook: the alerts of a message POSTed as JSON."""

from __future__ import annotations

from typing import Any

import requests

from logwarden.alerting.format import view
from logwarden.alerting.notify.base import DeliveryError, Outgoing
from logwarden.common.durations import parse_duration


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

    def __init__(self, config: dict[str, Any]) -> None:
        self.url = config["url"]
        self.headers = dict(config.get("headers", {}))
        self.timeout = parse_duration(config.get("timeout", 10))
        self.session = requests.Session()

    def deliver(self, message: Outgoing) -> None:
        """POST the message."""
        post_json(self.session, self.url, webhook_body(message), self.timeout, self.headers)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()
