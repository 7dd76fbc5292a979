"""Prometheus metrics of processing, on ``prometheus_client``'s default registry.

They live in the process that drives the spool (``logwarden up``), which serves them at ``GET /metrics``
on its API port (role ``read``). ``logwarden_spool_quarantined_batches`` is read from the quarantine
folder when scraped, so it also counts what ``logwarden spool failed retry`` moved back meanwhile.
"""
from __future__ import annotations

from typing import Callable

from prometheus_client import Counter, Gauge

QUARANTINED = Gauge(
    "logwarden_spool_quarantined_batches",
    "Spool batches in quarantine (spool/failed): unreadable, or failed every attempt",
)
QUARANTINE_EVENTS = Counter(
    "logwarden_spool_batches_quarantined",
    "Spool batches moved into quarantine, by kind (unreadable, failed)",
    ["kind"],
)
DEAD_LETTERED = Counter(
    "logwarden_processing_records_dead_lettered",
    "Records the lake could not commit, moved to the dead-letter store (the rest of their batch committed)",
)
BATCHES = Counter("logwarden_processing_batches", "Spool batches committed to the lake and handed on")
RECORDS = Counter("logwarden_processing_records", "Records committed to the lake and handed on")


def watch_quarantine(count: Callable[[], int]) -> None:
    """Make ``logwarden_spool_quarantined_batches`` call ``count`` at each scrape."""
    QUARANTINED.set_function(count)
