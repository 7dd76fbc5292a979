"""``sequence``: steps in order for the same key within a window (many failed logins, then a success).

Each step has a ``filter`` and a ``min_count`` (default 1). It fires at an event of the last step
when, within ``(t - window, t]``, the earlier steps happened in order: ``min_count`` events of step 1,
then (after the last of those) ``min_count`` events of step 2, and so on. The value is the number of
first-step events in the window. The episode resolves once no new completion has come for
``realert`` (or ``window``, if longer).

Out of order: a batch with events older than ones already held is inserted in time order and every
last-step event of its keys from its earliest event on is checked again, so a sequence completed by
earlier steps arriving late still fires (stamped at its last-step event). Events of the same moment
count towards each other there, whatever their arrival order.
"""
from __future__ import annotations

import bisect
from collections import deque
from typing import Any

import numpy as np
import pyarrow as pa

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules.base import KeyAlert, Rule, sample_rows, timestamps_of
from logwarden.monitoring.rules.filters import compile_filter
from logwarden.monitoring.rules.registry import register_rule_class
from logwarden.monitoring.rules.spec import RuleSpec
from logwarden.monitoring.rules.spec_schema import DURATION

STEP = {"type": "object", "required": ["filter"], "additionalProperties": False,
        "properties": {"filter": {"$ref": "#/$defs/filter"}, "min_count": {"type": "integer", "minimum": 1},
                       "name": {"type": "string"}}}


@register_rule_class
class SequenceRule(Rule):
    """Fires when the steps happen in order for one key within the window."""

    kind = "sequence"
    PROPERTIES = {"window": DURATION, "steps": {"type": "array", "items": STEP, "minItems": 2},
                  "threshold": {"type": "object"}}
    REQUIRED = ("window", "steps")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.steps = [(compile_filter(step["filter"]), int(step.get("min_count", 1))) for step in spec.option("steps")]
        self.quiet_us = max(self.realert_us, self.window_us)
        self.times: dict[str, list[deque[int]]] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.steps = [(compile_filter(step["filter"]), int(step.get("min_count", 1)))
                      for step in self.spec.option("steps")]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("steps", None)
        return state

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        masks = np.stack([np.asarray(f(matched).to_numpy(zero_copy_only=False), dtype=bool) for f, _ in self.steps])
        involved = np.flatnonzero(masks.any(axis=0))
        if len(involved) == 0:
            return []
        keys = self.keys(matched)
        times = timestamps_of(matched)
        involved = involved[keys.valid[involved]]
        involved = involved[np.argsort(times[involved], kind="stable")]
        if len(involved) and self.max_event_us is not None and int(times[involved[0]]) < self.max_event_us:
            return self._out_of_order(matched, masks, keys, times, involved)
        last = len(self.steps) - 1
        anomalies: list[Anomaly] = []
        for row in involved.tolist():
            key = keys.text(row)
            at = int(times[row])
            lists = self.times.setdefault(key, [deque() for _ in self.steps])
            completes = self._complete(lists, at) if masks[last, row] else None
            for step in range(len(self.steps)):
                if masks[step, row]:
                    lists[step].append(at)
            if completes is None:
                continue
            first_us, value = completes
            anomalies += self.open_episode(
                key, at, at + self.quiet_us,
                lambda key=key, at=at, first_us=first_us, value=value, row=row: self.anomaly(
                    key, at - self.window_us, at, value, first_us=first_us, last_us=at,
                    samples=sample_rows(matched, [row])),
                self._resolved)
        return anomalies

    def _out_of_order(self, matched: pa.Table, masks: np.ndarray, keys: Any, times: np.ndarray,
                      involved: np.ndarray) -> list[Anomaly]:
        """A batch reaching back before events already held: insert its events where they belong, then
        check, in event time order, every last-step event of its keys from its earliest event on (held
        ones included: earlier steps arriving now may complete them)."""
        last = len(self.steps) - 1
        earliest: dict[str, int] = {}
        rows_at: dict[tuple[str, int], int] = {}
        for row in involved.tolist():
            key, at = keys.text(row), int(times[row])
            earliest.setdefault(key, at)
            lists = self.times.setdefault(key, [deque() for _ in self.steps])
            for step in np.flatnonzero(masks[:, row]).tolist():
                lists[step].insert(bisect.bisect_right(lists[step], at), at)
            if masks[last, row]:
                rows_at.setdefault((key, at), row)
        watermark = self.watermark_us
        horizon = -1 if watermark is None else watermark - self.window_us  # windows no longer whole
        moments = sorted((at, key) for key, since in earliest.items() for at in self.times[key][last]
                         if at >= since and at > horizon)
        anomalies: list[Anomaly] = []
        for at, key in moments:
            completes = self._complete(self.times[key], at)
            if completes is None:
                continue
            first_us, value = completes
            row = rows_at.get((key, at))
            anomalies += self.open_episode(
                key, at, at + self.quiet_us,
                lambda key=key, at=at, first_us=first_us, value=value, row=row: self.anomaly(
                    key, at - self.window_us, at, value, first_us=first_us, last_us=at,
                    samples=sample_rows(matched, [] if row is None else [row])),
                self._resolved)
        return anomalies

    def _complete(self, lists: list[deque[int]], at: int) -> tuple[int, int] | None:
        """(first event of the chain, first-step events in the window) if the earlier steps precede ``at``."""
        floor = at - self.window_us
        after = floor
        first_us = None
        for step, (_, needed) in enumerate(self.steps[:-1]):
            low = after if step else floor
            candidates = [t for t in lists[step] if low < t <= at]
            if len(candidates) < needed:
                return None
            if step == 0:
                first_us = candidates[0]
            after = candidates[needed - 1]
        step0 = sum(1 for t in lists[0] if floor < t <= at)
        return int(first_us), step0

    def _resolved(self, key: str, state: KeyAlert) -> Anomaly:
        return self.resolved(key, state.start_us, state.last_true_us, 0)

    def evaluate(self) -> list[Anomaly]:
        return self.close_episodes(self._resolved)

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        if watermark is None:
            return
        horizon = watermark - self.window_us
        for key in list(self.times):
            lists = self.times[key]
            for times in lists:
                while times and times[0] <= horizon:
                    times.popleft()
            if not any(lists):
                del self.times[key]
        for key in [k for k, s in self.alerts.items() if not s.active and watermark - s.last_alert_us > self.quiet_us]:
            del self.alerts[key]

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "keys": len(self.times)}
