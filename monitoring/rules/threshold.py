"""``threshold``: a field of one event above or below a value (duration_ms > 5000), per key; or, with
``aggregate``, a statistic of the field over each window (p95 of duration_ms above 800 per 5 minutes).

Per event: it fires on a crossing event, re-alerts at most every ``realert``, and resolves once no
crossing event has come for ``realert`` (or ``window``, if longer) of event time. With
``aggregate`` (``count``, ``sum``, ``avg``, ``min``, ``max``, ``p50``, ``p90``, ``p95``, ``p99``;
percentiles interpolate linearly, as numpy and pandas do) it judges tumbling windows of ``window``
and needs ``min_count`` events in a window to judge it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules.base import NUMPY_OPERATORS, KeyAlert, Rule, sample_rows, timestamps_of
from logwarden.monitoring.rules.filters import field_values
from logwarden.monitoring.rules.keys import Keys
from logwarden.monitoring.rules.registry import register_rule_class
from logwarden.monitoring.rules.spec import RuleSpec
from logwarden.monitoring.rules.spec_schema import DURATION, OPERATORS, threshold
from logwarden.monitoring.rules.tumbling import TumblingRule, WindowResult

AGGREGATES = ["count", "sum", "avg", "min", "max", "p50", "p90", "p95", "p99"]


def numeric(table: pa.Table, name: str) -> np.ndarray:
    """Field ``name`` as float64 (NaN where missing or not a number)."""
    values = field_values(table, name)
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        try:
            values = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.full(table.num_rows, np.nan)
    return np.asarray(pc.fill_null(pc.cast(values, pa.float64()), np.nan).to_numpy(zero_copy_only=False),
                      dtype=np.float64)


def aggregate_groups(fn: str, groups: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct groups, count, aggregate) of ``values`` per group; NaN values are left out."""
    keep = ~np.isnan(values)
    groups, values = groups[keep], values[keep]
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1]))) if len(groups) else \
        np.zeros(0, np.int64)
    counts = np.diff(np.concatenate((starts, [len(groups)])))
    if len(groups) == 0:
        return groups, counts, values
    if fn == "count":
        result = counts.astype(np.float64)
    elif fn == "sum":
        result = np.add.reduceat(values, starts)
    elif fn == "avg":
        result = np.add.reduceat(values, starts) / counts
    elif fn == "min":
        result = values[starts]
    elif fn == "max":
        result = values[starts + counts - 1]
    else:
        q = int(fn[1:]) / 100.0
        position = q * (counts - 1)
        low = np.floor(position).astype(np.int64)
        high = np.ceil(position).astype(np.int64)
        result = values[starts + low] + (values[starts + high] - values[starts + low]) * (position - low)
    return groups[starts], counts, result


@register_rule_class
class ThresholdRule(TumblingRule):
    """A field compared with a value, per event or aggregated per window."""

    kind = "threshold"
    PROPERTIES = {"field": {"type": "string", "minLength": 1}, "threshold": threshold(OPERATORS),
                  "window": DURATION, "aggregate": {"enum": AGGREGATES}, "min_count": {"type": "integer", "minimum": 1}}
    REQUIRED = ("field", "threshold")
    DEPENDENT_REQUIRED = {"aggregate": ["window"]}

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.aggregate: str | None = spec.option("aggregate")
        self.min_count = int(spec.option("min_count", 1))
        self.compare = NUMPY_OPERATORS[spec.threshold.op]
        self.quiet_us = max(self.realert_us, self.window_us)
        self.values: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    # per event ---------------------------------------------------------------------------
    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        if self.aggregate:
            return super().on_matches(matched)
        values = numeric(matched, self.spec.field)
        with np.errstate(invalid="ignore"):
            crossing = np.flatnonzero(self.compare(values, self.spec.threshold.value) & ~np.isnan(values))
        if len(crossing) == 0:
            return []
        hits = matched.take(pa.array(crossing))
        keys = self.keys(hits)
        rows = np.flatnonzero(keys.valid)
        times = timestamps_of(hits)[rows]
        hashes = keys.hashes[rows]
        order = np.lexsort((times, hashes))
        rows, times, hashes = rows[order], times[order], hashes[order]
        bounds = np.flatnonzero(np.concatenate(([True], hashes[1:] != hashes[:-1], [True]))) if len(rows) else []
        anomalies: list[Anomaly] = []
        hit_values = values[crossing]
        for first, last in zip(list(bounds[:-1]), list(bounds[1:])):
            key = keys.text(int(rows[first]))
            at = times[first:last]

            def build(j: int, first: int = first, key: str = key) -> Anomaly:
                row = int(rows[first + j])
                moment = int(times[first + j])
                return self.anomaly(key, moment, moment, hit_values[row], first_us=moment, last_us=moment,
                                    samples=sample_rows(hits, [row]))

            anomalies += self.run_episodes(key, at, at + self.quiet_us, build, self._quiet_resolved,
                                           ref=int(hashes[first]))
        return anomalies

    def _quiet_resolved(self, key: str, state: KeyAlert) -> Anomaly:
        until = state.last_true_us
        return self.resolved(key, until - self.quiet_us, until, 0)

    def evaluate(self) -> list[Anomaly]:
        if self.aggregate:
            return super().evaluate()
        return self.close_episodes(self._quiet_resolved)

    # aggregated per window ---------------------------------------------------------------
    def accumulate(self, matched: pa.Table, keys: Keys, rows: np.ndarray, times: np.ndarray,
                   windows: np.ndarray) -> None:
        values = numeric(matched, self.spec.field)[rows]
        hashes = keys.hashes[rows]
        for k in np.unique(windows).tolist():
            mine = windows == k
            self.values.setdefault(int(k), []).append((hashes[mine], values[mine]))

    def pending_windows(self) -> list[int]:
        return sorted(self.values)

    def close(self, window: int) -> list[WindowResult]:
        chunks = self.values.pop(window, [])
        if not chunks:
            return []
        hashes = np.concatenate([c[0] for c in chunks])
        values = np.concatenate([c[1] for c in chunks])
        groups, counts, result = aggregate_groups(self.aggregate, hashes, values)
        holds = (counts >= self.min_count) & self.compare(result, self.spec.threshold.value)
        out = []
        for key_hash, value, ok in zip(groups.tolist(), result.tolist(), holds.tolist()):
            first, last = self.span(window, int(key_hash))
            out.append(WindowResult(int(key_hash), float(value), bool(ok), first, last))
        return out

    def garbage_collect(self) -> None:
        if self.aggregate:
            super().garbage_collect()
            return
        watermark = self.watermark_us
        if watermark is None:
            return
        for key in [k for k, s in self.alerts.items() if not s.active and watermark - s.last_alert_us > self.quiet_us]:
            del self.alerts[key]

    def stats(self) -> dict[str, Any]:
        return Rule.stats(self) if not self.aggregate else super().stats()
