"""The fault injector: runs the plan's faults at their times, each in a thread of its own, and
records what it did and how the stack recovered.

Faults, all on processes of the soak's own stack:
- ``kill_collector``: SIGKILL to the collector child of ``logwarden up``; recovered when another
  collector process answers ``/health``;
- ``kill_dask_worker``: SIGKILL to the busiest Dask worker process (a child of a nanny), while spool
  batches are in flight; recovered when the nanny has a new worker process up;
- ``kill_detector_actors``: SIGKILL to every ``DetectorActor`` process of the soak's Ray head (so the
  actor of each rule, including those counting an open incident, is hit); recovered when Ray has
  restarted as many;
- ``channels_outage``: Slack and PagerDuty down, SMTP answering 451, for the fault's seconds;
- ``burst``: the senders run at the burst factor (the plan tells them); nothing to do here.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import psutil

from bench.soak.channels import FakeChannels
from bench.soak.load import Epoch
from bench.soak.plan import Fault, Plan
from bench.soak.stack import RayHead, StackProcess

log = logging.getLogger(__name__)
RECOVERY_TIMEOUT = 90.0
MID_BATCH_WAIT = 15.0
BUSY_CPU_PERCENT = 25.0


def _wait(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return None


class FaultInjector(threading.Thread):
    """Dispatches the plan's faults at their times (seconds after ``t0``)."""

    def __init__(self, plan: Plan, stack: StackProcess, ray: RayHead, channels: FakeChannels, epoch: Epoch,
                 stop: threading.Event, t0: float) -> None:
        super().__init__(name="faults", daemon=True)
        self.plan, self.stack, self.ray, self.channels, self.epoch = plan, stack, ray, channels, epoch
        self.stop_event, self.t0 = stop, t0
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def run(self) -> None:
        """Start each fault at its time."""
        for fault in sorted(self.plan.faults, key=lambda f: f.at):
            wait = self.t0 + fault.at - time.time()
            if wait > 0 and self.stop_event.wait(wait):
                return
            thread = threading.Thread(target=self._run_fault, args=(fault,), name=f"fault-{fault.kind}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def join_all(self, timeout: float) -> None:
        """Wait for the fault threads (recoveries) to finish."""
        self.join(timeout)
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run_fault(self, fault: Fault) -> None:
        started = time.time()
        try:
            detail = getattr(self, f"_{fault.kind}")(fault)
        except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is reported, not raised
            log.exception("fault %s failed", fault.kind)
            detail = {"injected": False, "error": repr(exc)}
        event = {"kind": fault.kind, "round": fault.round, "at_s": round(started - self.t0, 1), **detail}
        with self._lock:
            self.events.append(event)
        log.info("fault: %s", event)

    # the faults --------------------------------------------------------------------------------
    def _kill_collector(self, fault: Fault) -> dict[str, Any]:
        victim = self.stack.collector()
        if victim is None:
            return {"injected": False, "error": "no collector process found"}
        self.epoch.bump()
        killed_at = time.monotonic()
        victim.kill()
        victim.wait(10)

        def back() -> psutil.Process | None:
            proc = self.stack.collector()
            return proc if proc is not None and proc.pid != victim.pid and self.stack.health() else None

        new = _wait(back, RECOVERY_TIMEOUT)
        return {"injected": True, "pid": victim.pid, "recovered": new is not None,
                "new_pid": new.pid if new else None,
                "recovery_s": round(time.monotonic() - killed_at, 2) if new else None}

    def _busiest_worker(self) -> tuple[psutil.Process | None, float, int]:
        """The Dask worker process using the most CPU over a short sample, its CPU % and the spool depth."""
        workers = self.stack.dask_workers()
        for proc in workers:
            try:
                proc.cpu_percent(None)
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.25)
        busy: dict[int, float] = {}
        for proc in workers:
            try:
                busy[proc.pid] = proc.cpu_percent(None)
            except psutil.NoSuchProcess:
                continue
        spool = len(list((self.stack.data_dir / "spool").glob("*.parquet")))
        if not busy:
            return None, 0.0, spool
        victim = max((p for p in workers if p.pid in busy), key=lambda p: busy[p.pid])
        return victim, busy[victim.pid], spool

    def _kill_dask_worker(self, fault: Fault) -> dict[str, Any]:
        """Wait (up to ``MID_BATCH_WAIT`` s) for a worker busy on a spool batch, then SIGKILL it."""
        before = {p.pid for p in self.stack.dask_workers()}
        deadline = time.monotonic() + MID_BATCH_WAIT
        victim, cpu, spool = self._busiest_worker()
        while time.monotonic() < deadline and not (victim is not None and cpu >= BUSY_CPU_PERCENT and spool):
            victim, cpu, spool = self._busiest_worker()
        if victim is None:
            return {"injected": False, "error": "no Dask worker process found"}
        killed_at = time.monotonic()
        victim.kill()

        def back() -> list[psutil.Process] | None:
            now = [p for p in self.stack.dask_workers() if p.pid != victim.pid]
            return now if len(now) >= len(before) else None

        new = _wait(back, RECOVERY_TIMEOUT)
        return {"injected": True, "pid": victim.pid, "cpu_percent": cpu, "spool_batches_at_kill": spool,
                "mid_batch": bool(cpu >= BUSY_CPU_PERCENT and spool), "recovered": new is not None,
                "recovery_s": round(time.monotonic() - killed_at, 2) if new else None}

    def _kill_detector_actors(self, fault: Fault) -> dict[str, Any]:
        actors = self.ray.detector_actors()
        if not actors:
            return {"injected": False, "error": "no DetectorActor process found on the soak's Ray head"}
        before = {p.pid for p in actors}
        killed_at = time.monotonic()
        for proc in actors:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue

        def back() -> list[psutil.Process] | None:
            now = [p for p in self.ray.detector_actors() if p.pid not in before]
            return now if len(now) >= len(before) else None

        new = _wait(back, RECOVERY_TIMEOUT, interval=0.5)
        return {"injected": True, "pids": sorted(before), "recovered": new is not None,
                "recovery_s": round(time.monotonic() - killed_at, 2) if new else None}

    def _channels_outage(self, fault: Fault) -> dict[str, Any]:
        self.channels.outage(True)
        try:
            self.stop_event.wait(fault.seconds)
        finally:
            self.channels.outage(False)
        return {"injected": True, "seconds": fault.seconds}

    def _burst(self, fault: Fault) -> dict[str, Any]:
        return {"injected": True, "seconds": fault.seconds, "factor": self.plan.burst_factor}
