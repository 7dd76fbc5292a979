"""Receivers: one module per channel kind."""

from alerting.notify.base import Notifier
from alerting.notify.console import ConsoleNotifier

__all__ = ["ConsoleNotifier", "Notifier"]
