"""Prometheus metrics of the detectors, kept by the ``DetectorPool`` on the driver.

The Ray actors are not scraped: each reply of an actor carries its progress (newest event time, late
and too-late events, the call it applied), and the pool records it here with the batches, records and
anomalies it handed out and the actor failures it saw. A shard is *unavailable* from its first failed
call until a call succeeds again (Ray restarts a dead actor; one that stays unavailable was not
replaced, which the ``ray_actor_lost`` self-rule reports).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from logwarden.monitoring.anomaly import Anomaly

US = 1_000_000


@dataclass
class ShardProgress:
    """What one actor reported in its last reply."""

    max_event_us: int | None = None
    late_events: int = 0
    too_late_events: int = 0


def progress_of(rules: Iterable[Any]) -> dict[str, Any]:
    """An actor's progress from the rules it runs (``DetectorSet.rules.values()``): counters read off the
    rule objects, never their state (cheap enough for every reply)."""
    rules = list(rules)
    newest = [r.max_event_us for r in rules if getattr(r, "max_event_us", None) is not None]
    return {"max_event_us": max(newest) if newest else None,
            "late_events": sum(int(getattr(r, "late_events", 0) or 0) for r in rules),
            "too_late_events": sum(int(getattr(r, "too_late_events", 0) or 0) for r in rules)}


class DetectorMetrics:
    """Counts and progress of the detector pool; a prometheus-client collector (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches = 0
        self.records = 0
        self.advances = 0
        self._shards: dict[tuple[str, int], ShardProgress] = {}
        self._anomalies: dict[tuple[str, str, str], int] = {}
        self._failures: dict[str, int] = {}
        self._unavailable: dict[tuple[str, int], float] = {}

    # recording (the pool) -----------------------------------------------------------------
    def batch(self, records: int) -> None:
        """One batch fanned out to the actors."""
        with self._lock:
            self.batches += 1
            self.records += records

    def advance(self) -> None:
        """One advance of event time (idle sources)."""
        with self._lock:
            self.advances += 1

    def reply(self, rule: str, shard: int, progress: dict[str, Any] | None, anomalies: Iterable[Anomaly]) -> None:
        """A successful reply of ``rule``'s ``shard``: its progress and the new anomalies it raised."""
        with self._lock:
            self._unavailable.pop((rule, shard), None)
            if progress is not None:
                self._shards[(rule, shard)] = ShardProgress(progress.get("max_event_us"),
                                                            int(progress.get("late_events") or 0),
                                                            int(progress.get("too_late_events") or 0))
            for anomaly in anomalies:
                key = (rule, anomaly.severity, anomaly.status)
                self._anomalies[key] = self._anomalies.get(key, 0) + 1

    def actor_failed(self, rule: str, shard: int, now: float | None = None) -> None:
        """A call to ``rule``'s ``shard`` failed because its actor died."""
        with self._lock:
            self._failures[rule] = self._failures.get(rule, 0) + 1
            self._unavailable.setdefault((rule, shard), time.time() if now is None else now)

    def forget(self, rule: str) -> None:
        """``rule`` was removed from the rules file: its shards are no longer expected."""
        with self._lock:
            self._shards = {k: v for k, v in self._shards.items() if k[0] != rule}
            self._unavailable = {k: v for k, v in self._unavailable.items() if k[0] != rule}

    # reading -------------------------------------------------------------------------------
    def unavailable_since(self) -> dict[tuple[str, int], float]:
        """Shards whose actor failed and has not answered since: (rule, shard) -> epoch seconds."""
        with self._lock:
            return dict(self._unavailable)

    def collect(self) -> Iterator[Metric]:
        """The metrics at scrape time."""
        now = time.time()
        with self._lock:
            shards = dict(self._shards)
            anomalies = dict(self._anomalies)
            failures = dict(self._failures)
            unavailable = len(self._unavailable)
            batches, records, advances = self.batches, self.records, self.advances
        yield CounterMetricFamily("logwarden_detector_batches", "Batches fanned out to the detector actors",
                                  value=batches)
        yield CounterMetricFamily("logwarden_detector_records", "Records fanned out to the detector actors",
                                  value=records)
        yield CounterMetricFamily("logwarden_detector_advances",
                                  "Event-time advances sent while sources were idle", value=advances)
        yield from self._per_rule(shards, now)
        found = CounterMetricFamily("logwarden_detector_anomalies", "Anomalies the detectors raised",
                                    labels=["rule", "severity", "status"])
        for (rule, severity, status), n in sorted(anomalies.items()):
            found.add_metric([rule, severity, status], n)
        yield found
        failed = CounterMetricFamily("logwarden_detector_actor_failures",
                                     "Calls that found their detector actor dead", labels=["rule"])
        for rule, n in sorted(failures.items()):
            failed.add_metric([rule], n)
        yield failed
        yield GaugeMetricFamily("logwarden_detector_actors_unavailable",
                                "Detector shards whose actor failed and has not answered since", value=unavailable)

    @staticmethod
    def _per_rule(shards: dict[tuple[str, int], ShardProgress], now: float) -> Iterator[Metric]:
        late = CounterMetricFamily("logwarden_detector_late_events",
                                   "Events older than the rule's watermark (counted, still evaluated)",
                                   labels=["rule"])
        too_late = CounterMetricFamily("logwarden_detector_too_late_events",
                                       "Events older than what the rule's windows still hold", labels=["rule"])
        newest = GaugeMetricFamily("logwarden_detector_event_time_seconds",
                                   "Event time (epoch seconds) the rule has reached (its slowest shard)",
                                   labels=["rule"])
        lag = GaugeMetricFamily("logwarden_detector_lag_seconds",
                                "Wall clock minus the event time the rule has reached (its slowest shard)",
                                labels=["rule"])
        by_rule: dict[str, list[ShardProgress]] = {}
        for (rule, _), progress in shards.items():
            by_rule.setdefault(rule, []).append(progress)
        for rule in sorted(by_rule):
            parts = by_rule[rule]
            late.add_metric([rule], sum(p.late_events for p in parts))
            too_late.add_metric([rule], sum(p.too_late_events for p in parts))
            reached = [p.max_event_us for p in parts if p.max_event_us is not None]
            if reached:
                slowest = min(reached) / US
                newest.add_metric([rule], slowest)
                lag.add_metric([rule], max(0.0, now - slowest))
        yield from (late, too_late, newest, lag)

    def describe(self) -> list[Metric]:
        """Nothing up front (the values are read at scrape time)."""
        return []
