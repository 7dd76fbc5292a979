"""Prometheus metrics of the collector, with the standard ``process_*`` metrics of its process (resident
memory, CPU, open files)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector


class CollectorMetrics:
    """The collector's counters, on a registry of its own (served at ``GET /metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.accepted = Counter(
            "logwarden_collector_records_accepted",
            "Records accepted and durable",
            ["protocol"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "logwarden_collector_records_rejected",
            "Records rejected, by reason",
            ["protocol", "reason"],
            registry=self.registry,
        )
        self.bytes = Counter(
            "logwarden_collector_bytes", "Bytes received", ["protocol"], registry=self.registry
        )
        self.batches = Counter(
            "logwarden_collector_batch_flushes", "Spool batches written", registry=self.registry
        )
        self.flush_seconds = Histogram(
            "logwarden_collector_batch_flush_seconds",
            "Time to write one spool batch",
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.fsyncs = Counter(
            "logwarden_collector_wal_fsyncs", "Write-ahead log fsyncs (group commits)", registry=self.registry
        )
        self.group_size = Histogram(
            "logwarden_collector_wal_group_size",
            "Appends covered by one fsync",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.spool_depth = Gauge(
            "logwarden_collector_spool_depth", "Batches waiting in the spool", registry=self.registry
        )
        self.memory_used = Gauge(
            "logwarden_collector_memory_budget_used_bytes",
            "Bytes of the in-memory budget in use",
            registry=self.registry,
        )
        self.throttled = Counter(
            "logwarden_collector_throttled",
            "Requests refused (HTTP 429) or reads paused " "under backpressure",
            ["protocol"],
            registry=self.registry,
        )
        self.connections = Gauge(
            "logwarden_collector_open_connections",
            "Open stream connections",
            ["protocol"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "logwarden_collector_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # Faults (issue 16): what a full disk or a damaged file cost.
        self.wal_errors = Counter(
            "logwarden_collector_wal_errors",
            "Write-ahead log writes or fsyncs that failed (the requests concerned were answered 503)",
            ["kind"],
            registry=self.registry,
        )
        self.low_disk_refusals = Counter(
            "logwarden_collector_low_disk_refusals",
            "Requests refused (503) because free disk space was under min_free_disk_bytes",
            ["protocol"],
            registry=self.registry,
        )
        self.wal_skipped_bytes = Counter(
            "logwarden_collector_wal_skipped_bytes",
            "Bytes of write-ahead segments skipped on recovery (a corrupt entry, or a torn tail)",
            registry=self.registry,
        )
        self.deadletter_failures = Counter(
            "logwarden_collector_deadletter_write_failures",
            "Rejected records that could not be kept in the dead-letter store (e.g. a full disk)",
            ["protocol"],
            registry=self.registry,
        )
        self.deadletters_evicted = Counter(
            "logwarden_collector_deadletters_evicted",
            "Dead letters deleted, oldest first, to keep the store under max_deadletter_bytes",
            registry=self.registry,
        )
