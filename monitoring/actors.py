"""Detectors on Ray: one ``DetectorActor`` per rule, fed every batch as one shared Arrow object."""
from __future__ import annotations

import logging
import threading

import pyarrow as pa
import ray

from monitoring.anomaly import Anomaly
from monitoring.engine import DetectorSet
from monitoring.rules import RulesFile, RuleSpec

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1)
class DetectorActor:
    """One rule on Ray. Returns anomalies as plain dicts."""

    def __init__(self, spec: RuleSpec) -> None:
        self.detectors = DetectorSet([spec])

    def process(self, batch_id: str, records: pa.Table) -> list[dict]:
        return [a.to_dict() for a in self.detectors.process(batch_id, records)]

    def advance(self, event_time_us: int) -> list[dict]:
        return [a.to_dict() for a in self.detectors.advance(event_time_us)]

    def stats(self) -> dict:
        return self.detectors.stats()


class DetectorPool:
    """The running detectors of a rules file, one Ray actor per enabled rule; thread-safe."""

    def __init__(self, rules: RulesFile) -> None:
        self._lock = threading.Lock()
        self._actors: dict[str, tuple[str, ray.actor.ActorHandle]] = {}
        self.reload(rules)

    def reload(self, rules: RulesFile) -> dict[str, list[str]]:
        """Start, replace or stop actors so they match ``rules``; unchanged rules keep their state."""
        wanted = rules.by_name()
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "kept": []}
        with self._lock:
            for name in list(self._actors):
                if name not in wanted:
                    ray.kill(self._actors.pop(name)[1])
                    changes["removed"].append(name)
            for name, spec in wanted.items():
                current = self._actors.get(name)
                if current and current[0] == spec.fingerprint:
                    changes["kept"].append(name)
                    continue
                if current:
                    ray.kill(current[1])
                changes["changed" if current else "added"].append(name)
                self._actors[name] = (spec.fingerprint, DetectorActor.remote(spec))
        self.rules = rules
        return changes

    def process(self, batch_id: str, records: pa.Table) -> list[Anomaly]:
        """Fan a batch out to every rule; the anomalies, rule by rule."""
        with self._lock:
            actors = [actor for _, actor in self._actors.values()]
            ref = ray.put(records)
            results = ray.get([actor.process.remote(batch_id, ref) for actor in actors])
        return [Anomaly.from_dict(d) for result in results for d in result]

    def advance(self, event_time_us: int) -> list[Anomaly]:
        """Move every rule's event time forward (idle sources)."""
        with self._lock:
            results = ray.get([actor.advance.remote(event_time_us) for _, actor in self._actors.values()])
        return [Anomaly.from_dict(d) for result in results for d in result]

    def rule_names(self) -> list[str]:
        """The rules that have an actor."""
        return sorted(self._actors)

    def shutdown(self) -> None:
        """Stop every actor."""
        with self._lock:
            for _, actor in self._actors.values():
                ray.kill(actor)
            self._actors.clear()
