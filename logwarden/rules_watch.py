"""Reload the detectors when the rules file changes (watchdog on its folder, debounced)."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)
READ_ONLY_EVENTS = ("opened", "closed_no_write")


class RulesWatcher(FileSystemEventHandler):
    """Calls ``on_change`` once per burst of edits to one file (editors write, rename and touch)."""

    def __init__(self, path: Path, on_change: Callable[[], None], debounce: float = 0.3) -> None:
        self.path = path.resolve()
        self.on_change = on_change
        self.debounce = debounce
        self._timer: threading.Timer | None = None
        self._observer = Observer()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in READ_ONLY_EVENTS:
            return  # reading the file (as every reload does) is no change; reacting would loop
        paths = {getattr(event, "src_path", ""), getattr(event, "dest_path", "")}
        if str(self.path) not in {str(Path(p).resolve()) for p in paths if p}:
            return
        if self._timer:
            self._timer.cancel()
        self._timer = threading.Timer(self.debounce, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        try:
            self.on_change()
        except Exception:
            log.exception("reloading %s failed", self.path)

    def start(self) -> None:
        """Watch the file's folder."""
        self._observer.schedule(self, str(self.path.parent), recursive=False)
        self._observer.start()

    def stop(self) -> None:
        """Stop watching."""
        if self._timer:
            self._timer.cancel()
        self._observer.stop()
        self._observer.join(timeout=5)
