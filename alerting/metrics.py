"""Prometheus metrics of alerting: alerts received (by severity and status, and by rule), messages per
state (dead letters included), the outbox's depth, circuit breakers, delivery attempts by outcome and how
long each channel has been failing; read from the store at scrape time.

A channel is *failing* from its first failed attempt after its last successful one, as long as it still
has messages to deliver or its circuit breaker is open (the ``channel_failing`` self-rule reads it)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from logwarden.alerting.delivery.breaker import OPEN
from logwarden.alerting.store import PENDING, SENDING, AlertStore

if TYPE_CHECKING:
    from logwarden.alerting.delivery.worker import ChannelWorker


class AlertingCollector:
    """A prometheus-client collector over the alert store and the delivery workers."""

    def __init__(self, store: AlertStore, workers: dict[str, "ChannelWorker"],
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.workers = workers
        self.clock = clock
        self._lock = threading.Lock()
        self.outcomes: dict[tuple[str, str], int] = {}
        self._failing_since: dict[str, float] = {}

    def record(self, channel: str, outcome: str) -> None:
        """Count one delivery outcome (sent, failed, dead, skipped) of ``channel``."""
        with self._lock:
            self.outcomes[(channel, outcome)] = self.outcomes.get((channel, outcome), 0) + 1
            if outcome == "sent":
                self._failing_since.pop(channel, None)
            elif outcome in ("failed", "dead"):
                self._failing_since.setdefault(channel, self.clock())

    def outbox_depth(self) -> dict[str, int]:
        """Messages waiting for delivery (pending or being sent), per channel."""
        rows = self.store.query("SELECT channel, count(*) AS n FROM messages WHERE state IN (?, ?) GROUP BY channel",
                                (PENDING, SENDING))
        return {r["channel"]: int(r["n"]) for r in rows}

    def failing_since(self) -> dict[str, float]:
        """Channels failing now (epoch seconds of their first failure since their last success), among
        those that still have messages to deliver or an open circuit breaker."""
        with self._lock:
            failing = dict(self._failing_since)
        if not failing:
            return {}
        waiting = self.outbox_depth()
        return {channel: since for channel, since in failing.items()
                if waiting.get(channel) or (channel in self.workers and self.workers[channel].breaker.state == OPEN)}

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
        by_rule = CounterMetricFamily("logwarden_alerts_by_rule", "Anomalies received by alerting, per rule",
                                      labels=["rule", "severity", "status"])
        for r in self.store.query("SELECT rule, severity, status, count(*) AS n FROM alerts "
                                  "GROUP BY rule, severity, status"):
            by_rule.add_metric([r["rule"], r["severity"], r["status"]], r["n"])
        yield by_rule
        yield from self._delivery_state()
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

    def _delivery_state(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("logwarden_alert_outbox_depth",
                                  "Alert messages waiting for delivery (pending or being sent)", labels=["channel"])
        waiting = self.outbox_depth()
        for channel in sorted(set(self.workers) | set(waiting)):  # every channel, 0 when nothing waits
            depth.add_metric([channel], waiting.get(channel, 0))
        yield depth
        failing = GaugeMetricFamily("logwarden_alert_channel_failing_seconds",
                                    "Seconds since the channel's first failure after its last success "
                                    "(0 while it delivers)", labels=["channel"])
        since = self.failing_since()
        now = self.clock()
        for channel in sorted(self.workers):
            failing.add_metric([channel], max(0.0, now - since[channel]) if channel in since else 0.0)
        yield failing


def registry_for(collector: AlertingCollector) -> CollectorRegistry:
    """A registry holding only alerting's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
