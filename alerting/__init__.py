"""Alerting layer: route anomalies by severity to channels, through a durable outbox.

Entry point: :func:`build_alerting` → :class:`AlertService` (``start``, ``dispatch``,
``update_routing``, ``acknowledge``, ``close``). Read API for dashboards: :mod:`alerting.history`.
HTTP handlers: :mod:`alerting.http`.
"""

from alerting.build import build_alerting, build_receivers
from alerting.config import AlertingConfig, parse_alerting
from alerting.notify import ConsoleNotifier, Notifier
from alerting.outbox import Outbox
from alerting.service import AlertService

__all__ = [
    "AlertService",
    "AlertingConfig",
    "ConsoleNotifier",
    "Notifier",
    "Outbox",
    "build_alerting",
    "build_receivers",
    "parse_alerting",
]
