"""``logwarden detect FILE [--json]``: name the log format of each record of a file."""
from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import TextIO

import orjson

from logwarden.formats import detect, read_records

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``detect`` subcommand to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "detect",
        help="detect the log format of each record of a file",
        description="Read FILE (plain, gzip, zstd or zip; JSON documents, CloudTrail, EVTX, Event "
        "XML and W3C files are read as files of records) and name each record's format. Prints a "
        "summary per format, or with --json one JSON line per record.",
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="log file to read")
    parser.add_argument("--json", action="store_true",
                        help='one line per record: {"line": n, "format": "...", "confidence": c}')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute the command; returns a process exit code (2 when the file cannot be read)."""
    out = out or sys.stdout
    if not args.file.is_file():
        logger.error("file not found: %s", args.file)
        return 2
    try:
        return _per_record(args.file, out) if args.json else _summary(args.file, out)
    except (OSError, RuntimeError, ValueError) as exc:
        logger.error("cannot read %s: %s", args.file, exc)
        return 2


def _per_record(path: Path, out: TextIO) -> int:
    """Write one JSON line per record."""
    for record in read_records(path):
        found = detect(record)
        line = {"line": record.number, "format": found.format, "confidence": round(found.confidence, 4)}
        if record.source:
            line["source"] = record.source
        out.write(orjson.dumps(line).decode() + "\n")
    return 0


def _summary(path: Path, out: TextIO) -> int:
    """Write a table: format, count, share of records, mean confidence."""
    counts: dict[str, int] = defaultdict(int)
    confidence: dict[str, float] = defaultdict(float)
    for record in read_records(path):
        found = detect(record)
        counts[found.format] += 1
        confidence[found.format] += found.confidence
    total = sum(counts.values())
    out.write(f"{'format':<16} {'count':>8} {'share':>7} {'confidence':>10}\n")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        out.write(f"{name:<16} {count:>8} {count / total:>7.1%} {confidence[name] / count:>10.3f}\n")
    out.write(f"{'total':<16} {total:>8}\n")
    return 0
