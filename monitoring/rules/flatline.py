"""``flatline``: fewer than N events within a window for a key seen before (silence when N is 1).

The condition of a key holds from the moment its N-th most recent event leaves the window (and at
least one whole window after the key was first seen) until an event brings the count back to N.
It fires at that moment, computed from the events' times, once the watermark reaches it: so it
fires for a key that sends nothing at all, as long as event time moves (other keys' records, other
shards' batches, or the idle advance of a live system). One episode gives one alert and one resolved
event, so it does not flap. The resolved event is stamped at the first event that arrived bringing the
count back; it is final, so an earlier event of the silence arriving later (within the lateness) moves
neither it nor the alert. Likewise the silence is decided when the watermark reaches it: an event of
its first ``allowed_lateness`` arriving after a later one leaves an alert event order would not give. A key silent for ``forget_after`` is forgotten.

State per key: its last N event times (``KeyedTimes`` with ``keep_last``; while a key has had fewer
than N events the oldest kept is the first ever seen), its name and its last sample line. Finding
the silent keys and the forgotten ones is vectorized over all keys.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules.base import US, KeyAlert, Rule, sample_rows, timestamps_of
from logwarden.monitoring.rules.registry import register_rule_class
from logwarden.monitoring.rules.spec import RuleSpec
from logwarden.monitoring.rules.spec_schema import DURATION, threshold
from logwarden.monitoring.rules.windows import KeyedTimes


def below_count(op: str, value: float) -> int:
    """N such that a count meets ``op value`` (``<`` or ``<=``) exactly when it is below N."""
    return int(math.ceil(value)) if op == "<" else int(math.floor(value)) + 1


@register_rule_class
class FlatlineRule(Rule):
    """Fires when a known key's count in the window falls below the threshold (e.g. ``< 1``: silence)."""

    kind = "flatline"
    PROPERTIES = {"window": DURATION, "threshold": threshold(["<", "<="]), "forget_after": DURATION}
    REQUIRED = ("window", "threshold")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.need = max(1, below_count(spec.threshold.op, spec.threshold.value))
        self.events = KeyedTimes(self.window_us, keep_last=self.need)
        self.names: dict[int, str] = {}
        self.last_line: dict[int, str] = {}
        self.silent: dict[int, str] = {}  # key hash -> key, of the keys in an open silence episode
        self.forget_us = int(spec.forget_after * US)

    def silent_from(self, key_hash: int) -> int:
        """The moment the key's count falls below N (given the events stored so far): when its N-th most
        recent event leaves the window, or one window after it was first seen if it never had N events
        (only the last N events are kept, so the oldest one kept is then the first ever seen)."""
        times = self.events.times_of(key_hash)
        return int(times[max(0, len(times) - self.need)]) + self.window_us

    def _silent_all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(key hashes, moment each falls silent, its last event time), for every known key at once."""
        hashes, starts = self.events.index()
        if len(hashes) == 0:
            empty = np.zeros(0, np.int64)
            return hashes, empty, empty
        ends = starts[1:]
        oldest = np.maximum(starts[:-1], ends - self.need)
        times = self.events.times
        return hashes, times[oldest] + self.window_us, times[ends - 1]

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        keys = self.keys(matched)
        rows = np.flatnonzero(keys.valid)
        if len(rows) == 0:
            return []
        times = timestamps_of(matched)[rows]
        hashes = keys.hashes[rows]
        silent_before = set(self.silent)
        recovered: dict[int, int] = {}
        anomalies = self._recoveries(hashes, times, recovered)
        merged = self.events.add(hashes, times)
        anomalies += self._gaps(matched, keys, rows, merged, silent_before, recovered)
        new = np.flatnonzero(merged.is_new)
        groups = merged.group[new]
        change = np.concatenate(([True], groups[1:] != groups[:-1], [True]))
        first_new, last_new = new[change[:-1]], new[change[1:]]
        for q in first_new.tolist():
            key_hash = int(merged.unique_hashes[merged.group[q]])
            if key_hash not in self.names:
                self.names[key_hash] = keys.text(int(rows[merged.batch_row[q]]))
        lines = sample_rows(matched, rows[merged.batch_row[last_new]])
        for q, line in zip(last_new.tolist(), lines):
            self.last_line[int(merged.unique_hashes[merged.group[q]])] = line
        return anomalies

    def _gaps(self, matched: pa.Table, keys: Any, rows: np.ndarray, merged: Any,
              silent_before: set[int], recovered: dict[int, int]) -> list[Anomaly]:
        """Silences that began and ended within what this batch brought: between two events of a key
        (the later one new), the count fell below N at ``F`` and stayed there until event time had
        reached ``F + allowed_lateness`` (as a continuous evaluation would have seen it)."""
        n = len(merged.group)
        if n < 2:
            return []
        position = np.arange(n)
        group_start = np.searchsorted(merged.group, merged.group, "left")
        nxt = position + 1
        pair = np.zeros(n, bool)
        pair[:-1] = (merged.group[:-1] == merged.group[1:]) & merged.is_new[1:]
        candidates = np.flatnonzero(pair)
        if len(candidates) == 0:
            return []
        # the oldest of the last N events up to the candidate (the first ever seen when fewer were kept)
        oldest = np.maximum(candidates - self.need + 1, group_start[candidates])
        silent_at = merged.times[oldest] + self.window_us
        following = merged.times[nxt[candidates]]
        gap = (following >= silent_at + self.lateness_us) & (following > silent_at)
        anomalies: list[Anomaly] = []
        covered: dict[int, int] = {}  # key hash -> merged position its last reported silence lasts to
        for c, start in zip(candidates[gap].tolist(), silent_at[gap].tolist()):
            key_hash = int(merged.unique_hashes[merged.group[c]])
            key = keys.text(int(rows[merged.batch_row[c + 1]]))
            following_us = int(merged.times[c + 1])
            if key_hash in self.silent or c < covered.get(key_hash, -1) or \
                    (key_hash in silent_before and following_us <= recovered.get(key_hash, following_us)):
                continue  # this silence was reported already
            count = int(np.count_nonzero((merged.times[group_start[c]:c + 1] > start - self.window_us)))
            last_us = int(merged.times[c])
            line = self._line_before(matched, rows, merged, c)
            anomalies += self.open_episode(
                key, start, start, lambda: self.anomaly(key, start - self.window_us, start, count, first_us=last_us,
                                                        last_us=last_us, samples=[line] if line else []),
                self._never, ref=key_hash)
            end = c + 1
            group_end = int(np.searchsorted(merged.group, merged.group[c], "right"))
            recovered = np.flatnonzero(merged.count[end:group_end] >= self.need)
            if len(recovered):
                q = end + int(recovered[0])
                covered[key_hash] = q
                at = int(merged.times[q])
                self._end_episode(key, at)
                anomalies.append(self.resolved(key, at - self.window_us, at, int(merged.count[q])))
            else:
                self.silent[key_hash] = key
        return anomalies

    def _line_before(self, matched: pa.Table, rows: np.ndarray, merged: Any, c: int) -> str | None:
        if merged.is_new[c]:
            return sample_rows(matched, [int(rows[merged.batch_row[c]])])[0]
        return self.last_line.get(int(merged.unique_hashes[merged.group[c]]))

    def _recoveries(self, hashes: np.ndarray, times: np.ndarray, recovered: dict[int, int]) -> list[Anomaly]:
        """Resolve the silent keys whose count this batch brings back to N, stamped at that event (noted in
        ``recovered``)."""
        if not self.silent:
            return []
        involved = np.isin(hashes, np.fromiter(self.silent, np.uint64, len(self.silent)))
        if not involved.any():
            return []
        probe = self.events.add(hashes[involved], times[involved], store=False)
        anomalies = []
        for q in np.flatnonzero(probe.is_new & (probe.count >= self.need)).tolist():
            key_hash = int(probe.unique_hashes[probe.group[q]])
            key = self.silent.pop(key_hash, None)
            if key is None:
                continue
            at = max(int(probe.times[q]), self.alerts[key].start_us)
            self._end_episode(key, at)
            recovered[key_hash] = int(probe.times[q])
            anomalies.append(self.resolved(key, at - self.window_us, at, int(probe.count[q])))
        return anomalies

    def _end_episode(self, key: str, at_us: int) -> None:
        """The silence of ``key`` ended at ``at_us``; its state stays so that a late event of the silence
        finds it resolved (final) rather than reporting it again."""
        state = self.alerts[key]
        state.active, state.last_true_us = False, at_us

    def evaluate(self) -> list[Anomaly]:
        watermark = self.watermark_us
        if watermark is None:
            return []
        hashes, silent, last = self._silent_all()
        candidates = np.flatnonzero(silent <= watermark)
        if self.silent and len(candidates):
            active = np.fromiter(self.silent, np.uint64, len(self.silent))
            candidates = candidates[~np.isin(hashes[candidates], active)]
        if len(candidates) == 0:
            return []
        counts = self._counts_at(candidates, silent[candidates])
        names = [self.names[h] for h in hashes[candidates].tolist()]
        order = sorted(range(len(candidates)), key=lambda i: (int(silent[candidates[i]]), names[i]))
        anomalies: list[Anomaly] = []
        for i in order:
            index = int(candidates[i])
            key_hash, key, start = int(hashes[index]), names[i], int(silent[index])
            count, last_us, line = int(counts[i]), int(last[index]), self.last_line.get(key_hash)
            anomalies += self.open_episode(
                key, start, watermark,
                lambda key=key, start=start, count=count, last_us=last_us, line=line: self.anomaly(
                    key, start - self.window_us, start, count, first_us=last_us, last_us=last_us,
                    samples=[line] if line else []),
                self._never, ref=key_hash)
            self.silent[key_hash] = key
        return anomalies

    def _counts_at(self, keys: np.ndarray, moments: np.ndarray) -> np.ndarray:
        """Stored events of the keys (indexes into ``index()``) in ``(moment - window, moment]``."""
        _, starts = self.events.index()
        times = self.events.times
        counts = np.zeros(len(keys), np.int64)
        for offset in range(self.need):
            position = starts[keys] + offset
            present = position < starts[keys + 1]
            at = times[np.minimum(position, len(times) - 1)]
            counts += present & (at > moments - self.window_us) & (at <= moments)
        return counts

    @staticmethod
    def _never(key: str, state: KeyAlert) -> Anomaly:
        raise RuntimeError("a silent key is resolved by its records, not by time")

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        if watermark is None:
            return
        hashes, _, last = self._silent_all()
        forgotten = hashes[watermark - last > self.forget_us]
        if len(forgotten):
            self.events.drop_keys(forgotten)
            for key_hash in forgotten.tolist():
                name = self.names.pop(key_hash, None)
                self.last_line.pop(key_hash, None)
                self.silent.pop(key_hash, None)
                if name is not None:
                    self.alerts.pop(name, None)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "keys": len(self.names), "state_bytes": self.events.nbytes}
