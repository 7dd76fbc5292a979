"""Receivers: one module per channel kind."""

from logwarden.alerting.notify.base import Notifier
from logwarden.alerting.notify.console import ConsoleNotifier

__all__ = ["ConsoleNotifier", "Notifier"]
