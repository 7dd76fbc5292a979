"""``build_alerting``: the one entry point the stack uses."""

from __future__ import annotations

import logging
from pathlib import Path

from logwarden.alerting.config import AlertingConfig, parse_alerting
from logwarden.alerting.notify.base import Notifier, Receiver
from logwarden.alerting.service import AlertService

log = logging.getLogger(__name__)


def build_receivers(config: AlertingConfig) -> dict[str, Receiver]:
    """A receiver per configured channel (none configured: console and journal only)."""
    from logwarden.alerting.notify.alertmanager import AlertmanagerReceiver
    from logwarden.alerting.notify.email import EmailReceiver
    from logwarden.alerting.notify.pagerduty import PagerDutyReceiver
    from logwarden.alerting.notify.remediation import RemediationReceiver, channel_of
    from logwarden.alerting.notify.slack import SlackReceiver
    from logwarden.alerting.notify.webhook import WebhookReceiver

    kinds = {
        "pagerduty": PagerDutyReceiver,
        "slack": SlackReceiver,
        "email": EmailReceiver,
        "webhook": WebhookReceiver,
        "alertmanager": AlertmanagerReceiver,
    }
    receivers: dict[str, Receiver] = {name: kinds[name](section) for name, section in config.channels.items()}
    for action in config.remediation.actions:
        receivers[channel_of(action)] = RemediationReceiver(action, config.remediation)
    return receivers


def build_alerting(
    section: dict | None,
    routing: dict[str, list[str]],
    alerts_dir: Path,
    dashboard_url: str | None = None,
    console: Notifier | None = None,
    source: str | None = None,
) -> AlertService:
    """The alert service for the ``alerting:`` config mapping ``section`` (None: embedded defaults),
    the rules file's ``routing`` and the folder ``<data-dir>/alerts``.

    Raises ConfigError (an AlertingConfigError with the key ``path``) naming the key when
    ``section`` is invalid; ``source`` (the config file's name) starts its message. ``console``
    replaces standard output for the one-line alerts. Call ``start()`` to deliver (alerts
    dispatched before are queued durably); ``close()`` at the end.
    """
    config = parse_alerting(section, source=source or "config")
    receivers = build_receivers(config)
    if receivers:
        log.info("alerting: channels with receivers: %s", ", ".join(sorted(receivers)))
    return AlertService(
        config, routing, Path(alerts_dir), receivers, dashboard_url=dashboard_url, console=console
    )
