"""What every rule kind shares: event time, keys, filtering, alert throttling and resolution.

A rule follows ElastAlert2's shape: ``add_data`` takes a batch of records (an Arrow table) and
returns the anomalies it causes; ``advance`` moves event time forward without data (a quiet key
still has to fire); ``garbage_collect`` drops state no window needs.

Event time: the watermark is the newest event time seen minus ``allowed_lateness``. An event
older than the watermark is late: it is counted (``late_events``) and still evaluated; one older
than what the rule's windows still hold is also counted in ``too_late_events``.

Keys: a rule's key is always (tenant, group-by key) — records of different tenants never count
together — held as one text (``keys.tenant_key_column``); every dict below keyed by "key" uses it.

Alert life cycle, per key: an *episode* starts when the condition starts to hold and lasts until
the moment it stops holding (``until``). The first alert of an episode fires at once; further
alerts of the same episode are throttled by ``realert``. Once event time (the watermark) is past
``until``, a resolved event stamped at ``until`` follows. Alerts are stamped with the event time
at which the condition started to hold (not with the time the batch arrived), so the same data
gives the same alerts however it is cut into batches.

Out of order (several collectors, late shippers): a batch may hold events older than ones already
seen. A condition those events make hold at an earlier moment is still found, and alerted stamped at
that moment; when it is the start of an episode that already alerted, ``realert`` counts from it
(``_late_moment``); so does a repeat alert due earlier than the one sent. As long as every event is
within ``allowed_lateness`` of the newest seen when it arrives and ``realert`` is at least the
lateness, every firing alert of event order is sent, stamped alike, and every key's last resolved
event is the one of event order (tests/monitoring/test_out_of_order.py). An alert already sent is
never withdrawn, so where alerts went out before earlier events arrived the order shows, only inside
an episode of event order: an extra firing alert (or one with the count known then), or an episode
resolved and fired again across a gap those events later filled. ``flatline`` decides when the
watermark reaches a silence, see its module. A resolved episode is final: a moment at or before its
end raises nothing (the kinds resolved by the watermark see such moments only from events beyond the
lateness; they are counted in ``late_events``).
"""
from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.monitoring.anomaly import FIRING, RESOLVED, Anomaly, iso_us
from logwarden.monitoring.rules.filters import compile_filter
from logwarden.monitoring.rules.keys import ALL_KEYS, Keys, keys_of, split_key
from logwarden.monitoring.rules.spec import RuleSpec

US = 1_000_000
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
NUMPY_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal, "==": np.equal, "!=": np.not_equal,
}
MAX_SAMPLES = 5
__all__ = ["ALL_KEYS", "KeyAlert", "MAX_SAMPLES", "OPERATORS", "Rule", "US", "micros_of", "sample_lines"]


@dataclass
class KeyAlert:
    """Alert state of one key: whether an episode is open, when it started, when it last alerted, and
    until when its condition holds as far as known (event time, µs)."""

    active: bool = False
    last_alert_us: int = 0
    last_true_us: int = 0
    start_us: int = 0
    ref: int = 0  # the key's hash, for kinds that keep state by hash
    previous_alert_us: int | None = None  # the open episode's alert before the last, if any


class Rule(ABC):
    """Base of the rule kinds."""

    kind: ClassVar[str] = ""
    PROPERTIES: ClassVar[dict[str, Any]] = {}
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.matches = compile_filter(spec.filter)
        self.window_us = int(spec.window * US)
        self.lateness_us = int(spec.allowed_lateness * US)
        self.realert_us = int(spec.realert * US)
        self.condition = OPERATORS[spec.threshold.op]
        self.max_event_us: int | None = None
        self.late_events = 0
        self.too_late_events = 0
        self.alerts: dict[str, KeyAlert] = {}

    # pickling (checkpoints): the compiled filter is a closure; rebuild it from the spec --------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("matches", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.matches = compile_filter(self.spec.filter)

    # event time -------------------------------------------------------------------------
    @property
    def watermark_us(self) -> int | None:
        """Event time up to which the rule considers its data complete."""
        return None if self.max_event_us is None else self.max_event_us - self.lateness_us

    def _observe(self, micros: np.ndarray) -> None:
        if len(micros) == 0:
            return
        watermark = self.watermark_us
        if watermark is not None:
            self.late_events += int(np.count_nonzero(micros < watermark))
        newest = int(micros.max())
        if self.max_event_us is None or newest > self.max_event_us:
            self.max_event_us = newest

    # the ElastAlert2 surface ------------------------------------------------------------
    def add_data(self, table: pa.Table, cache: dict | None = None) -> list[Anomaly]:
        """Take one batch of records; return the anomalies (firing and resolved) it causes.

        ``cache`` is shared by the rules evaluating the same batch (filter results, timestamps)."""
        if table.num_rows == 0:
            return []
        micros = timestamps_of(table, cache)
        mask = self.matches(table, cache)
        if pc.all(mask).as_py():
            matched = table
        else:
            matched = table.filter(mask)
        anomalies = self.on_matches(matched) if matched.num_rows else []
        self._observe(micros)
        anomalies += self.evaluate()
        self.garbage_collect()
        return anomalies

    def advance(self, event_time_us: int) -> list[Anomaly]:
        """Move event time to ``event_time_us`` with no new data (idle sources, other shards' data)."""
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
        """Check conditions that depend on event time passing (resolution, silence, closed windows)."""

    @abstractmethod
    def garbage_collect(self) -> None:
        """Drop state that no window can use any more."""

    def stats(self) -> dict[str, Any]:
        """Event time, late events and state size."""
        return {"max_event_us": self.max_event_us, "late_events": self.late_events,
                "too_late_events": self.too_late_events, "active_alerts": sum(a.active for a in self.alerts.values())}

    # alerts: the episode life cycle -------------------------------------------------------
    def open_episode(self, key: str, at_us: int, until_us: int, build: Callable[[], Anomaly],
                     resolved: Callable[[str, KeyAlert], Anomaly], ref: int = 0) -> list[Anomaly]:
        """The condition of ``key`` holds from ``at_us`` until ``until_us`` (as far as known now).

        Returns the resolved event of a previous episode that ended before ``at_us`` (if not yet sent),
        then the firing alert unless the open episode alerted less than ``realert`` ago."""
        out: list[Anomaly] = []
        state = self.alerts.get(key)
        if state is not None and (at_us < state.last_alert_us or (not state.active and at_us < state.last_true_us)):
            return self._late_moment(state, at_us, until_us, build)
        if state is not None and state.active and state.last_true_us < at_us:
            out.append(resolved(key, state))
            state.active = False
        if state is None:
            state = self.alerts[key] = KeyAlert(ref=ref)
        if state.active:
            state.last_true_us = max(state.last_true_us, until_us)
            if at_us - state.last_alert_us < self.realert_us:
                return out
            state.previous_alert_us = state.last_alert_us
        else:
            state.active, state.start_us, state.previous_alert_us = True, at_us, None
            state.last_true_us = until_us
        state.last_alert_us = at_us
        out.append(build())
        return out

    def _late_moment(self, state: KeyAlert, at_us: int, until_us: int, build: Callable[[], Anomaly]) -> list[Anomaly]:
        """A moment earlier than the key's last alert, found once out-of-order events arrived.

        Before the open episode's start: the episode started earlier than known, so its first alert
        is sent now, stamped at ``at_us``, and ``realert`` counts from it. Within the open episode: the
        episode may last longer, and when ``realert`` had passed at ``at_us`` since the alert before the
        last, the repeat alert is sent now, stamped at ``at_us``, and ``realert`` counts from it. Within
        or before a resolved episode: nothing, a resolved episode is final."""
        if not state.active:
            return []
        state.last_true_us = max(state.last_true_us, until_us)
        if at_us < state.start_us:
            state.start_us = state.last_alert_us = at_us
            state.previous_alert_us = None
            return [build()]
        previous = state.previous_alert_us
        if previous is None or at_us - previous < self.realert_us:
            return []
        state.last_alert_us = at_us
        return [build()]

    def run_episodes(self, key: str, at: np.ndarray, until: np.ndarray, build: Callable[[int], Anomaly],
                     resolved: Callable[[str, KeyAlert], Anomaly], ref: int = 0) -> list[Anomaly]:
        """``open_episode`` for each of a key's moments ``at`` (ascending, with their ``until``), visiting only
        those that can alert: the first, the first of each new episode, and the first after ``realert``."""
        anomalies: list[Anomaly] = []
        new_episode = np.flatnonzero(at[1:] > np.maximum.accumulate(until)[:-1]) + 1
        j = 0
        while j < len(at):
            anomalies += self.open_episode(key, int(at[j]), int(until[j]), lambda j=j: build(j), resolved, ref=ref)
            state = self.alerts[key]
            later = new_episode[np.searchsorted(new_episode, j, "right"):]
            k_episode = int(later[0]) if len(later) else len(at)
            k = min(k_episode, self._next_alerting(at, j, state))
            if k - 1 > j:
                self.extend_episode(key, int(until[j + 1:k].max()))
            j = k
        return anomalies

    def _next_alerting(self, at: np.ndarray, j: int, state: KeyAlert) -> int:
        """The first of the moments after ``at[j]`` that can alert: ``realert`` after the last alert, or,
        among moments earlier than it (found late), ``realert`` after the alert before the last."""
        late_until = int(np.searchsorted(at, state.last_alert_us, "left"))
        if j + 1 < late_until and state.active:
            previous = state.previous_alert_us
            if previous is not None:
                late_until = min(late_until, int(np.searchsorted(at, previous + self.realert_us, "left")))
            return max(j + 1, late_until)
        return max(j + 1, int(np.searchsorted(at, state.last_alert_us + self.realert_us, "left")))

    def extend_episode(self, key: str, until_us: int) -> None:
        """The open episode of ``key`` lasts at least until ``until_us``."""
        state = self.alerts.get(key)
        if state is not None and state.active:
            state.last_true_us = max(state.last_true_us, until_us)

    def close_episodes(self, resolved: Callable[[str, KeyAlert], Anomaly]) -> list[Anomaly]:
        """Resolved events for the open episodes whose condition stopped holding before the watermark."""
        watermark = self.watermark_us
        out = []
        for key in sorted(k for k, s in self.alerts.items() if s.active and s.last_true_us < watermark):
            state = self.alerts[key]
            state.active = False
            out.append(resolved(key, state))
        return out

    # the single-alert helpers (kept for kinds that decide per evaluation, e.g. ``ml``) ----------
    def fire(self, key: str, at_us: int, build: Callable[[], Anomaly]) -> Anomaly | None:
        """An anomaly for ``key`` unless it is already firing and ``realert`` has not passed."""
        state = self.alerts.setdefault(key, KeyAlert())
        state.last_true_us = max(state.last_true_us, at_us)
        if state.active and at_us - state.last_alert_us < self.realert_us:
            return None
        if not state.active:
            state.start_us = at_us
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
        """An anomaly of this rule filled with its declaration's fields. ``key`` is the state key text
        (``tenant + TENANT_SEPARATOR + key``): the anomaly gets the two apart."""
        spec = self.spec
        tenant, key = split_key(key)
        return Anomaly(rule=spec.name, kind=spec.kind, severity=spec.severity, key=key, tenant=tenant,
                       window_start=iso_us(start_us), window_end=iso_us(end_us), value=float(value),
                       threshold=str(spec.threshold), status=status, first_event=iso_us(first_us),
                       last_event=iso_us(last_us), samples=list(samples or [])[-MAX_SAMPLES:], action=spec.action,
                       description=spec.description, channels=list(spec.channels))

    def resolved(self, key: str, start_us: int, end_us: int, value: float) -> Anomaly:
        """The resolved counterpart of an anomaly for ``key``."""
        return self.anomaly(key, start_us, end_us, value, status=RESOLVED)

    # helpers for subclasses ------------------------------------------------------------
    def keys(self, table: pa.Table) -> Keys:
        """The (tenant, group-by key) of ``table``'s rows (hashes, validity, texts)."""
        return keys_of(table, self.spec.group_by)

    def keys_of(self, table: pa.Table) -> list[str | None]:
        """The (tenant, group-by key) text of every row (None where a key field is missing)."""
        keys = self.keys(table)
        return [keys.texts[i] if ok else None for i, ok in zip(keys.text_index.tolist(), keys.valid.tolist())]


def timestamps_of(table: pa.Table, cache: dict | None = None) -> np.ndarray:
    """Event times of the rows, epoch microseconds (int64 numpy)."""
    slot = (id(table), "__micros")
    if cache is not None and slot in cache:
        return cache[slot]
    column = table["timestamp"]
    micros = np.asarray(pc.cast(column, pa.int64()).to_numpy(), dtype=np.int64) if len(column) else \
        np.zeros(0, np.int64)
    if cache is not None:
        cache[slot] = micros
    return micros


def sample_lines(table: pa.Table) -> list[str]:
    """One readable line per record: time, level, service, message."""
    micros = pc.cast(table["timestamp"], pa.int64()).to_pylist()
    return [f"{iso_us(t)} {level} {service}: {message}" for t, level, service, message in
            zip(micros, table["level"].to_pylist(), table["service"].to_pylist(), table["message"].to_pylist())]


def sample_rows(table: pa.Table, rows: list[int] | np.ndarray) -> list[str]:
    """The sample lines of the given rows of ``table``."""
    if len(rows) == 0:
        return []
    return sample_lines(table.take(pa.array(np.asarray(rows, dtype=np.int64))))


def micros_of(table: pa.Table) -> list[int]:
    """Event times of the rows, epoch microseconds."""
    return pc.cast(table["timestamp"], pa.int64()).to_pylist()
