"""Data loaded from files once per worker process, and loaded again when the files change.

Enrichment settings travel to the Dask workers with every task, so they hold only paths; the data
(millions of threat indicators, a user directory) is read on the worker, kept in this process-wide
cache, and read again when a file's modification time or size changed. Files are looked at no more
often than every ``reload`` seconds.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Stamp = tuple[tuple[str, int, int], ...]


def stamp(paths: tuple[str, ...]) -> Stamp:
    """(path, mtime in ns, size) of every file; a missing file counts as (path, -1, -1)."""
    found = []
    for path in paths:
        try:
            info = os.stat(path)
            found.append((path, info.st_mtime_ns, info.st_size))
        except OSError:
            found.append((path, -1, -1))
    return tuple(found)


class _Entry(Generic[T]):
    def __init__(self, value: T, files: Stamp, checked: float) -> None:
        self.value = value
        self.files = files
        self.checked = checked


class WatchedFiles:
    """A cache of values built from files, per key, rebuilt when the files change."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, paths: tuple[str, ...], reload: float, build: Callable[[], T]) -> T:
        """The value for ``key``: built by ``build`` the first time, and again when one of ``paths``
        changed (looked at most every ``reload`` seconds). A rebuild that fails keeps the last value."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.checked < reload:
                return entry.value
            files = stamp(paths)
            if entry is not None and entry.files == files:
                entry.checked = now
                return entry.value
            try:
                value = build()
            except Exception:
                if entry is None:
                    raise
                log.exception("reloading %s failed; keeping the data loaded before", ", ".join(paths))
                entry.checked = now
                return entry.value
            if entry is not None:
                log.info("reloaded %s", ", ".join(paths))
            self._entries[key] = _Entry(value, files, now)
            return value

    def clear(self) -> None:
        """Forget every value (they are built again on next use)."""
        with self._lock:
            self._entries.clear()


CACHE = WatchedFiles()
