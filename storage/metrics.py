"""Prometheus metrics of the lake: files and bytes per table, committed batches, compaction runs.

Read when scraped, by walking the lake's folders (``os.scandir``, no file opened). A walk of a large
lake takes a while, so its result is kept ``cache_seconds`` (30 s by default: a scrape interval or two)
and shared by the scrapes in between.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from logwarden.storage.lake import Lake


class CompactionCounts(Protocol):
    """What the compaction job counts (``storage.compaction.CompactionScheduler``)."""

    runs: int
    merged: int


@dataclass(frozen=True)
class LakeSize:
    """Parquet files and their bytes per table (``logs``, ``aggregates``), and committed batches."""

    files: dict[str, int]
    bytes: dict[str, int]
    commits: int


def _walk(folder: Path) -> tuple[int, int]:
    """Visible ``*.parquet`` files below ``folder`` and their bytes (staged, hidden files left out)."""
    files = size = 0
    stack = [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.name.endswith(".parquet"):
                            files += 1
                            size += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:  # compacted or retired meanwhile
                        continue
        except (FileNotFoundError, NotADirectoryError):
            continue
    return files, size


def _count(folder: Path, suffix: str) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for entry in entries if entry.name.endswith(suffix))
    except FileNotFoundError:
        return 0


def measure(lake: Lake) -> LakeSize:
    """The lake's size now."""
    files: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for table, folder in (("logs", lake.logs), ("aggregates", lake.aggregates)):
        files[table], sizes[table] = _walk(folder)
    return LakeSize(files, sizes, _count(lake.commits, ".json"))


class LakeCollector:
    """A prometheus-client collector of the lake below ``root`` (and of the compaction job, when given)."""

    def __init__(self, root: Path, compaction: CompactionCounts | None = None, cache_seconds: float = 30.0) -> None:
        self.lake = Lake(Path(root))
        self.compaction = compaction
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._size: LakeSize | None = None
        self._measured_at = 0.0

    def size(self) -> LakeSize:
        """The lake's size, measured at most every ``cache_seconds``."""
        with self._lock:
            now = time.monotonic()
            if self._size is None or now - self._measured_at >= self.cache_seconds:
                self._size = measure(self.lake)
                self._measured_at = now
            return self._size

    def collect(self) -> Iterator[Metric]:
        """The metrics at scrape time."""
        size = self.size()
        files = GaugeMetricFamily("logwarden_lake_files", "Parquet files in the lake, per table", labels=["table"])
        sizes = GaugeMetricFamily("logwarden_lake_bytes", "Bytes of the lake's Parquet files, per table",
                                  labels=["table"])
        for table in sorted(size.files):
            files.add_metric([table], size.files[table])
            sizes.add_metric([table], size.bytes[table])
        yield files
        yield sizes
        yield GaugeMetricFamily("logwarden_lake_committed_batches", "Batches with a commit marker in the lake",
                                value=size.commits)
        if self.compaction is not None:
            yield from self._compaction(self.compaction)

    @staticmethod
    def _compaction(job: CompactionCounts) -> Iterator[Metric]:
        yield CounterMetricFamily("logwarden_lake_compaction_runs", "Passes of the small-file compaction job",
                                  value=job.runs)
        yield CounterMetricFamily("logwarden_lake_compacted_files", "Merged files the compaction job wrote",
                                  value=job.merged)

    def describe(self) -> list[Any]:
        """Nothing up front: the registry must not measure the lake when the collector is registered."""
        return []
