"""Prometheus metrics of processing, on ``prometheus_client``'s default registry.

They live in the process that drives the spool (``logwarden up``), which serves them at ``GET /metrics``
on its API port (role ``read``), next to the lake's, the detectors' and alerting's. What is a state
(spool depth, oldest batch, quarantine) is read when scraped, so it also counts what ``logwarden spool
failed retry`` moved back meanwhile; what happens per batch is counted when the batch is handed on.

Records in are the records of the spool batches handed on (committed ones plus those dead-lettered);
records out are those committed to the lake and handed to the detectors.
"""
from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Callable

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from logwarden.collector.spool import Spool
    from logwarden.processing.batch import BatchOutput, Committed

QUARANTINED = Gauge(
    "logwarden_spool_quarantined_batches",
    "Spool batches in quarantine (spool/failed): unreadable, or failed every attempt",
)
QUARANTINE_EVENTS = Counter(
    "logwarden_spool_batches_quarantined",
    "Spool batches moved into quarantine, by kind (unreadable, failed)",
    ["kind"],
)
SPOOL_DEPTH = Gauge("logwarden_spool_depth_batches", "Spool batches waiting for processing (in flight included)")
SPOOL_OLDEST_AGE = Gauge(
    "logwarden_spool_oldest_batch_age_seconds",
    "Wall-clock age of the oldest batch waiting in the spool (0 when the spool is empty)",
)
DEAD_LETTERED = Counter(
    "logwarden_processing_records_dead_lettered",
    "Records the lake could not commit, moved to the dead-letter store (the rest of their batch committed)",
)
BATCHES = Counter("logwarden_processing_batches", "Spool batches committed to the lake and handed on")
RECORDS_IN = Counter("logwarden_processing_records_in", "Records of the spool batches handed on (dead-lettered ones included)")
RECORDS = Counter("logwarden_processing_records", "Records committed to the lake and handed on")
BATCH_SECONDS = Histogram(
    "logwarden_processing_batch_seconds",
    "From submitting a spool batch to Dask to handing it on (both phases, the lake commit, the detectors)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
WALL_LAG = Histogram(
    "logwarden_processing_lag_seconds",
    "Wall-clock time from a batch written to the spool to its hand-on (queueing in the spool included)",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
NEWEST_EVENT = Gauge(
    "logwarden_processing_newest_event_timestamp_seconds",
    "Event time (epoch seconds) of the newest record handed on",
)
EVENT_LAG = Gauge(
    "logwarden_processing_event_lag_seconds",
    "Wall clock minus the event time of the newest record handed on (grows while nothing is processed)",
)
LAST_BATCH = Gauge(
    "logwarden_processing_last_batch_timestamp_seconds",
    "Wall-clock time (epoch seconds) the last batch was handed on",
)

_lock = threading.Lock()
_newest_event_s: float | None = None
_last_batch_s: float | None = None


def watch_quarantine(count: Callable[[], int]) -> None:
    """Make ``logwarden_spool_quarantined_batches`` call ``count`` at each scrape."""
    QUARANTINED.set_function(count)


def oldest_age(spool: "Spool", now: float | None = None) -> float:
    """Seconds since the oldest waiting batch of ``spool`` was written (0 when none waits)."""
    now = time.time() if now is None else now
    for path in spool.batches():
        try:
            return max(0.0, now - os.stat(path).st_mtime)
        except FileNotFoundError:  # handed on meanwhile: the next one is the oldest
            continue
    return 0.0


def watch_spool(spool: "Spool") -> None:
    """Make the spool gauges (depth, oldest batch's age) read ``spool`` at each scrape."""
    SPOOL_DEPTH.set_function(spool.depth)
    SPOOL_OLDEST_AGE.set_function(lambda: oldest_age(spool))


def _event_lag() -> float:
    with _lock:
        newest = _newest_event_s
    return 0.0 if newest is None else max(0.0, time.time() - newest)


EVENT_LAG.set_function(_event_lag)


def observe_batch(committed: "Committed", output: "BatchOutput", submitted: float, spooled_at: float | None) -> None:
    """Count one batch done (committed and handed on): records in and out, its processing time since
    ``submitted`` (``time.monotonic``), its wall lag since ``spooled_at`` (epoch seconds; None when
    unknown) and the event time of its newest record."""
    global _newest_event_s, _last_batch_s
    BATCHES.inc()
    RECORDS.inc(committed.records)
    RECORDS_IN.inc(committed.records + committed.dead_lettered)
    if committed.dead_lettered:
        DEAD_LETTERED.inc(committed.dead_lettered)
    BATCH_SECONDS.observe(max(0.0, time.monotonic() - submitted))
    now = time.time()
    if spooled_at is not None:
        WALL_LAG.observe(max(0.0, now - spooled_at))
    newest = None
    if output.num_records:  # sorted by event time in processing
        newest = output.records["timestamp"][-1].value / 1_000_000
    with _lock:
        _last_batch_s = now
        if newest is not None:
            _newest_event_s = newest if _newest_event_s is None else max(_newest_event_s, newest)
            NEWEST_EVENT.set(_newest_event_s)
    LAST_BATCH.set(now)


def last_batch_at() -> float | None:
    """Wall-clock time (epoch seconds) the last batch was handed on in this process, or None."""
    with _lock:
        return _last_batch_s
