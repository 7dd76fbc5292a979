"""``frequency``: at least (or more than) N matching events within a sliding window, per key.

The count at an event ``t`` is the number of the key's matching events in ``(t - window, t]``.
It fires at the first event whose count meets the threshold, and again at most every ``realert``
while the condition keeps holding. The condition then holds until the N-th most recent event
leaves the window; the resolved event is stamped at that moment.

Out of order: a batch reaching back before events already held raises their window counts too;
those held events are evaluated again (one ``cumsum`` over the merged view: which windows a new event
entered), so a crossing completed by earlier events is found, stamped at the held event where the
count first meets the threshold, and an open episode's end moves on. A batch no older than the
newest event seen (the common case) skips this. Events beyond what the windows hold (older than the
watermark minus the window) are counted in ``too_late_events`` and raise nothing: their windows are
no longer whole.

State: the matching events' times per key in ``KeyedTimes`` (16 bytes an event within the window),
and the last five sample lines of the keys close to the threshold only.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import pyarrow as pa

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules.base import MAX_SAMPLES, KeyAlert, Rule, sample_rows, timestamps_of
from logwarden.monitoring.rules.registry import register_rule_class
from logwarden.monitoring.rules.spec import RuleSpec
from logwarden.monitoring.rules.spec_schema import DURATION, threshold
from logwarden.monitoring.rules.windows import KeyedTimes


def needed_count(op: str, value: float) -> int:
    """The smallest count meeting ``op value`` (``>`` or ``>=``)."""
    return int(math.floor(value)) + 1 if op == ">" else max(1, int(math.ceil(value)))


@register_rule_class
class FrequencyRule(Rule):
    """Fires when the count of matching events in (t - window, t] meets the threshold at some event t."""

    kind = "frequency"
    PROPERTIES = {"window": DURATION, "threshold": threshold([">", ">="])}
    REQUIRED = ("window", "threshold")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.need = needed_count(spec.threshold.op, spec.threshold.value)
        self.events = KeyedTimes(self.window_us)
        self.samples: dict[int, deque[tuple[int, str]]] = {}

    def count(self, key_hash: int, end_us: int) -> int:
        """The key's events in ``(end - window, end]``."""
        return self.events.count_at(key_hash, end_us)

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        keys = self.keys(matched)
        rows = np.flatnonzero(keys.valid)
        if len(rows) == 0:
            return []
        times = timestamps_of(matched)[rows]
        watermark = self.watermark_us
        too_late = None if watermark is None else watermark - self.window_us
        if too_late is not None:
            self.too_late_events += int(np.count_nonzero(times <= too_late))
        in_order = self.max_event_us is None or int(times.min()) >= self.max_event_us
        merged = self.events.add(keys.hashes[rows], times)
        positions = self._crossings(merged, in_order)
        if not in_order and too_late is not None and len(positions):
            positions = positions[merged.times[positions] > too_late]  # their windows are no longer whole
        anomalies: list[Anomaly] = []
        if len(positions):
            anomalies = self._fire(matched, keys, rows, merged, positions)
        self._keep_samples(matched, rows, merged)
        return anomalies

    def _crossings(self, merged: Any, in_order: bool) -> np.ndarray:
        """Merged positions to evaluate: new events meeting the threshold and, when the batch reaches
        back before events already held, the held events meeting it whose window the batch entered
        (their count, and so the moment their condition stops holding, changed)."""
        meets = merged.count >= self.need
        if in_order:  # no held event is later than the batch: none of their windows changed
            return np.flatnonzero(merged.is_new & meets)
        new_so_far = np.cumsum(merged.is_new, dtype=np.int64)
        before_window = np.where(merged.lower > 0, new_so_far[np.maximum(merged.lower - 1, 0)], 0)
        return np.flatnonzero(meets & (new_so_far > before_window))

    def _fire(self, matched: pa.Table, keys: Any, rows: np.ndarray, merged: Any,
              positions: np.ndarray) -> list[Anomaly]:
        at = merged.times[positions]
        until = merged.times[positions - self.need + 1] + self.window_us
        groups = merged.group[positions]
        bounds = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1], [True])))
        anomalies: list[Anomaly] = []
        new_positions = np.flatnonzero(merged.is_new)
        first_new = new_positions[np.searchsorted(merged.group[new_positions], groups[bounds[:-1]])]
        for g, (first, last) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
            key_hash = int(merged.unique_hashes[groups[first]])
            key = keys.text(int(rows[merged.batch_row[first_new[g]]]))
            anomalies += self.run_episodes(
                key, at[first:last], until[first:last],
                lambda j, first=first, key=key, key_hash=key_hash: self._firing(
                    matched, rows, merged, int(positions[first + j]), key, key_hash),
                self._resolved, ref=key_hash)
        return anomalies

    def _firing(self, matched: pa.Table, rows: np.ndarray, merged: Any, p: int, key: str, key_hash: int) -> Anomaly:
        at = int(merged.times[p])
        lower = int(merged.lower[p])
        recent = list(range(max(lower, p - MAX_SAMPLES + 1), p + 1))
        new_rows = [int(rows[merged.batch_row[q]]) for q in recent if merged.is_new[q]]
        old_needed = sum(1 for q in recent if not merged.is_new[q])
        stored = [line for t, line in self.samples.get(key_hash, ()) if t <= at][-old_needed:] if old_needed else []
        samples = stored + sample_rows(matched, new_rows)
        return self.anomaly(key, at - self.window_us, at, int(merged.count[p]), first_us=int(merged.times[lower]),
                            last_us=at, samples=samples)

    def _resolved(self, key: str, state: KeyAlert) -> Anomaly:
        until = state.last_true_us
        return self.resolved(key, until - self.window_us, until, self.count(state.ref, until))

    def _keep_samples(self, matched: pa.Table, rows: np.ndarray, merged: Any) -> None:
        hot = np.flatnonzero(merged.is_new & (merged.count >= self.need - (MAX_SAMPLES - 1)))
        if len(hot) == 0:
            return
        groups = merged.group[hot]
        from_end = np.searchsorted(groups, groups, "right") - np.arange(len(hot))
        hot = hot[from_end <= MAX_SAMPLES]
        lines = sample_rows(matched, rows[merged.batch_row[hot]])
        for q, line in zip(hot.tolist(), lines):
            key_hash = int(merged.unique_hashes[merged.group[q]])
            self.samples.setdefault(key_hash, deque(maxlen=MAX_SAMPLES)).append((int(merged.times[q]), line))

    def evaluate(self) -> list[Anomaly]:
        return self.close_episodes(self._resolved)

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        if watermark is None:
            return
        active = {s.ref for s in self.alerts.values() if s.active}
        horizon = watermark - self.window_us
        # an open episode's resolution needs the events of the window ending at its ``until``
        horizons = [s.last_true_us - self.window_us for s in self.alerts.values() if s.active]
        self.events.drop_before(min([horizon, *horizons]))
        if self.samples:
            held = np.fromiter(self.samples, np.uint64, len(self.samples))
            gone = held[~np.isin(held, self.events.known())]
            for key_hash in gone.tolist():
                if key_hash not in active:
                    del self.samples[key_hash]
        stale = [k for k, s in self.alerts.items() if not s.active and watermark - s.last_alert_us > self.realert_us]
        for key in stale:
            del self.alerts[key]

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "events": len(self.events), "state_bytes": self.events.nbytes}
