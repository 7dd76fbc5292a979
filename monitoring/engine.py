"""The in-process detector engine: rules evaluated over record batches.

Each Ray actor runs one (see ``monitoring.actors``); ``logwarden rules test`` runs one offline.
"""
from __future__ import annotations

from collections import OrderedDict

import pyarrow as pa

from monitoring.anomaly import Anomaly
from monitoring.rules import Rule, RuleSpec, build_rule

SEEN_BATCHES = 100_000


class DetectorSet:
    """Rules over batches, skipping a batch id already seen (a re-delivered batch raises nothing twice)."""

    def __init__(self, specs: list[RuleSpec]) -> None:
        self.rules: dict[str, Rule] = {spec.name: build_rule(spec) for spec in specs}
        self._seen: OrderedDict[str, None] = OrderedDict()

    def process(self, batch_id: str, records: pa.Table) -> list[Anomaly]:
        """The anomalies one batch causes."""
        if batch_id in self._seen:
            return []
        self._seen[batch_id] = None
        if len(self._seen) > SEEN_BATCHES:
            self._seen.popitem(last=False)
        return [a for rule in self.rules.values() for a in rule.add_data(records)]

    def advance(self, event_time_us: int) -> list[Anomaly]:
        """Move event time forward with no data."""
        return [a for rule in self.rules.values() for a in rule.advance(event_time_us)]

    def stats(self) -> dict:
        """Event time and late-event counts per rule."""
        return {name: {"max_event_us": r.max_event_us, "late_events": r.late_events}
                for name, r in self.rules.items()}
