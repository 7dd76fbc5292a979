"""``logwarden silence``: add, list and expire silences in ``<data-dir>/alerts``
(while the stack runs or not).

A silence covers a rule (``--rule``, and one key with ``--key``), or the alerts that label matchers
cover (``--match 'team="payments"' --match 'severity=~"HIGH|CRITICAL"'``; labels: rule, severity,
service, tenant, key, team, tier, environment).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from logwarden.commands.alerts import current_user
from logwarden.commands.common import add_data_dir
from logwarden.common.paths import DataDir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``silence`` subcommand group."""
    parser = subparsers.add_parser("silence", help="silence alerts (of a rule and key, or by label matchers) for a while")
    actions = parser.add_subparsers(dest="silence_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="silence a rule, one key of it, or the alerts label matchers cover")
    add_data_dir(add)
    add.add_argument("--rule", default=None, help="the rule to silence")
    add.add_argument("--key", default=None, help="only this key of the rule (e.g. a service)")
    add.add_argument("--match", action="append", default=[], metavar="MATCHER",
                     help='a label matcher, e.g. team="payments" or severity=~"HIGH|CRITICAL" (repeatable; '
                          "with --rule/--key too)")
    add.add_argument("--for", dest="duration", required=True, help="how long (e.g. 30m, 2h, 1d)")
    add.add_argument("--reason", required=True, help="why (kept with the silence)")
    add.add_argument("--by", default=None, help="who (default: the current user)")
    add.set_defaults(func=run_add)

    listing = actions.add_parser("list", help="active silences (with --all, ended ones too)")
    add_data_dir(listing)
    listing.add_argument("--all", action="store_true", help="include expired silences")
    listing.set_defaults(func=run_list)

    expire = actions.add_parser("expire", help="end a silence now")
    add_data_dir(expire)
    expire.add_argument("id", type=int)
    expire.add_argument("--by", default=None, help="who (default: the current user)")
    expire.set_defaults(func=run_expire)


def _silences(args: argparse.Namespace):
    from logwarden.alerting.inhibit import SilenceStore
    from logwarden.alerting.store import AlertStore

    return SilenceStore(AlertStore(DataDir.at(args.data_dir).alerts))


def _when(epoch: float | None) -> str:
    return (
        "-" if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    )


def run_add(args: argparse.Namespace) -> int:
    """Add a silence."""
    from logwarden.common.durations import parse_duration

    from logwarden.alerting.dispatch.matchers import parse_matchers
    from logwarden.alerting.inhibit.silences import rule_matchers

    try:
        duration = parse_duration(args.duration)
        if args.rule is None and (args.key is not None or not args.match):
            raise ValueError("give --rule (and --key) or --match matchers")
        matchers = (rule_matchers(args.rule, args.key) if args.rule is not None else ()) + parse_matchers(args.match)
        silence = _silences(args).add_matchers(matchers, duration, args.by or current_user(), args.reason)
    except ValueError as exc:
        print(f"logwarden silence add: {exc}", file=sys.stderr)
        return 2
    if args.match:
        target = silence.describe()
    else:
        target = f"{silence.rule}:{silence.key}" if silence.key else f"{silence.rule} (every key)"
    print(
        f"silence {silence.id}: {target} until {_when(silence.ends_at)} UTC, by {silence.created_by}: "
        f"{silence.reason}"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    """List silences."""
    silences = _silences(args).list(include_expired=args.all)
    if not silences:
        print("no silences", file=sys.stderr)
        return 0
    print(f"{'ID':>4}  {'STATE':<7}  {'UNTIL (UTC)':<19}  {'BY':<12}  {'MATCHERS':<40}  REASON")
    for s in silences:
        d = s.to_dict()
        until = _when(s.expired_at if s.expired_at else s.ends_at)
        print(f"{s.id:>4}  {d['state']:<7}  {until:<19}  {s.created_by[:12]:<12}  {s.describe():<40}  {s.reason}")
    return 0


def run_expire(args: argparse.Namespace) -> int:
    """Expire a silence."""
    try:
        silence = _silences(args).expire(args.id, args.by or current_user())
    except KeyError:
        print(f"logwarden silence expire: no silence {args.id}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"logwarden silence expire: {exc}", file=sys.stderr)
        return 1
    print(f"silence {silence.id} ({silence.rule}) expired by {silence.expired_by}")
    return 0
