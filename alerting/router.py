"""The severity router: each anomaly goes to the channels of its severity (or of its rule).

Every routed alert is written to the outbox with the channel it is addressed to, and shown
on the console. A channel with a configured receiver is also delivered there; without
credentials (embedded defaults) the console and the outbox are the delivery.
"""
from __future__ import annotations

import logging
import time

from alerting.notify.base import Notifier
from alerting.outbox import Outbox
from monitoring.anomaly import Anomaly

log = logging.getLogger(__name__)


class AlertRouter:
    """Routes anomalies by severity to channels, through the outbox."""

    def __init__(self, routing: dict[str, list[str]], outbox: Outbox, console: Notifier | None = None,
                 receivers: dict[str, Notifier] | None = None) -> None:
        self.routing = routing
        self.outbox = outbox
        self.console = console
        self.receivers = receivers or {}
        self.sent = 0

    def channels_for(self, anomaly: Anomaly) -> list[str]:
        """The rule's own channels if it names any, else those of its severity."""
        return list(anomaly.channels) or list(self.routing.get(anomaly.severity, ["dashboard"]))

    def dispatch(self, anomalies: list[Anomaly]) -> None:
        """Record and deliver ``anomalies``."""
        routed = [(anomaly, channel) for anomaly in anomalies for channel in self.channels_for(anomaly)]
        now = time.time()
        self.outbox.append([{**anomaly.to_dict(), "channel": channel, "routed_at": now} for anomaly, channel in routed])
        for anomaly, channel in routed:
            self._deliver(anomaly, channel)
        self.sent += len(routed)

    def _deliver(self, anomaly: Anomaly, channel: str) -> None:
        if self.console is not None:
            self.console.send(anomaly, channel)
        receiver = self.receivers.get(channel)
        if receiver is None:
            return
        try:
            receiver.send(anomaly, channel)
        except Exception:
            log.exception("delivery of %s to %s failed", anomaly.id, channel)
