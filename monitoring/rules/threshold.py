"""``threshold``: one event whose field is above or below a value (e.g. duration_ms > 5000), per key."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from monitoring.anomaly import Anomaly
from monitoring.rules.base import Rule, micros_of, sample_lines

_COMPARE = {">": pc.greater, ">=": pc.greater_equal, "<": pc.less, "<=": pc.less_equal,
            "==": pc.equal, "!=": pc.not_equal}


class ThresholdRule(Rule):
    """Fires on each matching event whose field crosses the threshold, throttled per key by ``realert``;
    resolves once no such event has come for ``realert`` (or ``window``, if longer) of event time."""

    kind = "threshold"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.last_match: dict[str, int] = {}
        self.quiet_us = max(self.realert_us, self.window_us)

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        name = self.spec.field
        if name not in matched.column_names:
            return []
        crossing = pc.fill_null(_COMPARE[self.spec.threshold.op](matched[name], self.spec.threshold.value), False)
        hits = matched.filter(crossing)
        anomalies = []
        for key, at, value, line in zip(self.keys_of(hits), micros_of(hits), hits[name].to_pylist(),
                                        sample_lines(hits)):
            if key is None:
                continue
            self.last_match[key] = max(at, self.last_match.get(key, at))
            anomaly = self.fire(key, at, lambda: self.anomaly(key, at, at, value, first_us=at, last_us=at,
                                                               samples=[line]))
            if anomaly:
                anomalies.append(anomaly)
        return anomalies

    def evaluate(self) -> list[Anomaly]:
        watermark = self.watermark_us
        anomalies = []
        for key, at in list(self.last_match.items()):
            if watermark - at >= self.quiet_us:
                anomaly = self.resolve(key, lambda: self.resolved(key, at, watermark, 0))
                if anomaly:
                    anomalies.append(anomaly)
        return anomalies

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        for key in [k for k, at in self.last_match.items() if watermark - at >= self.quiet_us]:
            state = self.alerts.get(key)
            if not (state and state.active):
                del self.last_match[key]
                self.alerts.pop(key, None)
