"""The stack's side of the ML rules: where their models and feedback live, and scheduled retraining."""
from __future__ import annotations

import logging
import time

from logwarden.common.paths import DataDir
from logwarden.common.periodic import PeriodicJob
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
