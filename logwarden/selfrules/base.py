"""What every self-rule shares: the state it reads, what it finds, and the anomaly it raises.

A self-rule looks at a :class:`SelfState` (gathered once per check by ``probe.StackProbe``, or built by
a test) and answers the keys whose condition holds *now, for long enough*, each as a :class:`Finding`.
:class:`~logwarden.selfrules.engine.SelfRules` turns a key that appears into a firing anomaly and a key
that disappears into its resolved one. Self-alerts belong to tenant ``*`` (only principals of every
tenant see them) and go through the normal router, by severity, unless a rule names its channels.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone

from logwarden.common.auth import ALL_TENANTS
from logwarden.monitoring.anomaly import FIRING, Anomaly


@dataclass(frozen=True)
class SelfState:
    """What the self-rules look at, at wall-clock time ``now`` (epoch seconds). None: unknown."""

    now: float
    data_dir: str = ""
    sources_known: bool = False  # records came in during this run, or the configuration names file sources
    last_ingest_at: float | None = None  # when the newest record came in (a batch was spooled or handed on)
    spool_depth: int = 0
    spool_oldest_age: float = 0.0
    free_disk_bytes: int | None = None
    dask_workers: int | None = None
    dask_workers_expected: int | None = None
    actors_unavailable: dict[str, float] = field(default_factory=dict)  # "rule/shard" -> failing since
    channels_failing: dict[str, float] = field(default_factory=dict)  # channel -> failing since
    channels: tuple[str, ...] = ()  # the configured alert channels


@dataclass(frozen=True)
class Finding:
    """A condition that holds for ``key``: since when (epoch seconds), its value and threshold as shown."""

    since: float
    value: float
    threshold: str
    description: str
    samples: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # empty: routed by severity


def iso(seconds: float) -> str:
    """RFC 3339 UTC text of epoch ``seconds``."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class SelfRule(ABC):
    """One self-rule: a name, a severity, an action for whoever is paged, and its findings."""

    name: str = ""
    severity: str = "HIGH"
    action: str = ""

    @abstractmethod
    def findings(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """The keys whose condition holds at ``state.now`` (``firing``: the keys firing now, for
        hysteresis)."""

    def anomaly(self, key: str, finding: Finding, now: float, status: str = FIRING) -> Anomaly:
        """The anomaly of ``finding`` for ``key`` (firing, or ``status`` resolved)."""
        return Anomaly(rule=self.name, kind="self", severity=self.severity, key=key, window_start=iso(finding.since),
                       window_end=iso(now), value=float(finding.value), threshold=finding.threshold, status=status,
                       samples=list(finding.samples), tenant=ALL_TENANTS, description=finding.description,
                       action=self.action, channels=list(finding.channels))


class Held:
    """When a condition without a time of its own (a count, a level) started holding, per key."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def since(self, key: str, holds: bool, now: float) -> float | None:
        """The start of the current stretch in which the condition of ``key`` holds, or None."""
        if not holds:
            self._since.pop(key, None)
            return None
        return self._since.setdefault(key, now)
