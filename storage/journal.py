"""The compaction journal of one partition folder, and the lake's lock.

A compaction merges *sources* into one *target* file: it writes the journal (target, sources), then
the target (hidden name, renamed into place), then deletes the sources and the journal. Once the
target has landed, readers skip the sources the journal names, so no reader ever sees a record
twice, even while the sources are still on disk (they may stay a grace period, for queries that
listed them before). A run that finds a journal finishes or undoes that compaction.
"""
from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from logwarden.common.atomic import write_bytes_atomic

JOURNAL = ".compaction.json"
LOCK_FILE = ".retention.lock"


def read_journal(folder: Path) -> dict[str, Any] | None:
    """The journal of ``folder``, None when there is none (or it is unreadable: it was never complete)."""
    try:
        journal = orjson.loads((folder / JOURNAL).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(journal, dict) or "target" not in journal or "sources" not in journal:
        return None
    return journal


def write_journal(folder: Path, target: str, sources: list[str]) -> None:
    """Record a compaction before its target is written."""
    write_bytes_atomic(orjson.dumps({"target": target, "sources": sources, "started_at": time.time()}),
                       folder / JOURNAL)


def replaced_names(folder: Path) -> frozenset[str]:
    """Names of the files a landed compaction replaced (still on disk, no longer part of the lake)."""
    journal = read_journal(folder)
    if journal is None or not (folder / journal["target"]).exists():
        return frozenset()
    return frozenset(journal["sources"]) - {journal["target"]}


def finish(folder: Path, journal: dict[str, Any]) -> None:
    """Delete the sources a landed compaction replaced, then its journal."""
    for name in journal["sources"]:
        if name != journal["target"]:
            (folder / name).unlink(missing_ok=True)
    (folder / JOURNAL).unlink(missing_ok=True)


def settle(folder: Path) -> None:
    """Finish a landed compaction now, or drop the journal of one whose target never landed."""
    journal = read_journal(folder)
    if journal is None:
        (folder / JOURNAL).unlink(missing_ok=True)
    elif (folder / journal["target"]).exists():
        finish(folder, journal)
    else:
        (folder / JOURNAL).unlink(missing_ok=True)


@contextmanager
def lake_lock(root: Path, wait: bool) -> Iterator[bool]:
    """The lake-wide lock that compaction, retention and the re-commit of a batch take; yields whether
    it was taken (always, when ``wait``)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
