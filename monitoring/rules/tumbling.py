"""Rules evaluated on tumbling windows of event time, ``[k·window, (k+1)·window)``, closed by the watermark.

A window closes once the watermark reaches its end; a rule then says, per key, whether its
condition holds in that window. An episode spans consecutive holding windows: it fires at the
first, re-alerts at most every ``realert``, and is resolved at the close of the first window in
which it no longer holds (stamped with that window). Events of a window already closed are late
beyond repair: they are counted in ``too_late_events``.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules.base import KeyAlert, Rule, sample_rows, timestamps_of
from logwarden.monitoring.rules.keys import Keys
from logwarden.monitoring.rules.spec import RuleSpec


@dataclass
class WindowResult:
    """One key's outcome in a closed window."""

    key_hash: int
    value: float
    holds: bool
    first_us: int | None = None
    last_us: int | None = None
    samples: list[str] = field(default_factory=list)


class TumblingRule(Rule):
    """Base of the kinds that judge whole windows (``spike``, ``threshold`` with ``aggregate``)."""

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.next_window: int | None = None
        self.names: dict[int, str] = {}
        self.samples: dict[tuple[int, int], list[tuple[int, str]]] = {}
        self.spans: dict[tuple[int, int], tuple[int, int]] = {}

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        keys = self.keys(matched)
        rows = np.flatnonzero(keys.valid)
        if len(rows) == 0:
            return []
        times = timestamps_of(matched)[rows]
        windows = times // self.window_us
        if self.next_window is not None:
            closed = windows < self.next_window
            if closed.any():
                self.too_late_events += int(closed.sum())
                rows, times, windows = rows[~closed], times[~closed], windows[~closed]
                if len(rows) == 0:
                    return []
        self._remember(matched, keys, rows, times, windows)
        self.accumulate(matched, keys, rows, times, windows)
        return []

    def _remember(self, matched: pa.Table, keys: Keys, rows: np.ndarray, times: np.ndarray,
                  windows: np.ndarray) -> None:
        hashes = keys.hashes[rows]
        pairs, first, inverse = np.unique(np.stack([windows, hashes.astype(np.int64)]), axis=1,
                                          return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        last_time = np.full(pairs.shape[1], np.iinfo(np.int64).min)
        np.maximum.at(last_time, inverse, times)
        first_time = np.full(pairs.shape[1], np.iinfo(np.int64).max)
        np.minimum.at(first_time, inverse, times)
        # the last rows of each (window, key), for sample lines
        order = np.lexsort((times, inverse))
        group = inverse[order]
        from_end = np.searchsorted(group, group, "right") - np.arange(len(group))
        tail = order[from_end <= 5]
        lines = sample_rows(matched, rows[tail])
        for i, (k, h) in enumerate(pairs.T.tolist()):
            key_hash = int(np.int64(h).astype(np.uint64))
            if key_hash not in self.names:
                self.names[key_hash] = keys.text(int(rows[first[i]]))
            slot = (int(k), key_hash)
            span = self.spans.get(slot)
            self.spans[slot] = (int(first_time[i]), int(last_time[i])) if span is None else \
                (min(span[0], int(first_time[i])), max(span[1], int(last_time[i])))
        for row_index, line in zip(tail.tolist(), lines):
            slot = (int(windows[row_index]), int(hashes[row_index]))
            kept = self.samples.setdefault(slot, [])
            kept.append((int(times[row_index]), line))
            kept.sort()
            del kept[:-5]

    @abstractmethod
    def accumulate(self, matched: pa.Table, keys: Keys, rows: np.ndarray, times: np.ndarray,
                   windows: np.ndarray) -> None:
        """Add a batch's matching rows (``rows`` of ``matched``) to the open windows."""

    @abstractmethod
    def close(self, window: int) -> list[WindowResult]:
        """Judge the closed ``window``: the keys with a value in it."""

    @abstractmethod
    def pending_windows(self) -> list[int]:
        """The windows holding data, ascending."""

    def idle(self, window: int) -> bool:
        """Whether ``window`` can be skipped when it has no data (no key is watched across windows)."""
        return True

    def evaluate(self) -> list[Anomaly]:
        watermark = self.watermark_us
        if watermark is None:
            return []
        closable = watermark // self.window_us
        pending = self.pending_windows()
        if self.next_window is None:
            if not pending:
                return []
            self.next_window = pending[0]
        anomalies: list[Anomaly] = []
        while self.next_window < closable:
            k = self.next_window
            active = any(s.active for s in self.alerts.values())
            if not active and self.idle(k) and (not pending or pending[0] > k):
                self.next_window = min(pending[0], closable) if pending and pending[0] > k else closable
                continue
            anomalies += self._judge(k)
            pending = [w for w in pending if w > k]
            self.next_window = k + 1
        return anomalies

    def _judge(self, k: int) -> list[Anomaly]:
        start, end = k * self.window_us, (k + 1) * self.window_us
        results = {r.key_hash: r for r in self.close(k)}
        anomalies: list[Anomaly] = []
        for key_hash in sorted((h for h, r in results.items() if r.holds), key=lambda h: self.names[h]):
            result = results[key_hash]
            key = self.names[key_hash]
            samples = [line for _, line in self.samples.get((k, key_hash), [])]
            anomalies += self.open_episode(
                key, start, end,
                lambda key=key, result=result, samples=samples: self.anomaly(
                    key, start, end, result.value, first_us=result.first_us, last_us=result.last_us,
                    samples=samples),
                self._resolved_before, ref=key_hash)
        for key in sorted(k2 for k2, s in self.alerts.items() if s.active and s.last_true_us <= start):
            state = self.alerts[key]
            result = results.get(state.ref)
            if result is not None and result.holds:
                continue
            state.active = False
            anomalies.append(self.resolved(key, start, end, result.value if result else 0.0))
        for slot in [s for s in self.samples if s[0] <= k]:
            del self.samples[slot]
        for slot in [s for s in self.spans if s[0] <= k]:
            del self.spans[slot]
        return anomalies

    def span(self, window: int, key_hash: int) -> tuple[int | None, int | None]:
        """First and last matching event time of a key in a window."""
        return self.spans.get((window, key_hash), (None, None))

    def _resolved_before(self, key: str, state: KeyAlert) -> Anomaly:
        until = state.last_true_us
        return self.resolved(key, until, until + self.window_us, 0.0)

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        if watermark is None:
            return
        stale = [k for k, s in self.alerts.items() if not s.active and watermark - s.last_alert_us > self.realert_us]
        for key in stale:
            del self.alerts[key]

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "keys": len(self.names)}
