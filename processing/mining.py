"""Template mining across Dask workers: match in parallel against a snapshot, learn in one place.

Workers match a batch's messages against the broadcast snapshot (read-only) and return the
messages no template covers. The driver's ``TemplateCoordinator`` learns those in order (the
only place template ids are created), and the batch is finalized against the new snapshot.
The state persists with the lake (``lake/templates/``), so ids survive restarts.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from logwarden.processing.templates import FileTemplateStore, TemplateInfo, TemplateMiner

log = logging.getLogger(__name__)


@dataclass
class Unmatched:
    """Phase-one result of a batch: the distinct messages no template covered, first-seen order."""

    batch_id: str
    messages: list[str] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    rows: int = 0


class TemplateCoordinator:
    """The single learner: owns the miner, its snapshot, the store, and the new-template events."""

    def __init__(self, lake_root: Path, save_interval: float = 5.0) -> None:
        self.store = FileTemplateStore(Path(lake_root) / "templates")
        self._new: list[TemplateInfo] = []
        self.miner = self.store.load_or_create(lambda: TemplateMiner(on_new_template=self._new.append))
        self.miner.on_new_template = self._new.append
        self._lock = threading.Lock()
        self._snapshot = self.miner.snapshot()
        self._dirty = False
        self._saved_at = time.monotonic()
        self.save_interval = save_interval

    @property
    def snapshot(self) -> bytes:
        """The state workers match against."""
        return self._snapshot

    def learn(self, unmatched: Unmatched) -> list[TemplateInfo]:
        """Learn a batch's unmatched messages; returns the templates that are new."""
        with self._lock:
            self._new = []
            self.miner.on_new_template = self._new.append
            for message, timestamp in zip(unmatched.messages, unmatched.timestamps):
                self.miner.add(message, timestamp)
            if unmatched.messages:
                self._snapshot = self.miner.snapshot()
                self._dirty = True
            return list(self._new)

    def merge_usage(self, usage: list[TemplateInfo]) -> None:
        """Fold a finalized batch's template counts in; saves the store now and then."""
        with self._lock:
            self.miner.merge_usage(usage)
            self._dirty = True
            if time.monotonic() - self._saved_at >= self.save_interval:
                self._save()

    def save(self) -> None:
        """Persist the templates now."""
        with self._lock:
            self._save()

    def _save(self) -> None:
        if self._dirty:
            self.store.save(self.miner)
            self._dirty = False
        self._saved_at = time.monotonic()
