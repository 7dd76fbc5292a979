"""The stack's side of the ML rules: where their models and feedback live, and scheduled retraining;
and the actionable model, retrained on Ray as operators' verdicts arrive."""
from __future__ import annotations

import logging
import time

from logwarden.common.paths import DataDir
from logwarden.common.periodic import PeriodicJob
from logwarden.monitoring.ml.actionable import MIN_VERDICTS, train_actionable_remote, trained_seq
from logwarden.monitoring.ml.registry import ModelRegistry
from logwarden.monitoring.ml.verdicts import VerdictStore
from logwarden.monitoring.rules import RulesFile

log = logging.getLogger(__name__)
ML_KIND = "ml"


def ml_rule_dicts(rules: RulesFile) -> list[dict]:
    """The declarations of the enabled ``kind: ml`` rules."""
    return [rule.source for rule in rules.rules if rule.kind == ML_KIND and rule.enabled]


def place_ml_rules(rules: RulesFile, paths: DataDir) -> RulesFile:
    """Tell every ML rule where the data dir is (model registry under the lake, feedback store)."""
    for source in ml_rule_dicts(rules):
        source.setdefault("data_dir", str(paths.root))
    return rules


class RetrainScheduler(PeriodicJob):
    """Checks every ``interval`` seconds which ML rules are due for retraining and trains them on Ray
    (a first check right away)."""

    def __init__(self, paths: DataDir, rules: RulesFile, interval: float = 300.0) -> None:
        super().__init__("ml-retrain", interval)
        self.paths = paths
        self.rules = rules
        self.launched = 0

    def run_once(self) -> None:
        specs = ml_rule_dicts(self.rules)
        if specs:
            self._retrain(specs)

    def _retrain(self, specs: list[dict]) -> None:
        import ray

        from logwarden.monitoring.ml import retrain_due

        started = time.monotonic()
        launched = retrain_due(specs, self.paths.lake, self.paths.root)
        for name, ref in launched.items():
            manifest = ray.get(ref)
            self.launched += 1
            log.info("retrained ML rule %s: %s (%.0fs)", name, manifest, time.monotonic() - started)


class VerdictTrainer(PeriodicJob):
    """Every ``interval`` seconds, retrains on Ray the actionable model of every tenant with verdicts newer
    than its latest model (``monitoring.ml.actionable``), once it has ``min_verdicts``; a tenant whose
    verdicts are all of one kind is tried again only when another verdict arrives."""

    def __init__(self, paths: DataDir, interval: float = 10.0, min_verdicts: int = MIN_VERDICTS) -> None:
        super().__init__("ml-verdicts", interval)
        self.paths = paths
        self.min_verdicts = min_verdicts
        self.store = VerdictStore.for_data_dir(paths.root)
        self.registry = ModelRegistry.for_lake(paths.lake)
        self._tried: dict[str, int] = {}  # tenant -> newest verdict seen by the last training
        self.trained = 0

    def due(self) -> dict[str, int]:
        """{tenant: newest verdict} of the tenants whose model is behind their verdicts."""
        due = {}
        for tenant in self.store.tenants():
            seq = self.store.last_seq(tenant)
            if (seq != self._tried.get(tenant) and seq > trained_seq(self.registry, tenant)
                    and self.store.count(tenant) >= self.min_verdicts):
                due[tenant] = seq
        return due

    def run_once(self) -> None:
        due = self.due()
        if due:
            self._train(due)

    def _train(self, due: dict[str, int]) -> None:
        import ray

        refs = {tenant: train_actionable_remote(self.paths.root, self.registry.root, tenant, self.min_verdicts)
                for tenant in due}
        for tenant, ref in refs.items():
            manifest = ray.get(ref)
            self._tried[tenant] = due[tenant]
            if manifest is not None:
                self.trained += 1
                log.info("actionable model of tenant %s: %s from %s verdicts", tenant, manifest["version"],
                         manifest["summary"]["verdicts"])
