"""What the self-rules and the driver's metrics read from a running stack, gathered in one place.

The probe only reads: the spool folder, the disk, the Dask scheduler (its worker count, asked at most
every ``dask_every`` seconds), the detector pool's and alerting's own bookkeeping. A part that is not
running (yet, or any more) reads as unknown.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from typing import Any, Callable, Protocol

from logwarden.processing import metrics as processing_metrics
from logwarden.selfrules.base import SelfState

log = logging.getLogger(__name__)
DASK_TIMEOUT = 5.0  # seconds: the tick thread must not hang on a scheduler that is gone


class RunningStack(Protocol):
    """What the probe reads of ``logwarden.stack.Stack`` (a part is None while it is not running)."""

    paths: Any  # DataDir
    options: Any  # StackOptions: settings, adaptive_max
    processor: Any  # SpoolProcessor | None
    dask: Any  # DaskConnection | None
    pool: Any  # DetectorPool | None
    alerts: Any  # AlertService | None
    compaction: Any  # CompactionScheduler | None


class StackProbe:
    """Reads a running stack into a :class:`SelfState`."""

    def __init__(self, stack: RunningStack, clock: Callable[[], float] = time.time, dask_every: float = 5.0) -> None:
        self.stack = stack
        self.clock = clock
        self.dask_every = dask_every
        self.started_at = clock()
        self._lock = threading.Lock()
        self._dask_workers: int | None = None
        self._dask_expected: int | None = None
        self._dask_asked_at = float("-inf")

    # the parts ------------------------------------------------------------------------------
    def free_disk_bytes(self) -> int | None:
        """Free bytes (for an unprivileged user) on the data dir's file system."""
        try:
            return shutil.disk_usage(self.stack.paths.root).free
        except OSError:
            return None

    def dask_workers(self) -> tuple[int | None, int | None]:
        """(workers now, workers expected), asked of the scheduler at most every ``dask_every`` seconds."""
        with self._lock:
            now = time.monotonic()
            if now - self._dask_asked_at >= self.dask_every:
                self._dask_asked_at = now
                self._dask_workers = self._ask_dask()
                if self._dask_expected is None and self._dask_workers:
                    self._dask_expected = 1 if self.stack.options.adaptive_max else self._dask_workers
            return self._dask_workers, self._dask_expected

    def _ask_dask(self) -> int | None:
        """Workers the scheduler counts; 0 when it does not answer within ``DASK_TIMEOUT`` (none is usable),
        None without a Dask connection."""
        dask = self.stack.dask
        if dask is None:
            return None
        client = dask.client
        try:
            identity = client.sync(client.scheduler.identity, n_workers=0, callback_timeout=DASK_TIMEOUT)
            return int(identity["n_workers"])
        except Exception as exc:  # noqa: BLE001 - a scheduler away is what the rule reports, not an error
            log.debug("Dask scheduler did not answer: %s", exc)
            return 0

    def _spool(self, now: float) -> tuple[int, float, float | None]:
        """(depth, oldest batch's age, newest batch's mtime) of the spool."""
        processor = self.stack.processor
        if processor is None:
            return 0, 0.0, None
        times = []
        for path in processor.spool.batches():
            try:
                times.append(os.stat(path).st_mtime)
            except FileNotFoundError:  # handed on meanwhile
                continue
        if not times:
            return 0, 0.0, None
        return len(times), max(0.0, now - min(times)), max(times)

    # the state -------------------------------------------------------------------------------
    def state(self) -> SelfState:
        """The stack's state now."""
        stack, now = self.stack, self.clock()
        depth, oldest_age, newest_spooled = self._spool(now)
        handed_on = processing_metrics.last_batch_at()
        file_sources = bool(stack.options.settings.sources)
        known = file_sources or handed_on is not None or newest_spooled is not None
        arrivals = [t for t in (handed_on, newest_spooled, self.started_at if file_sources else None) if t is not None]
        workers, expected = self.dask_workers()
        alerts = stack.alerts
        return SelfState(
            now=now, data_dir=str(stack.paths.root), sources_known=known,
            last_ingest_at=max(arrivals) if arrivals else None, spool_depth=depth, spool_oldest_age=oldest_age,
            free_disk_bytes=self.free_disk_bytes(), dask_workers=workers, dask_workers_expected=expected,
            actors_unavailable={f"{rule}/{shard}": since for (rule, shard), since
                                in (stack.pool.metrics.unavailable_since().items() if stack.pool else ())},
            channels_failing=alerts.metrics.failing_since() if alerts else {},
            channels=tuple(alerts.workers) if alerts else (),
        )
