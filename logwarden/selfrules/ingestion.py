"""``ingestion_stopped`` (CRITICAL): no record came in for ``ingestion_stopped_after`` while sources are known.

Known sources: records came in earlier in this run, or the configuration names file sources. A single
silent service is a detector's matter (``service_down``); this rule says that *nothing* arrives, which
points at the collector, the network or the shippers rather than at one service.
"""
from __future__ import annotations

from logwarden.monitoring.self_rules import INGESTION_STOPPED
from logwarden.selfrules.base import Finding, SelfRule, SelfState, iso

KEY = "collector"


class IngestionStopped(SelfRule):
    """Fires when the newest record is older than ``after`` seconds and sources are known."""

    name = INGESTION_STOPPED
    severity = "CRITICAL"
    action = ("Check the collector (`/ready`, `data/run/collector.log`), free disk, and whether the shippers "
              "still reach it; `logwarden_collector_records_accepted_total` shows what still arrives.")

    def __init__(self, after: float) -> None:
        self.after = after

    def findings(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """The collector key while no record came in for ``after`` seconds."""
        last = state.last_ingest_at
        if not state.sources_known or last is None or state.now - last < self.after:
            return {}
        silent = state.now - last
        return {KEY: Finding(last, silent, f"< {self.after:.0f}s without records",
                             f"no record came in for {silent:.0f}s (last at {iso(last)}) although sources are known",
                             (f"last record in: {iso(last)}",))}
