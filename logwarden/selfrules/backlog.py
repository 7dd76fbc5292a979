"""``spool_backlog`` (HIGH): the spool's backlog grew for ``backlog_for``.

It fires when the spool holds at least ``backlog_min_batches``, its oldest batch has waited
``backlog_for``, and it holds no fewer batches than ``backlog_for`` ago: processing has not kept up for
that long (so it needs ``backlog_for`` of history: not in the first minutes of a run). Once firing it holds until the backlog is under the minimum or its oldest batch is younger
than ``backlog_for`` (a backlog that only stops growing is still one).
"""
from __future__ import annotations

from collections import deque

from logwarden.monitoring.self_rules import SPOOL_BACKLOG
from logwarden.selfrules.base import Finding, SelfRule, SelfState

KEY = "spool"


class SpoolBacklog(SelfRule):
    """Fires when the spool's backlog has grown for ``hold`` seconds."""

    name = SPOOL_BACKLOG
    severity = "HIGH"
    action = ("Look at `logwarden_processing_batch_seconds` and the Dask dashboard: add Dask workers "
              "(or `--adaptive`), or find the batches that fail (`logwarden spool failed list`).")

    def __init__(self, hold: float, min_batches: int) -> None:
        self.hold = hold
        self.min_batches = min_batches
        self._samples: deque[tuple[float, int]] = deque()

    def _depth_then(self, now: float, depth: int) -> int | None:
        """The depth ``hold`` seconds ago; None while the samples do not reach back that far."""
        self._samples.append((now, depth))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.hold:
            self._samples.popleft()
        first_at, first = self._samples[0]
        return first if first_at <= now - self.hold else None

    def findings(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """The spool key while its backlog is large, old and not shrinking."""
        depth, age = state.spool_depth, state.spool_oldest_age
        then = self._depth_then(state.now, depth)
        backlog = depth >= self.min_batches and age >= self.hold
        if not backlog or (KEY not in firing and (then is None or depth < then)):
            return {}
        return {KEY: Finding(state.now - age, depth, f">= {self.min_batches} batches for {self.hold:.0f}s",
                             f"the spool holds {depth} batches, the oldest waiting {age:.0f}s "
                             f"({then if then is not None else '?'} batches {self.hold:.0f}s ago): processing "
                             "does not keep up",
                             (f"spool depth: {depth}", f"oldest batch: {age:.0f}s"))}
