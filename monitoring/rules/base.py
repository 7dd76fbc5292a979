"""What every rule kind shares: event time, keys, filtering, alert throttling and resolution.

A rule follows ElastAlert2's shape: ``add_data`` takes a batch of records (an Arrow
table) and returns the anomalies it causes; ``advance`` moves event time forward without
data (a quiet key still has to fire); ``garbage_collect`` drops state no window needs.
"""
from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from monitoring.anomaly import FIRING, RESOLVED, Anomaly, iso_us
from monitoring.rules.filters import compile_filter
from monitoring.rules.spec import RuleSpec

US = 1_000_000
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
ALL_KEYS = "*"


@dataclass
class KeyAlert:
    """Alert state of one key: whether it fires, when it last alerted and when its condition last held
    (event time, µs). It resolves only once event time is past the last moment the condition held."""

    active: bool = False
    last_alert_us: int = 0
    last_true_us: int = 0


class Rule(ABC):
    """Base of the rule kinds."""

    kind = ""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.matches = compile_filter(spec.filter)
        self.window_us = int(spec.window * US)
        self.lateness_us = int(spec.allowed_lateness * US)
        self.realert_us = int(spec.realert * US)
        self.condition = OPERATORS[spec.threshold.op]
        self.max_event_us: int | None = None
        self.late_events = 0
        self.alerts: dict[str, KeyAlert] = {}

    # event time -------------------------------------------------------------------------
    @property
    def watermark_us(self) -> int | None:
        """Event time up to which the rule considers its data complete."""
        return None if self.max_event_us is None else self.max_event_us - self.lateness_us

    def _observe(self, timestamps: pa.ChunkedArray) -> None:
        if len(timestamps) == 0:
            return
        micros = pc.cast(timestamps, pa.int64())
        watermark = self.watermark_us
        if watermark is not None:
            self.late_events += pc.sum(pc.cast(pc.less(micros, watermark), pa.int64())).as_py() or 0
        newest = pc.max(micros).as_py()
        if newest is not None and (self.max_event_us is None or newest > self.max_event_us):
            self.max_event_us = newest

    # the ElastAlert2 surface ------------------------------------------------------------
    def add_data(self, table: pa.Table) -> list[Anomaly]:
        """Take one batch of records; return the anomalies (firing and resolved) it causes."""
        if table.num_rows == 0:
            return []
        matched = table.filter(self.matches(table))
        anomalies = self.on_matches(matched) if matched.num_rows else []
        self._observe(table["timestamp"])
        anomalies += self.evaluate()
        self.garbage_collect()
        return anomalies

    def advance(self, event_time_us: int) -> list[Anomaly]:
        """Move event time to ``event_time_us`` with no new data (idle sources)."""
        if self.max_event_us is None or event_time_us <= self.max_event_us:
            return []
        self.max_event_us = event_time_us
        anomalies = self.evaluate()
        self.garbage_collect()
        return anomalies

    @abstractmethod
    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        """React to the records that passed the filter."""

    @abstractmethod
    def evaluate(self) -> list[Anomaly]:
        """Check conditions that depend on event time passing (resolution, silence)."""

    @abstractmethod
    def garbage_collect(self) -> None:
        """Drop state that no window can use any more."""

    # alerts ----------------------------------------------------------------------------
    def fire(self, key: str, at_us: int, build: Callable[[], Anomaly]) -> Anomaly | None:
        """An anomaly for ``key`` unless it is already firing and ``realert`` has not passed."""
        state = self.alerts.setdefault(key, KeyAlert())
        state.last_true_us = max(state.last_true_us, at_us)
        if state.active and at_us - state.last_alert_us < self.realert_us:
            return None
        state.active, state.last_alert_us = True, at_us
        return build()

    def resolve(self, key: str, build: Callable[[], Anomaly]) -> Anomaly | None:
        """A resolved event for ``key`` if it was firing and event time is past its condition's last hold."""
        state = self.alerts.get(key)
        if state is None or not state.active or self.watermark_us <= state.last_true_us:
            return None
        state.active = False
        return build()

    def anomaly(self, key: str, start_us: int, end_us: int, value: float, status: str = FIRING,
                first_us: int | None = None, last_us: int | None = None, samples: list[str] | None = None) -> Anomaly:
        """An anomaly of this rule filled with its declaration's fields."""
        spec = self.spec
        return Anomaly(rule=spec.name, kind=spec.kind, severity=spec.severity, key=key,
                       window_start=iso_us(start_us), window_end=iso_us(end_us), value=float(value),
                       threshold=str(spec.threshold), status=status, first_event=iso_us(first_us),
                       last_event=iso_us(last_us), samples=list(samples or [])[-5:], action=spec.action,
                       description=spec.description, channels=list(spec.channels))

    def resolved(self, key: str, start_us: int, end_us: int, value: float) -> Anomaly:
        """The resolved counterpart of an anomaly for ``key``."""
        return self.anomaly(key, start_us, end_us, value, status=RESOLVED)

    # helpers for subclasses ------------------------------------------------------------
    def keys_of(self, table: pa.Table) -> list[str | None]:
        """The group-by key of every row (None where a key field is missing)."""
        if not self.spec.group_by:
            return [ALL_KEYS] * table.num_rows
        columns = [table[name].to_pylist() if name in table.column_names else [None] * table.num_rows
                   for name in self.spec.group_by]
        if len(columns) == 1:
            return [None if v is None else str(v) for v in columns[0]]
        return [None if any(v is None for v in values) else "|".join(map(str, values)) for values in zip(*columns)]


def sample_lines(table: pa.Table) -> list[str]:
    """One readable line per record: time, level, service, message."""
    micros = pc.cast(table["timestamp"], pa.int64()).to_pylist()
    return [f"{iso_us(t)} {level} {service}: {message}" for t, level, service, message in
            zip(micros, table["level"].to_pylist(), table["service"].to_pylist(), table["message"].to_pylist())]


def micros_of(table: pa.Table) -> list[int]:
    """Event times of the rows, epoch microseconds."""
    return pc.cast(table["timestamp"], pa.int64()).to_pylist()
