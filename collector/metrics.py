"""Prometheus metrics of the collector."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CollectorMetrics:
    """The collector's counters, on a registry of its own (served at ``GET /metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter("logwarden_collector_records_accepted", "Records accepted and durable",
                                ["protocol"], registry=self.registry)
        self.rejected = Counter("logwarden_collector_records_rejected", "Records rejected, by reason",
                                ["protocol", "reason"], registry=self.registry)
        self.bytes = Counter("logwarden_collector_bytes", "Bytes received", ["protocol"], registry=self.registry)
        self.batches = Counter("logwarden_collector_batch_flushes", "Spool batches written", registry=self.registry)
        self.spool_depth = Gauge("logwarden_collector_spool_depth", "Batches waiting in the spool",
                                 registry=self.registry)
        self.latency = Histogram("logwarden_collector_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
