"""``build_alerting``: the one entry point the stack uses."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from logwarden.alerting.config import AlertingConfig, parse_alerting
from logwarden.alerting.notify.base import Notifier, Receiver
from logwarden.alerting.notify.registry import Channel, ReceiverContext, receivers
from logwarden.alerting.service import AlertService
from logwarden.processing.enrich import Inventory

log = logging.getLogger(__name__)


def build_channels(config: AlertingConfig, alerts_dir: Path | None = None) -> dict[str, Channel]:
    """A channel per configured receiver section, built by its registered receiver (none configured:
    console and journal only), and one per channel configuration of each named receiver
    (``payments.slack``, ``payments.slack.2``, ...). A channel's rate limit and grouping delay come
    from its section's generic keys when set there."""
    kinds = receivers()
    channels: dict[str, Channel] = {}
    for name, section in config.receivers.items():
        context = ReceiverContext(name, config, alerts_dir)
        for channel in kinds[name].channels(section, context):
            if channel.name in channels:
                raise ValueError(f"receiver {name!r} builds channel {channel.name!r}, which already exists")
            channels[channel.name] = dataclasses.replace(
                channel,
                rate_limit=config.rate_limits.get(channel.name, channel.rate_limit),
                group_wait=config.group_waits.get(channel.name, channel.group_wait),
            )
    for receiver in config.named_receivers.values():
        for spec in receiver.channels:
            context = ReceiverContext(spec.channel, config, alerts_dir)
            for channel in kinds[spec.kind].channels(spec.config, context):
                if channel.name in channels:
                    raise ValueError(f"receiver {receiver.name!r} builds channel {channel.name!r}, which already exists")
                channels[channel.name] = dataclasses.replace(
                    channel,
                    rate_limit=spec.rate_limit or channel.rate_limit,
                    group_wait=spec.group_wait if spec.group_wait is not None else channel.group_wait,
                )
    return channels


def build_receivers(config: AlertingConfig) -> dict[str, Receiver]:
    """The receiver of each configured channel."""
    return {name: channel.receiver for name, channel in build_channels(config).items()}


def build_alerting(
    section: AlertingConfig | dict | None,
    routing: dict[str, list[str]],
    alerts_dir: Path,
    dashboard_url: str | None = None,
    console: Notifier | None = None,
    source: str | None = None,
    inventory: Inventory | None = None,
) -> AlertService:
    """The alert service for the ``alerting:`` section (an AlertingConfig as ``load_settings`` gives it,
    or the mapping; None: embedded defaults), the rules file's ``routing`` and the folder
    ``<data-dir>/alerts``.

    Raises ConfigError (an AlertingConfigError with the key ``path``) naming the key when
    ``section`` is invalid; ``source`` (the config file's name) starts its message. ``console``
    replaces standard output for the one-line alerts. ``inventory`` gives the ``team``, ``tier`` and
    ``environment`` labels the routing tree may match (None: the inventory shipped). Call ``start()`` to deliver (alerts
    dispatched before are queued durably); ``close()`` at the end.
    """
    config = section if isinstance(section, AlertingConfig) else parse_alerting(section, source=source or "config")
    channels = build_channels(config, Path(alerts_dir))
    if channels:
        log.info("alerting: channels with receivers: %s", ", ".join(sorted(channels)))
    return AlertService(
        config, routing, Path(alerts_dir), channels, dashboard_url=dashboard_url, console=console,
        inventory=inventory,
    )
