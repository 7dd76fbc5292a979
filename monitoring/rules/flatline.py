"""``flatline``: fewer than N events within a window for a key seen before (silence when N is 1).

It fires on event time passing, so it fires for a key that sends nothing at all, as long
as event time moves (other keys' records, or the idle advance of a live system). It stays
firing until the key's count meets the threshold again, so it does not flap; a key
silent for ``forget_after`` is forgotten.
"""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from monitoring.anomaly import Anomaly
from monitoring.rules.base import US, Rule, sample_lines


class FlatlineRule(Rule):
    """Fires when a known key's count in (watermark - window, watermark] meets the threshold (e.g. < 1)."""

    kind = "flatline"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.seconds: dict[str, Counter[int]] = {}  # key -> events per second of event time
        self.first_seen: dict[str, int] = {}
        self.last_seen: dict[str, int] = {}
        self.last_line: dict[str, str] = {}
        self.forget_us = int(spec.forget_after * US)

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        keys = self.keys_of(matched)
        seconds = pc.divide(pc.cast(matched["timestamp"], pa.int64()), US).to_pylist()
        for key, second in zip(keys, seconds):
            if key is not None:
                self.seconds.setdefault(key, Counter())[second] += 1
        self._remember_last(matched, keys)
        return []

    def _remember_last(self, matched: pa.Table, keys: list[str | None]) -> None:
        micros = pc.cast(matched["timestamp"], pa.int64()).to_pylist()
        last_row: dict[str, int] = {}
        for row, (key, at) in enumerate(zip(keys, micros)):
            if key is None:
                continue
            self.first_seen[key] = min(self.first_seen.get(key, at), at)
            if at >= self.last_seen.get(key, at):
                self.last_seen[key] = at
                last_row[key] = row
        if last_row:
            rows = matched.take(list(last_row.values()))
            for key, line in zip(last_row, sample_lines(rows)):
                self.last_line[key] = line

    def count(self, key: str, end_us: int) -> int:
        """``key``'s events in (end - window, end], at one-second resolution."""
        low, high = (end_us - self.window_us) // US, end_us // US
        return sum(n for second, n in self.seconds.get(key, {}).items() if low < second <= high)

    def evaluate(self) -> list[Anomaly]:
        watermark = self.watermark_us
        anomalies = []
        for key in list(self.first_seen):
            if self.first_seen[key] > watermark - self.window_us:
                continue  # not yet watched for a whole window
            count = self.count(key, watermark)
            start = watermark - self.window_us
            if self.condition(count, self.spec.threshold.value):
                anomaly = self.fire(key, watermark, lambda: self.anomaly(
                    key, start, watermark, count, first_us=self.last_seen.get(key), last_us=self.last_seen.get(key),
                    samples=[self.last_line[key]] if key in self.last_line else []))
            else:
                anomaly = self.resolve(key, lambda: self.resolved(key, start, watermark, count))
            if anomaly:
                anomalies.append(anomaly)
        return anomalies

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        horizon = (watermark - self.window_us) // US
        for key, seconds in self.seconds.items():
            for second in [s for s in seconds if s <= horizon]:
                del seconds[second]
        for key in [k for k, at in self.last_seen.items() if watermark - at > self.forget_us]:
            for table in (self.seconds, self.first_seen, self.last_seen, self.last_line, self.alerts):
                table.pop(key, None)
