"""Prometheus metrics of alerting: alerts received, messages per state (dead letters included),
circuit breakers, failed attempts; read from the store at scrape time."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from logwarden.alerting.delivery.breaker import OPEN
from logwarden.alerting.store import AlertStore

if TYPE_CHECKING:
    from logwarden.alerting.delivery.worker import ChannelWorker


class AlertingCollector:
    """A prometheus-client collector over the alert store and the delivery workers."""

    def __init__(self, store: AlertStore, workers: dict[str, "ChannelWorker"]) -> None:
        self.store = store
        self.workers = workers
        self._lock = threading.Lock()
        self.outcomes: dict[tuple[str, str], int] = {}

    def record(self, channel: str, outcome: str) -> None:
        """Count one delivery outcome (sent, failed, dead, skipped) of ``channel``."""
        with self._lock:
            self.outcomes[(channel, outcome)] = self.outcomes.get((channel, outcome), 0) + 1

    def collect(self) -> Iterator[Metric]:
        """The metrics at scrape time."""
        alerts = CounterMetricFamily(
            "logwarden_alerts", "Anomalies received by alerting (LOW included)", labels=["severity", "status"]
        )
        for r in self.store.query(
            "SELECT severity, status, count(*) AS n FROM alerts GROUP BY severity, status"
        ):
            alerts.add_metric([r["severity"], r["status"]], r["n"])
        yield alerts
        messages = GaugeMetricFamily(
            "logwarden_alert_messages",
            "Alert messages per channel and delivery state",
            labels=["channel", "state"],
        )
        dead = GaugeMetricFamily(
            "logwarden_alert_dead_letters",
            "Messages given up on after their last attempt",
            labels=["channel"],
        )
        for r in self.store.query(
            "SELECT channel, state, count(*) AS n FROM messages GROUP BY channel, state"
        ):
            messages.add_metric([r["channel"], r["state"]], r["n"])
            if r["state"] == "dead":
                dead.add_metric([r["channel"]], r["n"])
        yield messages
        yield dead
        silenced = GaugeMetricFamily("logwarden_alerts_silenced", "Alerts suppressed by a silence")
        silenced.add_metric(
            [], self.store.query("SELECT count(*) FROM alerts WHERE silenced_by IS NOT NULL")[0][0]
        )
        yield silenced
        breaker = GaugeMetricFamily(
            "logwarden_alert_circuit_open",
            "1 while the channel's circuit breaker is open",
            labels=["channel"],
        )
        for channel, worker in self.workers.items():
            breaker.add_metric([channel], 1.0 if worker.breaker.state == OPEN else 0.0)
        yield breaker
        outcomes = CounterMetricFamily(
            "logwarden_alert_delivery_attempts",
            "Delivery attempts by outcome since start",
            labels=["channel", "outcome"],
        )
        with self._lock:
            for (channel, outcome), n in sorted(self.outcomes.items()):
                outcomes.add_metric([channel, outcome], n)
        yield outcomes


def registry_for(collector: AlertingCollector) -> CollectorRegistry:
    """A registry holding only alerting's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
