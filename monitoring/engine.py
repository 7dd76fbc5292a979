"""The in-process detector engine: rules evaluated over record batches.

Each Ray actor runs one (see ``monitoring.actors``); ``logwarden rules test`` runs one offline
(``monitoring.replay``). The anomalies of a batch come out in event-time order (window end, rule,
key, tenant), so the same data gives the same alerts in the same order however it is batched or sharded.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any, Iterable

import pyarrow as pa

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules import Rule, RuleSpec, build_rule

log = logging.getLogger(__name__)
SEEN_BATCHES = 100_000


def anomaly_order(anomaly: Anomaly) -> tuple:
    """Sort key of anomalies: window end (event time), then rule, key, tenant and status."""
    return (datetime.fromisoformat(anomaly.window_end.replace("Z", "+00:00")), anomaly.rule, anomaly.key,
            anomaly.tenant, anomaly.status)


class DetectorSet:
    """Rules over batches, skipping a batch id already seen (a re-delivered batch raises nothing twice)."""

    def __init__(self, specs: Iterable[RuleSpec]) -> None:
        self.rules: dict[str, Rule] = {spec.name: build_rule(spec) for spec in specs}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.last_batch_id: str | None = None

    def seen(self, batch_id: str) -> bool:
        """Whether ``batch_id`` was processed already."""
        return batch_id in self._seen

    def process(self, batch_id: str, records: pa.Table, event_time_us: int | None = None,
                cache: dict[Any, Any] | None = None) -> list[Anomaly]:
        """The anomalies one batch causes. ``event_time_us`` (the newest event time of the whole batch,
        when ``records`` is only part of it, as on a shard) moves event time on after the rows. ``cache``
        shares computed filters with other sets given the same batch (one per batch, never kept)."""
        if batch_id in self._seen:
            return []
        self._seen[batch_id] = None
        self.last_batch_id = batch_id
        if len(self._seen) > SEEN_BATCHES:
            self._seen.popitem(last=False)
        cache = {} if cache is None else cache
        anomalies = [a for rule in self.rules.values() for a in rule.add_data(records, cache)]
        if event_time_us is not None:
            anomalies += [a for rule in self.rules.values() for a in rule.advance(event_time_us)]
        return sorted(anomalies, key=anomaly_order)

    def advance(self, event_time_us: int) -> list[Anomaly]:
        """Move event time forward with no data."""
        return sorted((a for rule in self.rules.values() for a in rule.advance(event_time_us)), key=anomaly_order)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Event time, late-event counts and state size per rule."""
        out = {}
        for name, rule in self.rules.items():
            stats = rule.stats() if hasattr(rule, "stats") else {}
            out[name] = {"max_event_us": rule.max_event_us, "late_events": rule.late_events, **stats}
        return out

    # checkpoints ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state (rules and seen batch ids), picklable."""
        return {"rules": self.rules, "seen": list(self._seen), "last_batch_id": self.last_batch_id}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Take the state of a ``snapshot`` (of a DetectorSet of the same rules)."""
        self.rules = snapshot["rules"]
        self._seen = OrderedDict((batch_id, None) for batch_id in snapshot["seen"])
        self.last_batch_id = snapshot["last_batch_id"]
