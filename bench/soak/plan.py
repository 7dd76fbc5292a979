"""The soak's settings and its schedule: rounds of incidents (with the alerts they must raise) and faults.

The load phase is cut into rounds of about two minutes. Every round runs the same cycle, at the same
fractions of the round, with keys of its own (``-r1``, ``-r2``…), so a ten-minute soak goes through
five cycles:

  0.15  Slack and PagerDuty down, SMTP refusing (``outage_seconds``)
  0.20  slow_response (one 7.4 s request)        → email (MEDIUM, in a digest)
  0.20  db_connection_failure, 12 in 15 s         → pagerduty (CRITICAL)
  0.25  error_spike, 120 errors in 20 s           → slack (HIGH)
  0.40  suspicious_user, 55 errors over ~18–30 s  → email        ┐ spans the collector kill (0.45)
  0.50  error_spike (second service), 120 in 15 s → slack        ┐ spans the Dask worker kill (0.55)
  0.60  db_connection_failure (second), 12 in 15 s → pagerduty   ┐ spans the detector actor kill (0.65)
  0.80  burst: the rate times ``burst_factor`` for ``burst_seconds``

Before the load starts, a service ``soak-ghost`` sends a few records stamped 15 minutes ago and
then nothing until round 1 is 10 % in: ``service_down`` (CRITICAL → pagerduty) must fire once for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FAULT_KINDS = ("channels_outage", "kill_collector", "kill_dask_worker", "kill_detector_actors", "burst")
GHOST_SERVICE = "soak-ghost"
GHOST_RECORDS = 20
GHOST_AGE_SECONDS = 15 * 60


@dataclass(frozen=True)
class SoakConfig:
    """What ``bench/soak.py`` was asked for."""

    minutes: float = 10.0
    rate: int = 50_000
    seed: int = 1
    round_seconds: float = 120.0
    burst_factor: float = 5.0
    burst_seconds: float = 10.0
    outage_seconds: float = 30.0
    drain_timeout: float = 240.0
    alert_timeout: float = 120.0
    settle_seconds: float = 10.0
    min_rate_ratio: float = 0.8
    max_rss_mb: float = 4096.0
    dask_workers: int = 2
    workdir: Path | None = None
    keep: bool = False
    faults: tuple[str, ...] = FAULT_KINDS

    @property
    def duration(self) -> float:
        """Seconds of load."""
        return self.minutes * 60.0


@dataclass(frozen=True)
class Incident:
    """Records that must raise exactly one firing alert of ``rule`` for ``key`` on ``channel``.

    ``count`` records are sent evenly over ``span`` seconds from ``start`` (seconds after the load
    started); the ``trigger``-th of them is the one that crosses the threshold."""

    rule: str
    key: str
    service: str
    severity: str
    channel: str
    start: float
    span: float
    count: int
    trigger: int
    round: int

    @property
    def name(self) -> str:
        """``rule:key``, the alert's dedup key."""
        return f"{self.rule}:{self.key}"


@dataclass(frozen=True)
class Fault:
    """One fault, ``at`` seconds after the load started (``seconds``: how long it lasts, if it lasts)."""

    kind: str
    at: float
    seconds: float = 0.0
    round: int = 1


@dataclass
class Plan:
    """Incidents and faults of a soak of ``duration`` seconds."""

    duration: float
    rounds: int
    round_length: float
    incidents: list[Incident] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    burst_factor: float = 5.0

    @classmethod
    def build(cls, config: SoakConfig) -> "Plan":
        """The schedule of ``config``."""
        rounds = max(1, int(config.duration // config.round_seconds))
        length = config.duration / rounds
        plan = cls(config.duration, rounds, length, burst_factor=config.burst_factor)
        for r in range(1, rounds + 1):
            base = (r - 1) * length
            plan.incidents += _incidents(r, base, length)
            plan.faults += [fault for fault in (
                Fault("channels_outage", base + 0.15 * length, config.outage_seconds, r),
                Fault("kill_collector", base + 0.45 * length, 0.0, r),
                Fault("kill_dask_worker", base + 0.55 * length, 0.0, r),
                Fault("kill_detector_actors", base + 0.65 * length, 0.0, r),
                Fault("burst", base + 0.80 * length, config.burst_seconds, r),
            ) if fault.kind in config.faults]
        plan.incidents.append(Incident("service_down", GHOST_SERVICE, GHOST_SERVICE, "CRITICAL", "pagerduty",
                                       0.0, 0.0, 0, 0, 1))
        return plan

    @property
    def ghost_resumes_at(self) -> float:
        """When ``soak-ghost`` sends again (its alert fired by then), in seconds after the load started."""
        return 0.10 * self.round_length

    def rate_multiplier(self, elapsed: float) -> float:
        """How many times the base rate to send at, ``elapsed`` seconds into the load."""
        for fault in self.faults:
            if fault.kind == "burst" and fault.at <= elapsed < fault.at + fault.seconds:
                return self.burst_factor
        return 1.0

    def burst_windows(self) -> list[tuple[float, float]]:
        """(start, end) of every burst, in seconds after the load started."""
        return [(f.at, f.at + f.seconds) for f in self.faults if f.kind == "burst"]

    def incident_services(self) -> list[str]:
        """The services the incidents use; they also send normal traffic all along (so that no
        ``service_down`` fires for them)."""
        return sorted({i.service for i in self.incidents if i.service != GHOST_SERVICE})


def _incidents(r: int, base: float, length: float) -> list[Incident]:
    suffix = f"-r{r}"
    return [
        Incident("slow_response", f"soak-gw{suffix}", f"soak-gw{suffix}", "MEDIUM", "email",
                 base + 0.20 * length, 0.0, 1, 1, r),
        Incident("db_connection_failure", f"soak-orders{suffix}", f"soak-orders{suffix}", "CRITICAL", "pagerduty",
                 base + 0.20 * length, 15.0, 12, 10, r),
        Incident("error_spike", f"soak-pay{suffix}", f"soak-pay{suffix}", "HIGH", "slack",
                 base + 0.25 * length, 20.0, 120, 101, r),
        Incident("suspicious_user", f"u-soak{suffix}", f"soak-auth{suffix}", "MEDIUM", "email",
                 base + 0.40 * length, min(30.0, 0.15 * length), 55, 50, r),
        Incident("error_spike", f"soak-cart{suffix}", f"soak-cart{suffix}", "HIGH", "slack",
                 base + 0.50 * length, 15.0, 120, 101, r),
        Incident("db_connection_failure", f"soak-ledger{suffix}", f"soak-ledger{suffix}", "CRITICAL", "pagerduty",
                 base + 0.60 * length, 15.0, 12, 10, r),
    ]
