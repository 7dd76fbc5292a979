"""The soak's settings and its schedule: rounds of incidents (with the alerts they must raise) and faults.

The load phase is cut into rounds of about two minutes. Every round runs the same cycle, at the same
fractions of the round, with keys of its own (``-r1``, ``-r2``…), so a ten-minute soak goes through
five cycles:

  0.15  Slack and PagerDuty down, SMTP refusing (``outage_seconds``)
  0.20  slow_response (one 7.4 s request)        → email (MEDIUM, in a digest)
  0.20  db_connection_failure, 12 in 15 s         → pagerduty (CRITICAL)
  0.25  error_spike, 120 errors in 20 s           → slack (HIGH)   ┐ spans the Dask scheduler kill (0.35)
  0.40  suspicious_user, 55 errors over ~18–30 s  → email        ┐ spans the collector kill (0.45)
  0.50  error_spike (second service), 120 in 15 s → slack        ┐ spans the Dask worker kill (0.55)
  0.60  db_connection_failure (second), 12 in 15 s → pagerduty   ┐ spans the detector actor kill (0.65)
  0.80  burst: the rate times ``burst_factor`` for ``burst_seconds``

More faults (``FAULT_KINDS``, ``--faults all``; the default set ``DEFAULT_FAULTS`` leaves out
``disk_full`` and ``kill_ray_head``):

  0.30  corrupt_spool: a garbage batch file (``corrupt_batch_id``) dropped into the spool; it must be
        quarantined, and its ``batch_quarantined`` self-alert (CRITICAL → pagerduty) delivered once
  0.02  disk_full: the data dir's tmpfs filled to the last byte for ``DISK_FULL_SECONDS`` (round 1 and
        every round after one whose 0.90 did not restart ``logwarden up``, so the two never overlap)
  0.90  kill_stack: ``kill -9`` of ``logwarden up`` itself, restarted by the soak with the same
        arguments (odd rounds: its restart runs into the next round's first seconds)
  0.35  kill_dask_scheduler: ``kill -9`` of the external Dask scheduler, started again on its port (its
        workers exit with it and are started again too); every round
  0.90  kill_ray_head: ``kill -9`` of every process of the Ray head (GCS, raylet, actors), started again
        on its port; ``logwarden up`` exits by itself and is started again (even rounds)

No incident is open at 0.02 (before 0.20) nor at 0.90 (the last one ends at 0.60 + 15 s, its alert
fired by then): the detectors' state since their last checkpoint is lost with ``logwarden up`` and with
the Ray head. A disk-full window never follows a round whose 0.90 restarted ``logwarden up``.

Before the load starts, a service ``soak-ghost`` sends a few records stamped 15 minutes ago and
then nothing until round 1 is 10 % in: ``service_down`` (CRITICAL → pagerduty) must fire once for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FAULTS = ("channels_outage", "kill_collector", "kill_dask_worker", "kill_detector_actors", "burst",
                  "kill_stack", "corrupt_spool", "kill_dask_scheduler")
FAULT_KINDS = DEFAULT_FAULTS + ("disk_full", "kill_ray_head")  # every fault: ``--faults all``
RESTARTS = ("kill_stack", "kill_ray_head")  # faults after which ``logwarden up`` starts again
DISK_FULL_SECONDS = 20.0
QUARANTINE_RULE = "batch_quarantined"
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
    faults: tuple[str, ...] = DEFAULT_FAULTS

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
                Fault("corrupt_spool", base + 0.30 * length, 0.0, r),
                Fault("kill_dask_scheduler", base + 0.35 * length, 0.0, r),
            ) if fault.kind in config.faults]
            if "disk_full" in config.faults and _restart_fault(config, r - 1) is None:
                plan.faults.append(Fault("disk_full", base + 0.02 * length, DISK_FULL_SECONDS, r))
            restart = _restart_fault(config, r)
            if restart is not None:
                plan.faults.append(Fault(restart, base + 0.90 * length, 0.0, r))
            if "corrupt_spool" in config.faults:
                plan.incidents.append(Incident(QUARANTINE_RULE, corrupt_batch_id(r), "", "CRITICAL", "pagerduty",
                                               base + 0.30 * length, 0.0, 0, 0, r))
        plan.faults.sort(key=lambda f: f.at)
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
        return sorted({i.service for i in self.incidents if i.service and i.service != GHOST_SERVICE})


def _restart_fault(config: SoakConfig, round_: int) -> str | None:
    """The fault at 0.90 of round ``round_`` that restarts ``logwarden up``: ``kill_stack`` in odd rounds,
    ``kill_ray_head`` in even ones (None: none, or round 0)."""
    if round_ < 1:
        return None
    kind = "kill_stack" if round_ % 2 == 1 else "kill_ray_head"
    return kind if kind in config.faults else None


def corrupt_batch_id(round_: int) -> str:
    """The batch id of the garbage spool file the ``corrupt_spool`` fault of round ``round_`` drops (the
    collector's id layout, ``<ms>-<instance>-<sequence>``; time 0, so it is the first batch taken)."""
    return f"{0:013d}-soakcorrupt-{round_:06d}"


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
