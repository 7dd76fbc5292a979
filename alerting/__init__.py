"""Alerting layer: route anomalies by severity to channels, through a durable outbox.

Entry point: :func:`build_alerting` → :class:`AlertService` (``start``, ``dispatch``,
``update_routing``, ``acknowledge``, ``close``). Read API for dashboards: :mod:`alerting.history`.
HTTP handlers: :mod:`alerting.http`. Receivers (one module each, registered with their configuration):
:mod:`alerting.notify.registry`.
"""

from logwarden.alerting.build import build_alerting, build_channels, build_receivers
from logwarden.alerting.config import AlertingConfig, parse_alerting
from logwarden.alerting.notify import ConsoleNotifier, Notifier
from logwarden.alerting.outbox import Outbox
from logwarden.alerting.service import AlertService

__all__ = [
    "AlertService",
    "AlertingConfig",
    "ConsoleNotifier",
    "Notifier",
    "Outbox",
    "build_alerting",
    "build_channels",
    "build_receivers",
    "parse_alerting",
]
