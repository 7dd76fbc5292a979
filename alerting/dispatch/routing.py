"""Routing: the channels of an anomaly, from the rules file (its rule's ``channels``, else those of its
severity), changed outside business hours by the ``after_hours`` routes (hold or escalate)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from logwarden.alerting.config import AlertingConfig, AfterHoursRoute
from logwarden.alerting.dispatch.hours import is_open, next_opening
from logwarden.monitoring.anomaly import Anomaly


@dataclass(frozen=True)
class Route:
    """One channel an anomaly goes to; ``held_until`` (epoch seconds) when held for business hours."""

    channel: str
    held_until: float | None = None
    escalated_from: str | None = None


def base_channels(anomaly: Anomaly, routing: dict[str, list[str]]) -> list[str]:
    """The rule's own channels if it names any, else those of its severity (dashboard by default)."""
    return list(dict.fromkeys(anomaly.channels or routing.get(anomaly.severity, ["dashboard"])))


def _matches(route: AfterHoursRoute, anomaly: Anomaly, channel: str) -> bool:
    return (
        route.channel == channel
        and (route.severity is None or route.severity == anomaly.severity)
        and (route.rule is None or route.rule == anomaly.rule)
    )


def routes_for(
    anomaly: Anomaly, routing: dict[str, list[str]], config: AlertingConfig, now: float
) -> list[Route]:
    """Where ``anomaly`` goes at wall-clock time ``now``."""
    channels = base_channels(anomaly, routing)
    hours = config.business_hours
    if hours is None or not config.after_hours:
        return [Route(channel) for channel in channels]
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    if is_open(hours, moment):
        return [Route(channel) for channel in channels]
    routes: dict[str, Route] = {}
    for channel in channels:
        rule = next((r for r in config.after_hours if _matches(r, anomaly, channel)), None)
        if rule is None:
            routes.setdefault(channel, Route(channel))
        elif rule.action == "hold":
            routes.setdefault(channel, Route(channel, held_until=next_opening(hours, moment).timestamp()))
        else:
            for target in rule.escalate_to:
                routes.setdefault(target, Route(target, escalated_from=channel))
    return list(routes.values())
