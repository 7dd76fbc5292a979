"""Receivers: one module per channel kind, each holding its configuration (schema, typed config with its
defaults) and its construction, registered in :mod:`logwarden.alerting.notify.registry`. The modules of
this package are discovered with ``pkgutil``: adding a receiver is adding a file here."""

from logwarden.alerting.notify.base import Notifier
from logwarden.alerting.notify.console import ConsoleNotifier

__all__ = ["ConsoleNotifier", "Notifier"]
