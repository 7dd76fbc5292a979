"""Alerting layer: route anomalies by severity to channels, through a durable outbox."""
from alerting.notify import ConsoleNotifier, Notifier
from alerting.outbox import Outbox
from alerting.router import AlertRouter

__all__ = ["AlertRouter", "ConsoleNotifier", "Notifier", "Outbox"]
