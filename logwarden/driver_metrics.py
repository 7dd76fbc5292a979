"""The driver's metrics beyond the default registry: every layer ``logwarden up`` runs in its process.

One collector reads the stack's parts at scrape time (a part restarted or reconnected is read as it is
then): the lake and its compaction job (``storage.metrics``), the detector pool (``monitoring.metrics``),
alerting (``alerting.metrics``), and the stack's own gauges: free disk of the data dir, Dask workers,
self-alerts firing. Processing's counters and ``process_*`` are on the default registry.
"""
from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from logwarden.selfrules import SelfRules, StackProbe
from logwarden.selfrules.probe import RunningStack
from logwarden.storage.metrics import LakeCollector


class DriverCollector:
    """A prometheus-client collector over a running stack (``logwarden.stack.Stack``)."""

    def __init__(self, stack: RunningStack, probe: StackProbe, self_rules: SelfRules) -> None:
        self.stack = stack
        self.probe = probe
        self.self_rules = self_rules
        self.lake = LakeCollector(stack.paths.lake)

    def collect(self) -> Iterator[Metric]:
        """The metrics at scrape time."""
        stack = self.stack
        self.lake.compaction = stack.compaction
        yield from self.lake.collect()
        if stack.pool is not None:
            yield from stack.pool.metrics.collect()
        if stack.alerts is not None:
            yield from stack.alerts.metrics.collect()
        yield from self._own()

    def _own(self) -> Iterator[Metric]:
        free = self.probe.free_disk_bytes()
        if free is not None:
            yield GaugeMetricFamily("logwarden_data_dir_free_bytes",
                                    "Free bytes (for an unprivileged user) on the data dir's file system", value=free)
        workers, expected = self.probe.dask_workers()
        if workers is not None:
            yield GaugeMetricFamily("logwarden_dask_workers", "Workers of the Dask cluster", value=workers)
        if expected is not None:
            yield GaugeMetricFamily("logwarden_dask_workers_expected",
                                    "Workers the dask_worker_lost self-rule expects", value=expected)
        firing = GaugeMetricFamily("logwarden_self_alerts_firing", "Self-alerts firing now, per self-rule",
                                   labels=["rule"])
        counts: dict[str, int] = {rule.name: 0 for rule in self.self_rules.rules}
        for rule, _ in self.self_rules.firing():
            counts[rule] = counts.get(rule, 0) + 1
        for rule in sorted(counts):
            firing.add_metric([rule], counts[rule])
        yield firing

    def describe(self) -> list[Metric]:
        """Nothing up front (the values are read at scrape time)."""
        return []


def driver_registry(stack: RunningStack, probe: StackProbe, self_rules: SelfRules) -> CollectorRegistry:
    """A registry holding the :class:`DriverCollector` of ``stack``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DriverCollector(stack, probe, self_rules))
    return registry
