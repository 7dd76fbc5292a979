"""``logwarden spool failed list|show|retry``: the spool batches processing quarantined, and why."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from logwarden.commands.common import add_data_dir

if TYPE_CHECKING:
    from logwarden.processing.quarantine import Quarantine, QuarantinedBatch


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``spool`` subcommand and its actions."""
    parser = subparsers.add_parser("spool", help="the spool's quarantined batches: list, show, retry")
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    failed = groups.add_parser("failed", help="batches processing gave up on (spool/failed), with the reason")
    actions = failed.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="one line per quarantined batch: id, size, records, reason, time")
    add_data_dir(listing)
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one batch: its reason, its error and its first records")
    add_data_dir(show)
    show.add_argument("id", help="batch id (or a unique prefix)")
    show.add_argument("--records", type=int, default=5, metavar="N", help="show the first N records (default 5)")
    show.set_defaults(func=run_show)

    retry = actions.add_parser("retry", help="move batches back into the spool (a running stack processes them)")
    add_data_dir(retry)
    retry.add_argument("ids", nargs="*", help="batch ids (or unique prefixes)")
    retry.add_argument("--all", action="store_true", help="every quarantined batch")
    retry.set_defaults(func=run_retry)


def _quarantine(args: argparse.Namespace) -> "Quarantine":
    from logwarden.common.paths import DataDir
    from logwarden.processing.quarantine import Quarantine

    return Quarantine(DataDir.at(args.data_dir).spool)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return str(size)


def _records(entry: "QuarantinedBatch") -> str:
    return "?" if entry.records is None else str(entry.records)


def run_list(args: argparse.Namespace) -> int:
    """Print one line per quarantined batch, oldest first."""
    entries = _quarantine(args).batches()
    if not entries:
        print("no quarantined batches")
        return 0
    width = max(len(entry.batch_id) for entry in entries)
    print(f"{'ID':<{width}}  {'SIZE':>9}  {'RECORDS':>7}  {'QUARANTINED':<20}  REASON")
    for entry in entries:
        print(f"{entry.batch_id:<{width}}  {_size(entry.size):>9}  {_records(entry):>7}  {_when(entry.time):<20}  "
              f"{entry.kind}: {entry.reason}")
    return 0


def _find(quarantine: "Quarantine", ref: str) -> "QuarantinedBatch | None":
    entry = quarantine.get(ref)
    if entry is None:
        print(f"logwarden: no quarantined batch {ref!r} (or the prefix is ambiguous)", file=sys.stderr)
    return entry


def run_show(args: argparse.Namespace) -> int:
    """Print a batch's reason, error and first records."""
    import orjson

    from logwarden.processing.quarantine import first_records

    entry = _find(_quarantine(args), args.id)
    if entry is None:
        return 1
    for name, value in (("id", entry.batch_id), ("time", _when(entry.time)), ("kind", entry.kind),
                        ("reason", entry.reason), ("attempts", entry.attempts), ("records", _records(entry)),
                        ("bytes", entry.size), ("file", entry.path), ("error", entry.error or "-")):
        print(f"{name:<9}{value}")
    if args.records <= 0:
        return 0
    try:
        rows = first_records(entry.path, args.records)
    except Exception as exc:  # noqa: BLE001 - an unreadable batch is what we are showing
        print(f"records: cannot be read: {type(exc).__name__}: {exc}")
        return 0
    print(f"first {len(rows)} record(s):")
    for row in rows:
        print(orjson.dumps(row, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC, default=str).decode())
    return 0


def run_retry(args: argparse.Namespace) -> int:
    """Move batches back into the spool."""
    quarantine = _quarantine(args)
    if args.all == bool(args.ids):
        print("logwarden: give batch ids, or --all", file=sys.stderr)
        return 2
    entries = quarantine.batches() if args.all else [_find(quarantine, ref) for ref in args.ids]
    if any(entry is None for entry in entries):
        return 1
    if not entries:
        print("no quarantined batches")
        return 0
    failed = 0
    for entry in entries:
        try:
            quarantine.retry(entry.batch_id)
        except OSError as exc:
            failed += 1
            print(f"logwarden: cannot retry {entry.batch_id}: {exc}", file=sys.stderr)
            continue
        print(f"moved {entry.batch_id} back into the spool ({_records(entry)} records)")
    if len(entries) > failed:
        print("a running `logwarden up` processes it now; otherwise the next one will")
    return 1 if failed else 0
