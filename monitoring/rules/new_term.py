"""``new_term``: a value never seen in a field (or fields) within the look-back, optionally per key.

Examples: a new ``error_code``; a new ``template`` among ERROR logs (``group_by: service`` makes it
new per service). Terms are remembered for ``lookback`` (default 7 days) after they were last seen.
During the first ``learn_for`` of event time (default 0) the rule learns its terms without alerting.
A new term fires at its first event; the episode resolves once the term has not been new again for
``realert`` (or ``window`` if longer). Terms are remembered per tenant: a term one tenant has used is
still new for another.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules.base import US, KeyAlert, Rule, sample_rows, timestamps_of
from logwarden.monitoring.rules.keys import KEY_SEPARATOR, key_column, with_tenant
from logwarden.monitoring.rules.registry import register_rule_class
from logwarden.monitoring.rules.spec import RuleSpec
from logwarden.monitoring.rules.spec_schema import DURATION

DEFAULT_LOOKBACK = 7 * 86400.0


@register_rule_class
class NewTermRule(Rule):
    """Fires on the first event carrying a term not seen within the look-back."""

    kind = "new_term"
    PROPERTIES = {"field": {"oneOf": [{"type": "string", "minLength": 1},
                                      {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
                  "lookback": DURATION, "learn_for": DURATION, "window": DURATION,
                  "threshold": {"type": "object"}}
    REQUIRED = ("field",)

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        raw = spec.option("field", spec.field)
        self.fields: tuple[str, ...] = (raw,) if isinstance(raw, str) else tuple(raw)
        self.lookback_us = int(spec.option("lookback", DEFAULT_LOOKBACK) * US)
        self.learn_us = int(spec.option("learn_for", 0.0) * US)
        self.quiet_us = max(self.realert_us, self.window_us)
        self.started_us: int | None = None
        self.last_seen: dict[str, int] = {}

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        terms = key_column(matched, self.fields)
        if self.spec.group_by:
            terms = pc.binary_join_element_wise(key_column(matched, self.spec.group_by), terms, KEY_SEPARATOR)
        terms = with_tenant(matched, terms)  # a term is new per tenant: tenant + TENANT_SEPARATOR + term
        if isinstance(terms, pa.ChunkedArray):
            terms = terms.combine_chunks()
        times = timestamps_of(matched)
        if self.started_us is None:
            self.started_us = int(times.min())
        encoded = pc.dictionary_encode(terms)
        texts = encoded.dictionary.to_pylist()
        valid = np.asarray(pc.is_valid(encoded.indices).to_numpy(zero_copy_only=False), dtype=bool)
        rows = np.flatnonzero(valid)
        if len(rows) == 0:
            return []
        index = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))[rows].astype(np.int64)
        order = np.lexsort((times[rows], index))
        index, rows = index[order], rows[order]
        starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
        ends = np.concatenate((starts[1:], [len(index)])) - 1
        anomalies: list[Anomaly] = []
        learning_until = self.started_us + self.learn_us
        for start, end in sorted(zip(starts.tolist(), ends.tolist()), key=lambda se: (times[rows[se[0]]], se[0])):
            term = texts[index[start]]
            first_at, last_at = int(times[rows[start]]), int(times[rows[end]])
            seen = self.last_seen.get(term)
            is_new = seen is None or first_at - seen > self.lookback_us
            self.last_seen[term] = max(last_at, seen or last_at)
            if not is_new or first_at < learning_until:
                continue
            row = int(rows[start])
            anomalies += self.open_episode(
                term, first_at, first_at + self.quiet_us,
                lambda term=term, first_at=first_at, last_at=last_at, row=row, n=end - start + 1: self.anomaly(
                    term, first_at, first_at, n, first_us=first_at, last_us=last_at,
                    samples=sample_rows(matched, [row])),
                self._resolved)
        return anomalies

    def _resolved(self, key: str, state: KeyAlert) -> Anomaly:
        return self.resolved(key, state.start_us, state.last_true_us, 0)

    def evaluate(self) -> list[Anomaly]:
        return self.close_episodes(self._resolved)

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        if watermark is None:
            return
        horizon = watermark - self.lookback_us
        for term in [t for t, at in self.last_seen.items() if at < horizon]:
            del self.last_seen[term]
        for key in [k for k, s in self.alerts.items() if not s.active and watermark - s.last_alert_us > self.quiet_us]:
            del self.alerts[key]

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "terms": len(self.last_seen)}
