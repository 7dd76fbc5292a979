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
- ``kill_dask_scheduler``: SIGKILL to the soak's external Dask scheduler once a worker is busy on a spool
  batch; the soak's supervisor starts it again on its port (its workers, which exit without it, too);
  recovered when every worker has registered again and the lake has committed new batches since, with
  the same ``logwarden up`` still running (it reconnected; its batches in flight were submitted again);
- ``kill_ray_head``: SIGKILL to every process of the soak's Ray head (GCS, raylet, dashboard agent,
  actors, its Ray client proxies), then ``ray start --head`` again on its port and temp dir. ``logwarden up``
  must end by itself: Ray ends a driver whose local raylet died (its log says "Terminate the process"),
  and a driver on another node exits with status 75 and a message naming the Ray head once the GCS is
  gone. The soak starts it again (a service manager's ``Restart=always``); recovered when it ended with a
  non-zero status for one of those reasons, the new one is up, its collector answers ``/health`` and no
  process of the old one is left;
- ``channels_outage``: Slack and PagerDuty down, SMTP answering 451, for the fault's seconds;
- ``burst``: the senders run at the burst factor (the plan tells them); nothing to do here;
- ``kill_stack``: SIGKILL to ``logwarden up`` itself, then the soak starts it again with the same
  arguments, as a service manager would; recovered when the new ``logwarden up`` is up, its collector
  answers ``/health`` and no process of the killed one is left (its collector stops with its parent);
- ``corrupt_spool``: a garbage batch file (records of fresh ids, noted ``corrupted`` in the ledger, in a
  file that is not Parquet) dropped into the spool under the batch id ``plan.corrupt_batch_id(round)``;
  recovered when processing quarantined it in ``spool/failed`` (its ``batch_quarantined`` alert is an
  expected alert of the plan);
- ``disk_full``: the data dir's tmpfs (mounted by the soak) filled to the last byte with a ballast file
  for the fault's seconds, then the ballast removed; recovered when the collector is ready again.
  Skipped (not injected, with the reason) when the soak could not mount a tmpfs.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil

from bench.soak.channels import FakeChannels
from bench.soak.ledger import Ledger
from bench.soak.load import Epoch
from bench.soak.plan import Fault, Plan, corrupt_batch_id
from bench.soak.stack import DataDisk, RayHead, StackProcess
from bench.soak.workload import RecordFactory, iso_now

log = logging.getLogger(__name__)
RECOVERY_TIMEOUT = 180.0  # generous: the shared machine this runs on is at times overloaded
EXIT_TIMEOUT = 120.0  # for ``logwarden up`` to notice a dead Ray head and stop
EXIT_CLUSTER_LOST = 75  # logwarden.clusters.EXIT_CLUSTER_LOST
START_ATTEMPTS = 3
RAY_ENDED_DRIVER = b"Terminate the process"  # Ray's log line when it ends a driver that lost its raylet
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
                 stop: threading.Event, t0: float, factory: RecordFactory | None = None,
                 ledger: Ledger | None = None, disk: DataDisk | None = None) -> None:
        super().__init__(name="faults", daemon=True)
        self.plan, self.stack, self.ray, self.channels, self.epoch = plan, stack, ray, channels, epoch
        self.stop_event, self.t0 = stop, t0
        self.factory, self.ledger, self.disk = factory, ledger, disk
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._up = threading.Event()  # clear while a fault restarts ``logwarden up``
        self._up.set()

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

    def _busy_on_a_batch(self) -> tuple[psutil.Process | None, float, int]:
        """``_busiest_worker`` once a worker is busy on a spool batch, or after ``MID_BATCH_WAIT`` s."""
        deadline = time.monotonic() + MID_BATCH_WAIT
        victim, cpu, spool = self._busiest_worker()
        while time.monotonic() < deadline and not (victim is not None and cpu >= BUSY_CPU_PERCENT and spool):
            victim, cpu, spool = self._busiest_worker()
        return victim, cpu, spool

    def _kill_dask_worker(self, fault: Fault) -> dict[str, Any]:
        """Wait (up to ``MID_BATCH_WAIT`` s) for a worker busy on a spool batch, then SIGKILL it."""
        before = {p.pid for p in self.stack.dask_workers()}
        victim, cpu, spool = self._busy_on_a_batch()
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

    def _commits(self) -> int:
        """Batches committed to the lake so far (its commit markers)."""
        try:
            with os.scandir(self.stack.data_dir / "lake" / "_commits") as entries:
                return sum(1 for e in entries if e.name.endswith(".json"))
        except FileNotFoundError:
            return 0

    def _kill_dask_scheduler(self, fault: Fault) -> dict[str, Any]:
        """SIGKILL the Dask scheduler once a worker is busy on a spool batch (up to ``MID_BATCH_WAIT`` s);
        the soak's supervisor starts it again; wait for the workers and for new commits in the lake from
        the same ``logwarden up``."""
        waited = time.monotonic()
        self._up.wait(RECOVERY_TIMEOUT)  # a restart of the previous round still under way: after it
        waited_s = round(time.monotonic() - waited, 2)
        dask, up = self.stack.dask, self.stack.popen
        _, cpu, spool = self._busy_on_a_batch()
        killed_at = time.monotonic()
        pid = dask.kill_scheduler()
        back = _wait(lambda: (proc := dask.scheduler()) is not None and proc.pid != pid, RECOVERY_TIMEOUT)
        workers = bool(back) and dask.wait_for_workers(RECOVERY_TIMEOUT)
        workers_s = round(time.monotonic() - killed_at, 2)
        committed = self._commits()
        resumed = workers and _wait(lambda: self._commits() > committed, RECOVERY_TIMEOUT)
        same_stack = up is not None and up.poll() is None and self.stack.popen is up
        return {"injected": True, "pid": pid, "waited_for_restart_s": waited_s, "spool_batches_at_kill": spool,
                "mid_batch": bool(cpu >= BUSY_CPU_PERCENT and spool), "scheduler_back": bool(back),
                "workers_back_s": workers_s if workers else None, "processing_resumed": bool(resumed),
                "same_logwarden_up": same_stack, "recovered": bool(resumed) and same_stack,
                "recovery_s": round(time.monotonic() - killed_at, 2) if resumed else None}

    def _kill_ray_head(self, fault: Fault) -> dict[str, Any]:
        """SIGKILL every process of the Ray head; start the head again; wait for ``logwarden up`` to exit
        by itself (status 75), then start it again, as a service manager would."""
        popen = self.stack.popen
        if popen is None or popen.poll() is not None:
            return {"injected": False, "error": "logwarden up is not running"}
        old = [p for p in self.stack.children() if p.is_running()]
        head = self.ray.processes()
        self.epoch.bump()  # logwarden up stops its collector: stream chunks in flight are in doubt
        self._up.clear()
        try:
            return self._head_killed(popen, old, head)
        finally:
            self._up.set()

    def _head_killed(self, popen: Any, old: list[psutil.Process], head: list[psutil.Process]) -> dict[str, Any]:
        """The rest of ``_kill_ray_head``: the kill, the restarts, the checks."""
        killed_at = time.monotonic()
        window_start = time.time() - self.t0
        for proc in head:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(head, timeout=10)
        head_errors = self.ray.restart()
        head_s = round(time.monotonic() - killed_at, 2)
        try:
            status = popen.wait(EXIT_TIMEOUT)
        except Exception:  # noqa: BLE001 - it did not notice: reported, then killed as a service manager would
            status = None
            popen.kill()
            popen.wait(30)
        exited_s = round(time.monotonic() - killed_at, 2)
        self.epoch.bump()
        said = "Ray head" in self.stack.output_since_start() and status == EXIT_CLUSTER_LOST
        ended_by_ray = _driver_ended_by_ray(self.ray, popen.pid)
        error = self._start_again()
        healthy = error is None and _wait(self.stack.health, RECOVERY_TIMEOUT)
        left = [p.pid for p in old if _alive(p)]
        recovered = bool(healthy) and not left and status not in (0, None) and (said or ended_by_ray)
        return {"injected": True, "pid": popen.pid, "head_processes": len(head), "head_back_s": head_s,
                "exit_status": status, "exited_s": exited_s, "exited_saying_why": said,
                "ended_by_ray": ended_by_ray, "recovered": recovered,
                "recovery_s": round(time.monotonic() - killed_at, 2), "old_processes_left": left,
                "restarts": self.stack.restarts, "head_start_failures": head_errors, "error": error,
                "window_s": [round(window_start, 1), round(time.time() - self.t0, 1)]}

    def _start_again(self) -> str | None:
        """Start ``logwarden up`` again, up to ``START_ATTEMPTS`` times (as ``Restart=on-failure`` would);
        None when it came up, else the last error."""
        error = None
        for _ in range(START_ATTEMPTS):
            try:
                self.stack.restart_after_kill()
                return None
            except Exception as exc:  # noqa: BLE001 - the next attempt, then reported
                error = repr(exc)[:2000]
                log.warning("logwarden up did not start again: %s", error)
                time.sleep(2.0)
        return error

    def _channels_outage(self, fault: Fault) -> dict[str, Any]:
        self.channels.outage(True)
        try:
            self.stop_event.wait(fault.seconds)
        finally:
            self.channels.outage(False)
        return {"injected": True, "seconds": fault.seconds}

    def _burst(self, fault: Fault) -> dict[str, Any]:
        return {"injected": True, "seconds": fault.seconds, "factor": self.plan.burst_factor}

    def _kill_stack(self, fault: Fault) -> dict[str, Any]:
        """SIGKILL ``logwarden up``; start it again with the same arguments; check nothing of the old one
        is left (its collector must stop by itself: ``common.parentdeath``)."""
        popen = self.stack.popen
        if popen is None or popen.poll() is not None:
            return {"injected": False, "error": "logwarden up is not running"}
        old = [p for p in self.stack.children() if p.is_running()]
        old_collector = self.stack.collector()
        self.epoch.bump()  # stream chunks in flight lose their collector too
        killed_at = time.monotonic()
        window_start = time.time() - self.t0
        self._up.clear()
        try:
            return self._stack_killed(popen, old, old_collector, killed_at, window_start)
        finally:
            self._up.set()

    def _stack_killed(self, popen: Any, old: list[psutil.Process], old_collector: psutil.Process | None,
                      killed_at: float, window_start: float) -> dict[str, Any]:
        """The rest of ``_kill_stack``: the kill, the restart, the checks."""
        popen.kill()
        popen.wait(30)
        try:
            self.stack.restart_after_kill()
        except Exception as exc:  # noqa: BLE001 - reported as not recovered, with the reason
            return {"injected": True, "pid": popen.pid, "recovered": False, "error": repr(exc)[:2000],
                    "window_s": [round(window_start, 1), round(time.time() - self.t0, 1)]}
        up_s = round(time.monotonic() - killed_at, 2)
        healthy = _wait(self.stack.health, RECOVERY_TIMEOUT)
        left = [p.pid for p in old if _alive(p)]
        new_collector = self.stack.collector()
        recovered = bool(healthy) and not left
        return {"injected": True, "pid": popen.pid, "recovered": recovered, "restart_s": up_s,
                "recovery_s": round(time.monotonic() - killed_at, 2),
                "old_collector_pid": old_collector.pid if old_collector else None,
                "new_collector_pid": new_collector.pid if new_collector else None,
                "old_processes_left": left,
                "window_s": [round(window_start, 1), round(time.time() - self.t0, 1)]}

    def _corrupt_spool(self, fault: Fault) -> dict[str, Any]:
        """Drop a garbage batch file (not Parquet; it carries records of fresh ids, which the ledger notes
        as ``corrupted``) into the spool; wait until processing quarantined it."""
        if self.factory is None or self.ledger is None:
            return {"injected": False, "error": "no record factory or ledger given to the fault injector"}
        batch_id = corrupt_batch_id(fault.round)
        spool = self.stack.data_dir / "spool"
        rng = random.Random(fault.round)
        made = [self.factory.json_record(rng, iso_now(), "soak-corrupt") for _ in range(50)]
        garbage = b"PAR1" + rng.randbytes(512) + b"\n".join(line for _, line in made) + rng.randbytes(256)
        tmp = spool / f".{batch_id}.parquet.tmp"
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while True:  # the data disk may be full (disk_full) right now
            try:
                tmp.write_bytes(garbage)
                break
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                if exc.errno != errno.ENOSPC or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
        self.ledger.record("spool", "corrupted", [n for n, _ in made])
        injected_at = time.monotonic()
        os.replace(tmp, spool / f"{batch_id}.parquet")
        failed = spool / "failed"
        quarantined = _wait(lambda: (failed / f"{batch_id}.parquet").exists()
                            and (failed / f"{batch_id}.reason.json").exists(), RECOVERY_TIMEOUT)
        return {"injected": True, "batch_id": batch_id, "records": len(made), "bytes": len(garbage),
                "recovered": bool(quarantined),
                "recovery_s": round(time.monotonic() - injected_at, 2) if quarantined else None}

    def _disk_full(self, fault: Fault) -> dict[str, Any]:
        """Fill the data dir's tmpfs to the last byte for ``fault.seconds``; then free it and wait for the
        collector to be ready again."""
        if self.disk is None or not self.disk.mounted:
            reason = self.disk.reason if self.disk is not None else "no tmpfs for the data dir"
            return {"injected": False, "skipped": True, "error": f"disk_full skipped: {reason}"}
        window_start = time.time() - self.t0
        ballast = self.stack.data_dir / ".soak-ballast"
        written = fill_disk(ballast)
        free_at_full = self.disk.free()
        refused_ready = _wait(lambda: self.stack.ready().get("ready") is False, 5.0, 0.2)
        try:
            self.stop_event.wait(fault.seconds)
        finally:
            ballast.unlink(missing_ok=True)
        freed_at = time.monotonic()
        ready = _wait(lambda: self.stack.ready().get("ready") is True, RECOVERY_TIMEOUT, 0.2)
        return {"injected": True, "seconds": fault.seconds, "ballast_bytes": written,
                "free_bytes_when_full": free_at_full, "collector_not_ready_while_full": bool(refused_ready),
                "recovered": bool(ready),
                "recovery_s": round(time.monotonic() - freed_at, 2) if ready else None,
                "window_s": [round(window_start, 1), round(time.time() - self.t0, 1)]}


def _driver_ended_by_ray(ray: RayHead, pid: int) -> bool:
    """Whether Ray ended the driver of ``pid`` itself (it does when the local raylet's object store goes
    away: the message in the driver's log under the head's temp dir)."""
    for path in Path(ray.temp_dir).glob(f"session_*/logs/python-core-driver-*_{pid}.log"):
        if RAY_ENDED_DRIVER in path.read_bytes()[-100_000:]:
            return True
    return False


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def fill_disk(path: "os.PathLike[str]", chunk: int = 8 << 20) -> int:
    """Write ``path`` until its file system is full (ENOSPC); the bytes written."""
    block = b"\0" * chunk
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        stats = os.fstatvfs(fd)
        bulk = stats.f_bavail * stats.f_frsize - 2 * chunk
        if bulk > 0 and hasattr(os, "posix_fallocate"):
            try:  # most of it at once (tmpfs allocates in place: a second, not a write of gigabytes)
                os.posix_fallocate(fd, 0, bulk)
                os.lseek(fd, bulk, os.SEEK_SET)
                written = bulk
            except OSError:
                pass
        size = chunk
        while size >= 4096:
            try:
                written += os.write(fd, block[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2  # the last pages
    finally:
        os.close(fd)
    return written
