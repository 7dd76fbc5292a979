"""Collector layer: receive logs over HTTP, TCP and syslog, validate them against the log schema,
make them durable (write-ahead log, group commit) and roll them into Parquet spool batches.
Rejected records go to the dead-letter store with their original bytes."""

from logwarden.collector.config import CollectorConfig
from logwarden.collector.deadletter import DeadLetter, DeadLetterStore
from logwarden.collector.server import CollectorServer, run_collector
from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator

__all__ = [
    "CollectorConfig",
    "CollectorServer",
    "DeadLetter",
    "DeadLetterStore",
    "RecordValidator",
    "Spool",
    "run_collector",
]
