"""A job run every so often in a daemon thread (retention, compaction, ML retraining)."""
from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class PeriodicJob(ABC):
    """Calls :meth:`run_once` every ``interval`` seconds in a daemon thread named ``name``; a failed run
    is logged and tried again at the next interval. ``right_away``: the first run at start."""

    def __init__(self, name: str, interval: float, right_away: bool = True) -> None:
        self.name = name
        self.interval = interval
        self.right_away = right_away
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def run_once(self) -> None:
        """One run of the job (what a subclass does every interval)."""

    def start(self) -> "PeriodicJob":
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        if not self.right_away and self._stop.wait(self.interval):
            return
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the next interval tries again
                log.exception("%s failed; trying again in %.0fs", self.name, self.interval)
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
