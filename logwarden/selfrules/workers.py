"""``dask_worker_lost`` and ``ray_actor_lost`` (HIGH): compute lost and not replaced for ``worker_lost_for``.

Dask: fewer workers than expected (the number at start; 1 when the local cluster scales adaptively).
A local cluster's nanny restarts a killed worker within seconds, which fires nothing. Ray: a detector
shard whose actor failed and has not answered since (Ray restarts dead actors; one that stays away
was not replaced, e.g. its node is gone).
"""
from __future__ import annotations

from logwarden.monitoring.self_rules import DASK_WORKER_LOST, RAY_ACTOR_LOST
from logwarden.selfrules.base import Finding, Held, SelfRule, SelfState, iso

DASK_KEY = "dask"


class DaskWorkerLost(SelfRule):
    """Fires while the Dask cluster has fewer workers than expected, for ``hold`` seconds."""

    name = DASK_WORKER_LOST
    severity = "HIGH"
    action = ("Look at the Dask dashboard and the workers' logs; start a worker again "
              "(`environment/start-dask-worker.sh`). Batches queue in the spool meanwhile.")

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self._held = Held()

    def findings(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """The Dask key while workers are missing for ``hold`` seconds."""
        workers, expected = state.dask_workers, state.dask_workers_expected
        if workers is None or expected is None:
            return {} if DASK_KEY not in firing else self._keep(state, firing)
        since = self._held.since(DASK_KEY, workers < expected, state.now)
        if since is None or state.now - since < self.hold:
            return {}
        return {DASK_KEY: Finding(since, workers, f">= {expected} workers",
                                  f"the Dask cluster has {workers} of {expected} workers since {iso(since)}",
                                  (f"workers: {workers}", f"expected: {expected}"))}

    def _keep(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """While the scheduler cannot be asked, a firing alert stays (nothing says the workers are back)."""
        return {DASK_KEY: Finding(state.now, 0, "the scheduler did not answer",
                                  "the Dask scheduler did not answer; workers unknown")}


class RayActorLost(SelfRule):
    """Fires for each detector shard unavailable for ``hold`` seconds."""

    name = RAY_ACTOR_LOST
    severity = "HIGH"
    action = ("Look at the Ray dashboard (actors, nodes); the rule's detections wait meanwhile. Restarting "
              "`logwarden up` starts the actor again from its checkpoint.")

    def __init__(self, hold: float) -> None:
        self.hold = hold

    def findings(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """One key per detector shard (``rule/shard``) whose actor is away for ``hold`` seconds."""
        return {shard: Finding(since, state.now - since, f"< {self.hold:.0f}s unavailable",
                               f"detector actor {shard} failed at {iso(since)} and has not answered since",
                               (f"actor: {shard}",))
                for shard, since in sorted(state.actors_unavailable.items()) if state.now - since >= self.hold}
