"""The self-rules of a stack, checked together: a key that starts to hold fires, one that stops resolves."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from logwarden.monitoring.anomaly import RESOLVED, Anomaly
from logwarden.monitoring.self_rules import (BATCH_QUARANTINED, CHANNEL_FAILING, DASK_WORKER_LOST, DISK_LOW,
                                              INGESTION_STOPPED, RAY_ACTOR_LOST, SPOOL_BACKLOG, SelfRulesConfig)
from logwarden.processing.quarantine import QuarantinedBatch
from logwarden.selfalerts import quarantine_anomaly
from logwarden.selfrules.backlog import SpoolBacklog
from logwarden.selfrules.base import Finding, SelfRule, SelfState
from logwarden.selfrules.channels import ChannelFailing
from logwarden.selfrules.disk import DiskLow
from logwarden.selfrules.ingestion import IngestionStopped
from logwarden.selfrules.workers import DaskWorkerLost, RayActorLost

log = logging.getLogger(__name__)


@dataclass
class _Open:
    """A firing self-alert: the finding it fired with (kept for its resolved event)."""

    finding: Finding


def build_rules(config: SelfRulesConfig) -> list[SelfRule]:
    """The periodic self-rules ``config`` turns on (``batch_quarantined`` is raised per batch instead)."""
    rules: dict[str, SelfRule] = {
        INGESTION_STOPPED: IngestionStopped(config.ingestion_stopped_after),
        SPOOL_BACKLOG: SpoolBacklog(config.backlog_for, config.backlog_min_batches),
        DISK_LOW: DiskLow(config.disk_low_water),
        DASK_WORKER_LOST: DaskWorkerLost(config.worker_lost_for),
        RAY_ACTOR_LOST: RayActorLost(config.worker_lost_for),
        CHANNEL_FAILING: ChannelFailing(config.channel_failing_for),
    }
    return [rule for name, rule in rules.items() if config.active(name)]


class SelfRules:
    """Checks the self-rules against a :class:`SelfState` and answers the anomalies to dispatch."""

    def __init__(self, config: SelfRulesConfig, rules: list[SelfRule] | None = None) -> None:
        self.config = config
        self.rules = build_rules(config) if rules is None else rules
        self._open: dict[tuple[str, str], _Open] = {}
        self._lock = threading.Lock()  # checks run in the stack's tick, reads in the metrics' scrape

    def check(self, state: SelfState) -> list[Anomaly]:
        """Firing anomalies for keys that started holding, resolved ones for keys that stopped."""
        with self._lock:
            return [anomaly for rule in self.rules for anomaly in self._check(rule, state)]

    def _check(self, rule: SelfRule, state: SelfState) -> list[Anomaly]:
        out: list[Anomaly] = []
        firing = frozenset(key for name, key in self._open if name == rule.name)
        found = rule.findings(state, firing)
        for key, finding in found.items():
            if (rule.name, key) not in self._open:
                self._open[(rule.name, key)] = _Open(finding)
                out.append(rule.anomaly(key, finding, state.now))
                log.warning("self-alert %s firing for %s: %s", rule.name, key, finding.description)
        for key in firing - set(found):
            opened = self._open.pop((rule.name, key))
            out.append(rule.anomaly(key, opened.finding, state.now, RESOLVED))
            log.warning("self-alert %s resolved for %s", rule.name, key)
        return out

    def firing(self) -> list[tuple[str, str]]:
        """The (rule, key) pairs firing now."""
        with self._lock:
            return sorted(self._open)

    def quarantined(self, entry: QuarantinedBatch) -> list[Anomaly]:
        """The ``batch_quarantined`` anomaly of a batch quarantined (or, retried, gone through); none
        when that self-rule is off."""
        return [quarantine_anomaly(entry)] if self.config.active(BATCH_QUARANTINED) else []
