"""``logwarden deadletter list|show|replay``: inspect rejected records, fix them and resubmit them."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from logwarden.commands.common import add_config, add_data_dir

if TYPE_CHECKING:
    from logwarden.collector.deadletter import DeadLetterStore


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``deadletter`` subcommand and its actions."""
    parser = subparsers.add_parser("deadletter", help="inspect, fix and resubmit rejected records")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list rejected records not replayed yet, oldest first")
    add_data_dir(listing)
    listing.add_argument("--reason", default=None, help="only this reason (e.g. schema_enum, malformed)")
    listing.add_argument("--tenant", default=None, help="only this tenant")
    listing.add_argument(
        "--since", type=float, default=None, metavar="SECONDS", help="only letters of the last SECONDS"
    )
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50; 0: all)")
    listing.add_argument("--all", action="store_true", help="include letters already replayed")
    listing.set_defaults(func=run_list)

    show = actions.add_parser(
        "show", help="show one rejected record: why, from where, and its original bytes"
    )
    add_data_dir(show)
    show.add_argument("id", help="letter id (or a unique prefix of 6+ characters)")
    show.add_argument("--raw", action="store_true", help="print only the original bytes (to edit and replay)")
    show.set_defaults(func=run_show)

    replay = actions.add_parser("replay", help="resubmit rejected records to a running collector")
    add_data_dir(replay)
    add_config(replay)
    replay.add_argument(
        "ids", nargs="*", help="letter ids (default: every pending letter matching the filters)"
    )
    replay.add_argument("--reason", default=None, help="only letters with this reason")
    replay.add_argument(
        "--fixed",
        default=None,
        metavar="FILE",
        help="send the contents of FILE (an edited record) in place of the one letter given",
    )
    replay.add_argument("--url", default="http://127.0.0.1:8080", help="collector base URL")
    replay.add_argument(
        "--token", default=None, help="bearer token (default: the configured token of each letter's tenant)"
    )
    replay.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")
    replay.set_defaults(func=run_replay)


def _store(args: argparse.Namespace) -> "DeadLetterStore":
    from logwarden.collector.deadletter import DeadLetterStore
    from logwarden.common.paths import DataDir

    return DeadLetterStore(DataDir.at(args.data_dir).deadletter)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _preview(raw: bytes, width: int = 60) -> str:
    text = raw.decode("utf-8", "backslashreplace").replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def run_list(args: argparse.Namespace) -> int:
    """Print one line per letter."""
    store = _store(args)
    since = time.time() - args.since if args.since is not None else None
    letters = list(store) if args.all else list(store.pending(args.reason, args.tenant, since))
    if args.all:
        letters = [
            letter
            for letter in letters
            if (args.reason is None or letter.reason == args.reason)
            and (args.tenant is None or letter.tenant == args.tenant)
            and (since is None or letter.time >= since)
        ]
    shown = letters if not args.limit else letters[: args.limit]
    for letter in shown:
        where = f"{letter.field}: " if letter.field else ""
        print(
            f"{letter.id[:12]}  {_when(letter.time)}  {letter.tenant:<10} {letter.source:<24} "
            f"{letter.reason:<18} {where}{_preview(letter.raw)}"
        )
    if len(shown) < len(letters):
        print(f"… {len(letters) - len(shown)} more (use --limit 0)")
    if not letters:
        print("no dead letters")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one letter in full."""
    letter = _store(args).get(args.id)
    if letter is None:
        print(f"logwarden: no dead letter {args.id!r} (or the prefix is ambiguous)", file=sys.stderr)
        return 1
    if args.raw:
        sys.stdout.buffer.write(letter.raw + (b"" if letter.raw.endswith(b"\n") else b"\n"))
        return 0
    for name, value in (
        ("id", letter.id),
        ("time", _when(letter.time)),
        ("tenant", letter.tenant),
        ("source", letter.source),
        ("protocol", letter.protocol or "-"),
        ("index", letter.index),
        ("reason", letter.reason),
        ("field", letter.field or "-"),
        ("error", letter.error),
        ("bytes", len(letter.raw)),
    ):
        print(f"{name:<9}{value}")
    print("raw:")
    print(letter.raw.decode("utf-8", "backslashreplace"))
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """POST letters (or a fixed version of one) to the collector; mark the accepted ones replayed."""
    import orjson
    import requests

    from logwarden.settings import load_settings

    store = _store(args)
    if args.ids:
        letters = []
        for letter_id in args.ids:
            letter = store.get(letter_id)
            if letter is None:
                print(f"logwarden: no dead letter {letter_id!r}", file=sys.stderr)
                return 1
            letters.append(letter)
    else:
        letters = list(store.pending(args.reason))
    if args.fixed is not None:
        if len(letters) != 1:
            print("logwarden: --fixed replaces exactly one letter: give its id", file=sys.stderr)
            return 2
        bodies = [Path(args.fixed).read_bytes().strip()]
    else:
        bodies = [letter.raw.strip() for letter in letters]
    if not letters:
        print("nothing to replay")
        return 0
    tokens = {tenant: token for token, tenant in load_settings(args.config).collector.tokens.items()}
    accepted, failed = [], 0
    for letter, body in zip(letters, bodies):
        token = args.token or tokens.get(letter.tenant)
        if args.dry_run:
            print(f"would send {letter.id[:12]} ({letter.tenant}): {_preview(body)}")
            continue
        headers = {"Content-Type": "application/x-ndjson", "X-Logwarden-Replay": letter.id}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = requests.post(
                f"{args.url.rstrip('/')}/v1/logs", data=body + b"\n", headers=headers, timeout=30
            )
        except requests.RequestException as exc:
            print(f"logwarden: cannot reach the collector at {args.url}: {exc}", file=sys.stderr)
            return 1
        answer = (
            response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        )
        if response.status_code == 200 and answer.get("accepted") == 1:
            accepted.append(letter.id)
            print(f"replayed {letter.id[:12]}: accepted")
        else:
            failed += 1
            errors = answer.get("errors") or [{"field": "", "error": response.text[:200]}]
            print(
                f"replay of {letter.id[:12]} refused ({response.status_code}): "
                f"{orjson.dumps(errors[0]).decode()}"
            )
    store.mark_replayed(accepted)
    if not args.dry_run:
        print(f"{len(accepted)} accepted, {failed} refused")
    return 0 if not failed else 1
