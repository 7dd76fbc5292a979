"""inotify (through ``watchdog``) on the folders of the sources' globs: a file created, moved or deleted
there wakes the tailer at once, instead of at its next periodic scan.

Only creations, moves and deletions are asked for (``event_filter``): a file being written is read
by polling, so a busy log costs no event per line. A folder that does not exist yet is watched
once it does (:meth:`Watcher.refresh`, called after each scan).
"""
from __future__ import annotations

import glob
import logging
import os
from typing import Callable, Iterable

log = logging.getLogger(__name__)


def watch_roots(patterns: Iterable[str]) -> dict[str, bool]:
    """The folder to watch for each glob (its part before the first wildcard) -> whether recursively."""
    roots: dict[str, bool] = {}
    for pattern in patterns:
        pattern = os.path.expanduser(pattern)
        parts = pattern.split(os.sep)
        fixed = []
        for part in parts[:-1]:
            if glob.has_magic(part):
                break
            fixed.append(part)
        recursive = len(fixed) < len(parts) - 1
        root = os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else ".")
        roots[root] = roots.get(root, False) or recursive
    return roots


class Watcher:
    """Calls ``wake`` (from watchdog's thread) when a file is created, moved or deleted under the roots."""

    def __init__(self, patterns: Iterable[str], wake: Callable[[], None]) -> None:
        self.roots = watch_roots(patterns)
        self.wake = wake
        self._observer = None
        self._watched: set[str] = set()

    def start(self) -> None:
        """Start watching (best effort: without inotify, the periodic scan still finds every file)."""
        try:
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            log.warning("watchdog is not installed: new files are found by the periodic scan only")
            return
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        self.refresh()

    def refresh(self) -> None:
        """Watch the roots that exist now and are not watched yet."""
        if self._observer is None:
            return
        from watchdog.events import (DirCreatedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent,
                                     FileSystemEventHandler)

        wake = self.wake

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # noqa: ANN001 - watchdog's event
                wake()

        for root, recursive in self.roots.items():
            if root in self._watched or not os.path.isdir(root):
                continue
            try:
                self._observer.schedule(Handler(), root, recursive=recursive,
                                        event_filter=[FileCreatedEvent, FileMovedEvent, FileDeletedEvent,
                                                      DirCreatedEvent])
                self._watched.add(root)
            except OSError as exc:  # e.g. out of inotify watches: the periodic scan remains
                log.warning("cannot watch %s: %s; new files there are found by the periodic scan", root, exc)
                self._watched.add(root)

    def stop(self) -> None:
        """Stop watching."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


__all__ = ["Watcher", "watch_roots"]
