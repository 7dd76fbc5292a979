"""Routing: the channels of an anomaly at a moment.

The routing tree (``alerting.route``, else the default tree of the rules file: the rule's own
``channels``, else those of its severity) gives the routes the alert ends at; each route's receiver
gives channels (a named receiver's channels, or the channel of that name). A route whose
``mute_time_intervals`` hold the moment, or whose ``active_time_intervals`` do not, notifies no one
now. Outside business hours, the ``after_hours`` routes then hold or escalate a channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from logwarden.alerting.config import AfterHoursRoute, AlertingConfig
from logwarden.alerting.dispatch.hours import is_open, next_opening
from logwarden.alerting.dispatch.tree import NO_CHANNELS, RouteNode, default_tree, match
from logwarden.monitoring.anomaly import Anomaly


@dataclass(frozen=True)
class Route:
    """One channel an anomaly goes to; ``held_until`` (epoch seconds) when held for business hours.
    ``node`` is the route of the tree that sent it there (its grouping and timers)."""

    channel: str
    held_until: float | None = None
    escalated_from: str | None = None
    node: RouteNode | None = None


@dataclass(frozen=True)
class Muted:
    """A route of the tree that matched but notifies no one at this moment, and why."""

    node: RouteNode
    reason: str


def base_channels(anomaly: Anomaly, routing: dict[str, list[str]]) -> list[str]:
    """The rule's own channels if it names any, else those of its severity (dashboard by default)."""
    return list(dict.fromkeys(anomaly.channels or routing.get(anomaly.severity, ["dashboard"])))


def _matches(route: AfterHoursRoute, anomaly: Anomaly, channel: str) -> bool:
    return (
        route.channel == channel
        and (route.severity is None or route.severity == anomaly.severity)
        and (route.rule is None or route.rule == anomaly.rule)
    )


def time_muted(node: RouteNode, config: AlertingConfig, moment: datetime) -> str | None:
    """Why ``node`` notifies no one at ``moment`` (a mute interval holds it, or no active interval
    does), or None when it notifies."""
    for name in node.mute_time_intervals:
        interval = config.time_intervals.get(name)
        if interval is not None and interval.contains(moment):
            return f"muted by time interval {name!r}"
    if node.active_time_intervals and not any(
        config.time_intervals[name].contains(moment)
        for name in node.active_time_intervals
        if name in config.time_intervals
    ):
        return f"outside its active time intervals ({', '.join(node.active_time_intervals)})"
    return None


def plan(
    anomaly: Anomaly, labels: Mapping[str, str], tree: RouteNode, config: AlertingConfig, now: float
) -> tuple[list[Route], list[Muted]]:
    """The routes of ``anomaly`` (with ``labels``) through ``tree`` at wall-clock time ``now``, and the
    matched routes muted by their time intervals."""
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    wanted: dict[str, RouteNode] = {}
    muted: list[Muted] = []
    for found in match(tree, labels):
        reason = time_muted(found.route, config, moment)
        if reason is not None:
            muted.append(Muted(found.route, reason))
            continue
        receiver = found.receiver
        channels = [] if receiver == NO_CHANNELS else config.channels_of(receiver)
        for channel in channels:
            wanted.setdefault(channel, found.route)
    return _after_hours(anomaly, wanted, config, moment), muted


def _after_hours(
    anomaly: Anomaly, wanted: dict[str, RouteNode], config: AlertingConfig, moment: datetime
) -> list[Route]:
    hours = config.business_hours
    if hours is None or not config.after_hours or is_open(hours, moment):
        return [Route(channel, node=node) for channel, node in wanted.items()]
    routes: dict[str, Route] = {}
    for channel, node in wanted.items():
        rule = next((r for r in config.after_hours if _matches(r, anomaly, channel)), None)
        if rule is None:
            routes.setdefault(channel, Route(channel, node=node))
        elif rule.action == "hold":
            routes.setdefault(
                channel, Route(channel, held_until=next_opening(hours, moment).timestamp(), node=node)
            )
        else:
            for target in rule.escalate_to:
                routes.setdefault(target, Route(target, escalated_from=channel, node=node))
    return list(routes.values())


def routes_for(
    anomaly: Anomaly, routing: dict[str, list[str]], config: AlertingConfig, now: float
) -> list[Route]:
    """Where ``anomaly`` goes at wall-clock time ``now`` through the default tree of ``routing`` (and
    the anomaly's own channels)."""
    rule_channels = {anomaly.rule: anomaly.channels} if anomaly.channels else {}
    labels = {"rule": anomaly.rule, "severity": anomaly.severity}
    routes, _ = plan(anomaly, labels, default_tree(routing, rule_channels), config, now)
    return routes


__all__ = ["Muted", "Route", "base_channels", "plan", "routes_for", "time_muted"]
