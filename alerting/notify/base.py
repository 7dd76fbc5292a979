"""The receiver interface: a receiver delivers one outgoing message and raises on failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from logwarden.monitoring.anomaly import Anomaly

NOTIFY = "notify"
ESCALATION = "escalation"
ACKNOWLEDGE = "acknowledge"
DIGEST = "digest"
REMEDIATE = "remediate"


class DeliveryError(Exception):
    """A delivery failed; ``retryable`` is False when trying again cannot help (e.g. a refused token)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Outgoing:
    """One message to one channel, carrying one or more alerts (a group or a digest)."""

    message_id: int
    channel: str
    kind: str
    anomalies: list[Anomaly]
    alert_ids: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    dashboard_url: str | None = None

    @property
    def escalation_level(self) -> int:
        """0 for a first notification, N for the N-th re-page of an unacknowledged alert."""
        return int(self.meta.get("level", 0))


class Receiver(Protocol):
    """Delivers messages to one channel."""

    name: str

    def deliver(self, message: Outgoing) -> None:
        """Deliver ``message``; raise (DeliveryError or any exception) on failure."""

    def close(self) -> None:
        """Release connections."""


class Notifier(Protocol):
    """Shows one anomaly on one channel at once (the console)."""

    def send(self, anomaly: Anomaly, channel: str) -> None:
        """Deliver ``anomaly``, addressed to ``channel``."""
