"""``logwarden routes test --labels k=v,... [--config FILE]``: the receivers an alert with those labels
reaches through the routing tree, and why (like ``amtool config routes test``); ``--tree`` prints the
tree.

The first line of the output is the receivers, comma-separated, as amtool prints them; the lines
after it explain each: the routes that led there, the matchers that held, ``continue``, the channels
and the grouping. Labels a service's inventory entry gives (``team``, ``tier``, ``environment``) are
added when ``service`` is given and they are not. Exit status: 0, or 1 with ``--verify-receivers``
when the receivers differ from those expected; 2 for a bad configuration or bad labels.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from logwarden.commands.common import add_config

if TYPE_CHECKING:
    from logwarden.alerting.config import AlertingConfig
    from logwarden.alerting.dispatch.tree import RouteNode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``routes`` subcommand group."""
    parser = subparsers.add_parser("routes", help="test and show the alert routing tree")
    actions = parser.add_subparsers(dest="routes_command", metavar="ACTION", required=True)
    test = actions.add_parser("test", help="the receivers an alert with the given labels reaches, and why")
    add_config(test)
    test.add_argument("--labels", default="", help="labels of the alert: k=v,k=v (e.g. service=x,severity=HIGH)")
    test.add_argument("--rules", default=None,
                      help="rules file for the default tree (default: monitoring.rules of --config)")
    test.add_argument("--tree", action="store_true", help="print the routing tree")
    test.add_argument("--verify-receivers", default=None, metavar="R1,R2",
                      help="exit 1 unless the receivers are exactly these (comma-separated)")
    test.add_argument("--at", default=None, help="the moment for time intervals, RFC 3339 (default: now)")
    test.set_defaults(func=run_test)


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k=v`` (values may be double-quoted) as a mapping; ValueError when malformed."""
    from logwarden.alerting.dispatch.matchers import EQUAL, LABEL_NAME, parse_matcher, split_matchers

    labels: dict[str, str] = {}
    for part in split_matchers(text):
        matcher = parse_matcher(part)
        if matcher.op != EQUAL or not LABEL_NAME.fullmatch(matcher.name):
            raise ValueError(f"not a label: {part!r} (use name=value)")
        labels[matcher.name] = matcher.value
    return labels


def _duration(seconds: float | None) -> str:
    from logwarden.common.durations import format_duration

    return "channel default" if seconds is None else format_duration(seconds)


def _grouping(node: "RouteNode") -> str:
    group_by = "..." if node.group_by is None else (", ".join(node.group_by) or "(none: one group)")
    if node.group_interval is None:
        return f"group_by: {group_by} · group_wait {_duration(node.group_wait)} · a message per group wait"
    return (f"group_by: {group_by} · group_wait {_duration(node.group_wait)} · "
            f"group_interval {_duration(node.group_interval)} · repeat_interval {_duration(node.repeat_interval)}")


def _node_line(node: "RouteNode") -> str:
    matchers = "{" + ",".join(str(m) for m in node.matchers) + "}"
    more = " continue" if node.continue_ else ""
    times = "".join(
        f" {key}={','.join(names)}"
        for key, names in (("active", node.active_time_intervals), ("mute", node.mute_time_intervals))
        if names
    )
    return f"{node.path}  {matchers} → {node.receiver}{more}{times}"


def print_tree(node: "RouteNode", out: TextIO | None = None, indent: str = "") -> None:
    """The tree, one route a line, children indented (on standard output unless ``out``)."""
    out = sys.stdout if out is None else out
    if not indent:
        print(f"{node.path}  receiver {node.receiver} · {_grouping(node)}", file=out)
    for child in node.routes:
        print(f"{indent}  {_node_line(child)}", file=out)
        print_tree(child, out, indent + "  ")


def explain(tree: "RouteNode", labels: dict[str, str], config: "AlertingConfig", now: float,
            out: TextIO | None = None) -> list[str]:
    """Print the receivers (first line) and why (on standard output unless ``out``); returns the
    receivers, one per route reached."""
    out = sys.stdout if out is None else out
    from logwarden.alerting.dispatch.routing import time_muted
    from logwarden.alerting.dispatch.tree import NO_CHANNELS, match

    found = match(tree, labels)
    receivers = [m.receiver for m in found]  # one per route reached, as amtool prints them
    print(",".join(receivers), file=out)
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    for m in found:
        channels = [] if m.receiver == NO_CHANNELS else config.channels_of(m.receiver)
        print(f"  {m.receiver}: channels {', '.join(channels) or '(none)'}", file=out)
        if len(m.trail) == 1:
            print("    route (the root): no child route matched", file=out)
        for node in m.trail[1:]:
            held = ", ".join(str(x) for x in node.matchers) or "(no matchers: every alert)"
            why = "; continue: true, the next routes were tried too" if node.continue_ else ""
            print(f"    {node.path}: {held} matched{why}", file=out)
        print(f"    {_grouping(m.route)}", file=out)
        muted = time_muted(m.route, config, moment)
        if muted is not None:
            print(f"    not notified at {moment:%Y-%m-%d %H:%M} UTC: {muted}", file=out)
    return receivers


def _tree_of(args: argparse.Namespace, settings) -> "RouteNode":
    from logwarden.alerting.dispatch.tree import default_tree
    from logwarden.monitoring import load_rules

    if settings.alerting.route is not None:
        return settings.alerting.route
    rules = load_rules(args.rules or settings.monitoring.rules)
    own = {rule.name: list(rule.channels) for rule in rules.rules if rule.channels}
    return default_tree(rules.routing, own)


def run_test(args: argparse.Namespace) -> int:
    """Print the receivers of the labels (and the tree with ``--tree``)."""
    from logwarden.alerting.dispatch.labels import with_inventory
    from logwarden.settings import load_settings

    settings = load_settings(args.config)
    tree = _tree_of(args, settings)
    if args.tree:
        print_tree(tree)
        if not args.labels:
            return 0
    try:
        labels = with_inventory(parse_labels(args.labels), settings.processing.inventory)
        now = time.time() if args.at is None else datetime.fromisoformat(args.at.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        print(f"logwarden routes test: {exc}", file=sys.stderr)
        return 2
    if not labels:
        print("logwarden routes test: give the alert's labels with --labels k=v,k=v", file=sys.stderr)
        return 2
    shown = " ".join(f'{k}="{v}"' for k, v in labels.items())
    print(f"labels: {shown}", file=sys.stderr)
    receivers = explain(tree, labels, settings.alerting, now)
    if args.verify_receivers is not None:
        expected = [r.strip() for r in args.verify_receivers.split(",") if r.strip()]
        if receivers != expected:
            print(f"WARNING: expected receivers {','.join(expected)}, got {','.join(receivers)}", file=sys.stderr)
            return 1
    return 0
