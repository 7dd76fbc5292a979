"""The routing tree (``alerting.route``), with Alertmanager's semantics.

An alert enters at the root, which matches every alert. At each route, the children are tried in
order: the alert goes down the first child whose matchers all hold, and stops there unless that
child says ``continue: true``, in which case the next children are tried too. A route none of whose
children take the alert is where it ends: its ``receiver`` gets it. A child inherits its parent's
``receiver``, ``group_by``, ``group_wait``, ``group_interval`` and ``repeat_interval`` unless it sets
them; ``active_time_intervals`` and ``mute_time_intervals`` are a route's own (not inherited).

Without ``alerting.route`` the tree is built from the rules file (:func:`default_tree`): a rule's own
``channels`` first, then the channels of each severity, then ``dashboard``. Its routes keep the
grouping alerts had before trees existed (``group_interval`` None: see ``alerting.dispatch.grouping``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from logwarden.alerting.dispatch.matchers import EQUAL, Matcher, from_labels, matches_all, parse_matchers
from logwarden.alerting.notify.registry import DURATION, SectionError, duration

ALL_LABELS = "..."
DASHBOARD = "dashboard"
NO_CHANNELS = "(none)"  # the default tree's receiver of a severity routed to no channel at all
DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
LEGACY_GROUP_BY = ("rule", "service", "tenant")
STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

ROUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "receiver": {"type": "string", "minLength": 1},
        "group_by": STRINGS,
        "group_wait": DURATION,
        "group_interval": DURATION,
        "repeat_interval": DURATION,
        "matchers": STRINGS,
        "match": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "match_re": {"type": "object", "additionalProperties": {"type": "string"}},
        "continue": {"type": "boolean"},
        "active_time_intervals": STRINGS,
        "mute_time_intervals": STRINGS,
        "routes": {"type": "array", "items": {"$ref": "#/$defs/route"}},
    },
}


@dataclass(frozen=True)
class RouteNode:
    """One route of the tree, its inherited settings resolved.

    ``group_by`` None groups by every label; ``group_wait`` None takes the channel's own delay (or
    ``alerting.group_wait``); ``group_interval`` None keeps the grouping of the default tree (a new
    message after each one sent, no repeat). ``path`` is the position, e.g. ``route.routes[1].routes[0]``.
    """

    path: str
    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] | None = ()
    group_wait: float | None = DEFAULT_GROUP_WAIT
    group_interval: float | None = DEFAULT_GROUP_INTERVAL
    repeat_interval: float | None = DEFAULT_REPEAT_INTERVAL
    continue_: bool = False
    active_time_intervals: tuple[str, ...] = ()
    mute_time_intervals: tuple[str, ...] = ()
    routes: tuple["RouteNode", ...] = field(default=())

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that make the alert's group under this route."""
        if self.group_by is None:
            return dict(sorted(labels.items()))
        return {name: str(labels.get(name, "") or "") for name in self.group_by}

    def walk(self) -> Iterable["RouteNode"]:
        """This route and every route below it, depth first."""
        yield self
        for child in self.routes:
            yield from child.walk()


@dataclass(frozen=True)
class RouteMatch:
    """A route an alert ends at, with the routes that led there (root first)."""

    trail: tuple[RouteNode, ...]

    @property
    def route(self) -> RouteNode:
        """The route the alert ends at."""
        return self.trail[-1]

    @property
    def receiver(self) -> str:
        """The receiver of that route."""
        return self.route.receiver


def match(route: RouteNode, labels: Mapping[str, str], trail: tuple[RouteNode, ...] = ()) -> list[RouteMatch]:
    """The routes an alert with ``labels`` ends at, in order (empty when ``route`` does not match)."""
    if not matches_all(route.matchers, labels):
        return []
    trail = (*trail, route)
    found: list[RouteMatch] = []
    for child in route.routes:
        matched = match(child, labels, trail)
        found.extend(matched)
        if matched and not child.continue_:
            break
    return found or [RouteMatch(trail)]


def receivers_of(route: RouteNode, labels: Mapping[str, str]) -> list[str]:
    """The receivers an alert reaches, in order, each once."""
    return list(dict.fromkeys(m.receiver for m in match(route, labels)))


# parsing --------------------------------------------------------------------------------------------
def _matchers(raw: Mapping[str, Any], path: list) -> tuple[Matcher, ...]:
    try:
        found = from_labels(
            {k: _scalar(v) for k, v in (raw.get("match") or {}).items()}, raw.get("match_re")
        )
    except ValueError as exc:
        raise SectionError([*path, "match_re" if raw.get("match_re") else "match"], str(exc)) from None
    texts = raw.get("matchers") or ()
    parsed: list[Matcher] = []
    for i, text in enumerate(texts):
        try:
            parsed.extend(parse_matchers([text]))
        except ValueError as exc:
            raise SectionError([*path, "matchers", i], str(exc)) from None
    return (*found, *parsed)


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _group_by(raw: list[str], path: list) -> tuple[str, ...] | None:
    if ALL_LABELS in raw:
        if len(raw) > 1:
            raise SectionError(path, "'...' groups by every label and stands alone")
        return None
    return tuple(dict.fromkeys(raw))


def _intervals(raw: Mapping[str, Any], key: str, intervals: set[str], path: list) -> tuple[str, ...]:
    names = tuple(raw.get(key) or ())
    for i, name in enumerate(names):
        if name not in intervals:
            known = ", ".join(sorted(intervals)) or "none defined"
            raise SectionError([*path, key, i], f"unknown time interval {name!r} (time_intervals: {known})")
    return names


def parse_route(
    raw: Mapping[str, Any],
    receivers: set[str],
    intervals: set[str],
    path: list | None = None,
    parent: RouteNode | None = None,
) -> RouteNode:
    """The route of a schema-validated mapping (the root when ``parent`` is None), its children with it.

    ``receivers``: the receiver names a route may use; ``intervals``: the time interval names.
    Errors are SectionErrors at the key path below ``alerting``.
    """
    path = ["route"] if path is None else path
    if parent is None:
        if "receiver" not in raw:
            raise SectionError(path, "the root route needs a receiver")
        for key in ("matchers", "match", "match_re"):
            if raw.get(key):
                raise SectionError([*path, key], "the root route matches every alert: it takes no matchers")
        if raw.get("continue"):
            raise SectionError([*path, "continue"], "the root route cannot continue")
        base = RouteNode(path="route", receiver=raw["receiver"])
    else:
        base = parent
    receiver = raw.get("receiver", base.receiver)
    if receiver not in receivers:
        raise SectionError(
            [*path, "receiver"], f"unknown receiver {receiver!r} (receivers: {', '.join(sorted(receivers))})"
        )
    node = replace(
        base,
        path=".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "["),
        receiver=receiver,
        matchers=_matchers(raw, path) if parent is not None else (),
        group_by=_group_by(raw["group_by"], [*path, "group_by"]) if "group_by" in raw else base.group_by,
        group_wait=_seconds(raw, "group_wait", path, base.group_wait),
        group_interval=_seconds(raw, "group_interval", path, base.group_interval, positive=True),
        repeat_interval=_seconds(raw, "repeat_interval", path, base.repeat_interval, positive=True),
        continue_=bool(raw.get("continue", False)),
        active_time_intervals=_intervals(raw, "active_time_intervals", intervals, path),
        mute_time_intervals=_intervals(raw, "mute_time_intervals", intervals, path),
        routes=(),
    )
    children = tuple(
        parse_route(child, receivers, intervals, [*path, "routes", i], node)
        for i, child in enumerate(raw.get("routes") or ())
    )
    return replace(node, routes=children)


def _seconds(raw: Mapping[str, Any], key: str, path: list, inherited: float | None,
             positive: bool = False) -> float | None:
    if key not in raw:
        return inherited
    value = duration(raw[key], [*path, key])
    if value < 0 or (positive and value == 0):
        raise SectionError([*path, key], f"must be {'positive' if positive else 'zero or more'}")
    return value


# the default tree -----------------------------------------------------------------------------------
def _channel_routes(path: str, matcher: Matcher, channels: list[str]) -> list[RouteNode]:
    """One route per channel, each but the last continuing, so the alert reaches all of them."""
    channels = list(dict.fromkeys(channels))
    return [
        RouteNode(
            path=path,
            receiver=channel,
            matchers=(matcher,),
            group_by=LEGACY_GROUP_BY,
            group_wait=None,
            group_interval=None,
            repeat_interval=None,
            continue_=i < len(channels) - 1,
        )
        for i, channel in enumerate(channels)
    ]


def default_tree(routing: Mapping[str, Iterable[str]], rule_channels: Mapping[str, Iterable[str]]) -> RouteNode:
    """The tree of the rules file: each rule naming its own ``channels`` (``rule_channels``), then each
    severity's channels (``routing``), else ``dashboard``. It routes exactly as before trees."""
    children: list[RouteNode] = []
    for rule, channels in sorted(rule_channels.items()):
        if list(channels):
            children += _channel_routes("", Matcher.of("rule", EQUAL, rule), list(channels))
    for severity, channels in routing.items():
        children += _channel_routes("", Matcher.of("severity", EQUAL, severity), list(channels) or [NO_CHANNELS])
    numbered = tuple(replace(child, path=f"route.routes[{i}]") for i, child in enumerate(children))
    return RouteNode(
        path="route",
        receiver=DASHBOARD,
        group_by=LEGACY_GROUP_BY,
        group_wait=None,
        group_interval=None,
        repeat_interval=None,
        routes=numbered,
    )


def default_receivers(tree: RouteNode) -> set[str]:
    """Every receiver a tree names."""
    return {node.receiver for node in tree.walk()}


__all__ = [
    "ALL_LABELS",
    "DASHBOARD",
    "NO_CHANNELS",
    "ROUTE_SCHEMA",
    "RouteMatch",
    "RouteNode",
    "default_receivers",
    "default_tree",
    "match",
    "parse_route",
    "receivers_of",
]
