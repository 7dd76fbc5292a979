"""``logwarden alerts``: the alert history, acknowledgements and dead letters, from ``<data-dir>/alerts``
(while the stack runs or not)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from datetime import datetime, timezone

import orjson

from logwarden.commands.common import add_data_dir
from logwarden.common.paths import DataDir

SEVERITIES = ("critical", "high", "medium", "low")
TENANT_HELP = "only this tenant's alerts (default: every tenant)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``alerts`` subcommand group."""
    parser = subparsers.add_parser("alerts", help="alert history, acknowledgement, dead letters")
    actions = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="alerts received, newest first")
    add_data_dir(listing)
    listing.add_argument(
        "--since", default=None, help="only alerts received within this duration (e.g. 1h, 30m)"
    )
    listing.add_argument("--severity", type=str.lower, choices=SEVERITIES, default=None)
    listing.add_argument("--rule", default=None)
    listing.add_argument("--status", choices=("firing", "resolved"), default=None)
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--tenant", default=None, help=TENANT_HELP)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one alert with its deliveries")
    add_data_dir(show)
    show.add_argument("id", help="alert number, anomaly id or dedup key (rule:key)")
    show.add_argument("--tenant", default=None, help=TENANT_HELP)
    show.set_defaults(func=run_show)

    ack = actions.add_parser("ack", help="acknowledge an alert (its incident): stops escalation")
    add_data_dir(ack)
    ack.add_argument("id", help="alert number, anomaly id or dedup key (rule:key)")
    ack.add_argument("--by", default=None, help="who acknowledges (default: the current user)")
    ack.add_argument("--note", default="", help="a note kept with the acknowledgement")
    ack.add_argument("--tenant", default=None, help=TENANT_HELP)
    ack.set_defaults(func=run_ack)

    dead = actions.add_parser("dead", help="messages given up on after their last attempt")
    add_data_dir(dead)
    dead.add_argument("--json", action="store_true")
    dead.set_defaults(func=run_dead)

    retry = actions.add_parser("retry", help="queue a dead-lettered message again")
    add_data_dir(retry)
    retry.add_argument("message_id", type=int)
    retry.set_defaults(func=run_retry)


def current_user() -> str:
    """Who runs the command."""
    try:
        return os.environ.get("LOGWARDEN_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _alerts_dir(args: argparse.Namespace):
    return DataDir.at(args.data_dir).alerts


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _delivery_text(alert: dict) -> str:
    states = {}
    for d in alert.get("deliveries", []):
        states[d["channel"]] = d["state"]
    parts = []
    for channel in alert["channels"]:
        parts.append(f"{channel}:{states.pop(channel, 'stored' if channel == 'dashboard' else 'console')}")
    parts += [f"{c}:{s}" for c, s in states.items()]
    if alert["silenced_by"] is not None:
        return f"silenced (#{alert['silenced_by']})"
    return " ".join(parts)


def _shown_key(alert: dict) -> str:
    """The key column: the key, after its tenant when that is not the default one."""
    from logwarden.common.tenants import DEFAULT_TENANT

    tenant = alert.get("tenant") or DEFAULT_TENANT
    return alert["key"] if tenant == DEFAULT_TENANT else f"{tenant}/{alert['key']}"


def run_list(args: argparse.Namespace) -> int:
    """Print the alerts matching the filters."""
    from logwarden.alerting import history
    from logwarden.common.durations import parse_duration

    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError as exc:
            print(f"logwarden alerts list: --since: {exc}", file=sys.stderr)
            return 2
    alerts = history.list_alerts(
        _alerts_dir(args),
        since=since,
        severity=args.severity,
        rule=args.rule,
        status=args.status,
        limit=args.limit,
        tenant=args.tenant,
    )
    if args.json:
        for alert in alerts:
            sys.stdout.write(orjson.dumps(alert).decode() + "\n")
        return 0
    if not alerts:
        print("no alerts", file=sys.stderr)
        return 0
    print(
        f"{'ID':>5}  {'RECEIVED (UTC)':<19}  {'SEVERITY':<8}  {'STATUS':<8}  {'RULE':<22}  {'KEY':<16}  "
        f"{'ACK':<12}  DELIVERY"
    )
    for a in alerts:
        ack = a["acked_by"] or ("-" if a["status"] == "firing" else "")
        print(
            f"{a['id']:>5}  {_when(a['received_at']):<19}  {a['severity']:<8}  {a['status']:<8}  "
            f"{a['rule'][:22]:<22}  {_shown_key(a)[:16]:<16}  {ack[:12]:<12}  {_delivery_text(a)}"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one alert as JSON."""
    from logwarden.alerting import history

    alert = history.get_alert(_alerts_dir(args), args.id, tenant=args.tenant)
    if alert is None:
        print(f"logwarden alerts show: no alert {args.id}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(alert, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def run_ack(args: argparse.Namespace) -> int:
    """Acknowledge an alert's incident, recording who and the response time."""
    from logwarden.alerting import history

    try:
        result = history.acknowledge(
            _alerts_dir(args), args.id, by=args.by or current_user(), note=args.note, tenant=args.tenant
        )
    except KeyError:
        print(f"logwarden alerts ack: no alert {args.id}", file=sys.stderr)
        return 1
    alert = result["alert"]
    if result["already"]:
        state = (
            f"already acknowledged by {alert['acked_by']}"
            if alert["acked_at"]
            else f"not firing ({alert['status']})"
        )
        print(f"alert {alert['id']} ({alert['rule']}:{alert['key']}): {state}")
        return 0
    print(
        f"acknowledged {len(result['acknowledged'])} alert(s) of {alert['dedup_key']} "
        f"by {alert['acked_by']}; "
        f"response time {alert['response_seconds']:.0f}s"
    )
    return 0


def run_dead(args: argparse.Namespace) -> int:
    """Print the dead letters."""
    from logwarden.alerting import history

    dead = history.dead_letters(_alerts_dir(args))
    if args.json:
        for item in dead:
            sys.stdout.write(orjson.dumps(item).decode() + "\n")
        return 0
    if not dead:
        print("no dead letters", file=sys.stderr)
    for item in dead:
        rules = ", ".join(sorted({f"{a['rule']}:{a['key']}" for a in item["alerts"]}))
        print(
            f"message {item['message_id']} → {item['channel']} ({item['kind']}), "
            f"{item['attempts']} attempt(s), "
            f"{_when(item['created_at'])}: {rules}: {item['last_error']}"
        )
    return 0


def run_retry(args: argparse.Namespace) -> int:
    """Queue a dead-lettered message again (the running stack delivers it)."""
    from logwarden.alerting import history

    if not history.redeliver(_alerts_dir(args), args.message_id):
        print(f"logwarden alerts retry: message {args.message_id} is not a dead letter", file=sys.stderr)
        return 1
    print(f"message {args.message_id} queued again")
    return 0
