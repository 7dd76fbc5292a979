"""Several collectors on one data dir: each holds its write-ahead log folder with a lock, and the first
collector (the one without an instance name) adopts the segments of a folder no collector holds.

``logwarden up --collectors N`` runs the first collector with the plain ``wal/`` folder and the others as
instances ``c2``..``cN`` (``wal/c2`` ...), all on the same ports (``SO_REUSEPORT``). A collector killed
and not restarted (``up`` started again with fewer collectors) leaves acknowledged records in its
folder: the first collector moves those segments into its own folder when it starts, and recovers them
as its own (segment names are unique across collectors).
"""
from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from logwarden.collector.wal import SEGMENT_SUFFIX
from logwarden.common.atomic import fsync_path
from logwarden.common.paths import DataDir

log = logging.getLogger(__name__)
LOCK_FILE = ".collector.lock"


class WalTaken(RuntimeError):
    """Another running collector holds this write-ahead log folder."""


def _try_lock(folder: Path) -> IO[bytes] | None:
    """The open lock file of ``folder``, locked; None when another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def hold_wal(paths: DataDir) -> IO[bytes]:
    """Lock this collector's write-ahead log folder for the life of the process (the lock goes with it,
    even on ``kill -9``); raises WalTaken when another collector runs on it."""
    handle = _try_lock(paths.wal)
    if handle is None:
        who = f"instance {paths.instance!r}" if paths.instance else "the first collector (no --instance)"
        raise WalTaken(f"another collector runs as {who} on {paths.root} (its write-ahead log {paths.wal} is "
                       "locked); give each collector its own --instance")
    return handle


def adopt_orphans(paths: DataDir) -> int:
    """Move the segments of instance folders no running collector holds into this collector's folder; how
    many were moved. Only the first collector adopts (its folder is the parent of the others)."""
    if paths.instance is not None or not paths.wal.is_dir():
        return 0
    moved = 0
    for folder in sorted(p for p in paths.wal.iterdir() if p.is_dir()):
        handle = _try_lock(folder)
        if handle is None:
            continue  # its collector runs
        try:
            segments = sorted(folder.glob(f"*{SEGMENT_SUFFIX}"))
            for segment in segments:
                os.replace(segment, paths.wal / segment.name)
        finally:
            handle.close()
        if segments:
            moved += len(segments)
            log.warning("adopted %d write-ahead segments of stopped collector instance %s", len(segments),
                        folder.name)
    if moved:
        fsync_path(paths.wal)  # the renames into it are durable
    return moved
