"""``frequency``: N matching events within a sliding window, per key."""
from __future__ import annotations

import bisect
from collections import deque

import pyarrow as pa

from monitoring.anomaly import Anomaly
from monitoring.rules.base import Rule, micros_of, sample_lines


class FrequencyRule(Rule):
    """Fires when the count of matching events in (t - window, t] meets the threshold at some event t."""

    kind = "frequency"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.times: dict[str, list[int]] = {}
        self.samples: dict[str, deque[str]] = {}

    def count(self, key: str, end_us: int) -> tuple[int, int]:
        """(count, index of first) of ``key``'s events in (end - window, end]."""
        times = self.times.get(key, [])
        low = bisect.bisect_right(times, end_us - self.window_us)
        return bisect.bisect_right(times, end_us) - low, low

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        anomalies = []
        lines = sample_lines(matched)
        for key, at, line in zip(self.keys_of(matched), micros_of(matched), lines):
            if key is None:
                continue
            bisect.insort(self.times.setdefault(key, []), at)
            self.samples.setdefault(key, deque(maxlen=5)).append(line)
            count, first = self.count(key, at)
            if self.condition(count, self.spec.threshold.value):
                times = self.times[key]
                anomaly = self.fire(key, at, lambda: self.anomaly(
                    key, at - self.window_us, at, count, first_us=times[first], last_us=at,
                    samples=list(self.samples[key])))
                if anomaly:
                    anomalies.append(anomaly)
        return anomalies

    def evaluate(self) -> list[Anomaly]:
        watermark = self.watermark_us
        anomalies = []
        for key, state in self.alerts.items():
            if not state.active:
                continue
            count, _ = self.count(key, watermark)
            if not self.condition(count, self.spec.threshold.value):
                anomaly = self.resolve(key, lambda: self.resolved(key, watermark - self.window_us, watermark, count))
                if anomaly:
                    anomalies.append(anomaly)
        return anomalies

    def garbage_collect(self) -> None:
        horizon = self.watermark_us - self.window_us
        for key in list(self.times):
            times = self.times[key]
            del times[: bisect.bisect_right(times, horizon)]
            state = self.alerts.get(key)
            if not times and not (state and state.active):
                del self.times[key]
                self.samples.pop(key, None)
        for key in [k for k, state in self.alerts.items() if not state.active and k not in self.times]:
            del self.alerts[key]
