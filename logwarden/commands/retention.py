"""``logwarden retention``: apply the lake's retention tiers once (``--dry-run``: only show them)."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime

import orjson

from logwarden.commands.common import add_config, add_data_dir
from logwarden.common.paths import DataDir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``retention`` subcommand."""
    parser = subparsers.add_parser(
        "retention", help="compact, archive or delete old lake partitions",
        description="Compact and recompress raw partitions after storage.retention.compact_after, "
        "delete or archive them after raw_after, delete aggregates after aggregates_after (see --config). "
        "Idempotent; the running stack does the same on a schedule.")
    add_data_dir(parser)
    add_config(parser)
    parser.add_argument("--dry-run", action="store_true", help="show what would be done, change nothing")
    parser.add_argument("--now", default=None, help="pretend it is this ISO time (UTC) when judging ages")
    parser.add_argument("--json", action="store_true", help="one JSON object per action")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan, print and (unless --dry-run) apply."""
    from logwarden.settings import load_settings
    from logwarden.storage import Lake
    from logwarden.storage.retention import run_retention
    from logwarden.storage.search import SearchError, parse_time

    config = load_settings(args.config).storage
    lake = Lake(DataDir.at(args.data_dir).lake)
    try:
        now: datetime | None = parse_time(args.now) if args.now else None
    except SearchError as exc:
        print(f"logwarden retention: --now: {exc}", file=sys.stderr)
        return 2
    report = run_retention(lake, config.retention, now=now, dry_run=args.dry_run)
    if report.skipped:
        print(f"logwarden retention: skipped: {report.skipped}", file=sys.stderr)
        return 1
    for action in report.actions:
        if args.json:
            sys.stdout.write(orjson.dumps({**action.as_dict(lake.root), "dry_run": args.dry_run}).decode() + "\n")
        else:
            print(("would " if args.dry_run else "") + action.describe(lake.root))
    if not args.json:
        verb = "would take" if args.dry_run else "took"
        print(f"retention {verb} {len(report.actions)} action(s)" +
              ("" if args.dry_run else f"; {report.bytes_before} bytes in, {report.bytes_after} bytes kept"),
              file=sys.stderr)
    return 0
