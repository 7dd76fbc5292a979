"""The processes the soak starts, and only those: a Ray head and a Dask cluster of its own, and
``logwarden up`` on them (``--ray-address``, ``--dask-scheduler``), as a cluster user runs it.

Faults and memory figures find processes through these three roots only: the descendants of the
``logwarden up`` the soak launched (the collector), the Dask cluster's processes (scheduler, nannies,
worker processes; ``logwarden.testing.dask``) and the processes whose command line names the Ray head's
own temp dir, with their descendants (GCS, raylet, actors).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil
import requests

from logwarden.testing import dask as dask_cluster
from logwarden.testing.cluster import MB, RAY_ENV, cmdline, free_port, terminate
from logwarden.testing.cluster import RayHead as _RayHead
from logwarden.testing.dask import DaskCluster

log = logging.getLogger(__name__)
START_TIMEOUT = 300.0  # for ``logwarden up`` to come up (minutes on a 2-core machine other jobs overload)
__all__ = ["MB", "DaskCluster", "DataDisk", "MemorySampler", "RayHead", "StackProcess", "free_port"]


class RayHead(_RayHead):
    """The soak's Ray head; its processes also count the Ray client server proxies started for it, which
    name its address, not its temp dir, and outlive a SIGKILL of the rest."""

    def processes(self) -> list[psutil.Process]:
        """Every process of this head, its proxies included."""
        found = {p.pid: p for p in super().processes()}
        marker = f"--address={self.address}"
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if marker in (proc.info["cmdline"] or ()):
                    found.setdefault(proc.pid, proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return list(found.values())

    def restart(self, attempts: int = 3) -> list[str]:
        """Start the head again after its processes were killed, on the same port and temp dir, trying up
        to ``attempts`` times as a service manager would (``ray start`` can fail on a loaded machine, e.g.
        a fresh side port taken meanwhile), its leftovers killed between attempts. The errors of the
        failed attempts; raises after the last."""
        errors: list[str] = []
        for attempt in range(attempts):
            try:
                self.start()
                return errors
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output = (exc.stderr or b"").decode(errors="replace") or (exc.stdout or b"").decode(errors="replace")
                errors.append(output.strip()[-1500:] or repr(exc))
                log.warning("ray start --head failed (attempt %d): %s", attempt + 1, errors[-1][-500:])
                terminate(self.processes(), timeout=5)
                time.sleep(2.0)
        raise RuntimeError(f"ray start --head failed {attempts} times: {errors[-1]}")


class DataDisk:
    """A tmpfs of its own under the soak's data dir (for the ``disk_full`` fault): mounted when the soak
    can (root, ``mount -t tmpfs``); otherwise ``mounted`` is False and ``reason`` says why."""

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path, self.size_bytes = path, size_bytes
        self.mounted, self.reason = False, ""

    def mount(self) -> "DataDisk":
        """Mount (the folder must be empty); never raises: see ``mounted`` and ``reason``."""
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            self.reason = "mounting a tmpfs for the data dir needs root"
            return self
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes},mode=0755", "tmpfs",
                                   str(self.path)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.reason = f"mount failed: {exc!r}"
            return self
        if done.returncode != 0:
            self.reason = f"mount -t tmpfs failed: {done.stderr.strip() or done.returncode}"
            return self
        self.mounted = True
        return self

    def free(self) -> int:
        """Bytes available on the data dir's file system."""
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def unmount(self) -> None:
        """Unmount (lazily: a process may still hold a file open)."""
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
            self.mounted = False


class StackProcess:
    """``logwarden up`` on embedded defaults plus the soak's config file, as a child process, on the soak's
    Ray head and Dask cluster."""

    def __init__(self, data_dir: Path, config: Path, rules: Path, ray: RayHead, dask: DaskCluster, http_port: int,
                 tcp_port: int) -> None:
        self.data_dir = data_dir
        self.dask = dask
        self.http_port, self.tcp_port = http_port, tcp_port
        self.env = {**os.environ, **RAY_ENV, **ray.env}
        self.command = [sys.executable, "-m", "logwarden", "up", "--data-dir", str(data_dir), "--no-dashboards",
                        "--http-port", str(http_port), "--tcp-port", str(tcp_port), "--config", str(config),
                        "--rules", str(rules), "--api-port", str(free_port()),
                        "--ray-address", ray.address, "--dask-scheduler", dask.address]
        self.log_path = data_dir.parent / "logwarden-up.log"
        self.popen: subprocess.Popen | None = None
        self.descendants: dict[int, psutil.Process] = {}
        self.restarts = 0  # by the kill_stack fault
        self._log_offset = 0

    @property
    def url(self) -> str:
        """The collector's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = START_TIMEOUT) -> "StackProcess":
        """Start and wait for the 'logwarden is up' line."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"logwarden up exited {self.popen.returncode}:\n{self.output()[-3000:]}")
            if b"logwarden is up" in self.output_bytes()[self._log_offset:]:  # a byte offset: slice bytes
                self.remember_descendants()
                return self
            time.sleep(0.2)
        raise RuntimeError(f"logwarden up did not come up in {timeout:.0f}s:\n{self.output()[-3000:]}")

    def restart_after_kill(self, timeout: float = START_TIMEOUT) -> "StackProcess":
        """What a service manager does (systemd ``Restart=always``): reap the dead ``logwarden up`` and
        start it again with the same arguments (its output appended to the same log)."""
        if self.popen is not None and self.popen.poll() is None:  # a start that timed out: stopped first
            self.popen.kill()
        if self.popen is not None:
            self.popen.wait(30)
        self.restarts += 1
        return self.start(timeout)

    def output(self) -> str:
        """What ``logwarden up`` printed so far."""
        return self.output_bytes().decode(errors="replace")

    def output_bytes(self) -> bytes:
        """What ``logwarden up`` printed so far, as bytes."""
        return self.log_path.read_bytes() if self.log_path.exists() else b""

    def output_since_start(self) -> str:
        """What the current ``logwarden up`` printed."""
        return self.output_bytes()[self._log_offset:].decode(errors="replace")

    def children(self) -> list[psutil.Process]:
        """The live descendants of ``logwarden up``."""
        try:
            found = psutil.Process(self.popen.pid).children(recursive=True)
        except (psutil.NoSuchProcess, AttributeError):
            return []
        for proc in found:
            self.descendants.setdefault(proc.pid, proc)
        return found

    def remember_descendants(self) -> None:
        """Note every descendant (to find strays after the stop)."""
        self.children()

    def collector(self) -> psutil.Process | None:
        """The collector child process, if one runs."""
        for proc in self.children():
            line = cmdline(proc)
            if "collector" in line and "logwarden" in line and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        return None

    def dask_workers(self) -> list[psutil.Process]:
        """The Dask worker processes (multiprocessing children of the nannies)."""
        return self.dask.worker_processes()

    def health(self) -> bool:
        """Whether the collector answers ``/health``."""
        try:
            return requests.get(f"{self.url}/health", timeout=2).ok
        except requests.RequestException:
            return False

    def ready(self) -> dict:
        """The collector's ``/ready`` answer (empty when it does not answer)."""
        try:
            return requests.get(f"{self.url}/ready", timeout=5).json()
        except (requests.RequestException, ValueError):
            return {}

    def stop(self, timeout: float = 180.0) -> int | None:
        """SIGINT, as Ctrl-C; the exit status, or None when it had to be killed."""
        if self.popen is None:
            return None
        if self.popen.poll() is not None:
            return self.popen.returncode
        self.remember_descendants()
        self.popen.send_signal(signal.SIGINT)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("logwarden up did not stop within %.0fs; killing it and its children", timeout)
            self.kill()
            return None

    def kill(self) -> None:
        """Kill ``logwarden up`` and every descendant it had."""
        procs = [p for p in self.descendants.values() if p.is_running()]
        if self.popen and self.popen.poll() is None:
            procs.append(psutil.Process(self.popen.pid))
        terminate(procs, timeout=5)

    def strays(self) -> list[str]:
        """Descendants still running after the stop."""
        alive = []
        for proc in self.descendants.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                continue
        return alive


def role_of(proc: psutil.Process, stack: StackProcess) -> str:
    """A short name for what ``proc`` is."""
    if stack.popen is not None and proc.pid == stack.popen.pid:
        return "logwarden up"
    line = " ".join(cmdline(proc))
    if "logwarden" in line and "collector" in line:
        return "collector"
    if "resource_tracker" in line:
        return "multiprocessing resource_tracker"
    dask = dask_cluster.role(proc)
    if dask is not None:
        return dask
    if line.startswith("ray::"):
        return "ray " + line[5:].split(".")[0].split()[0]
    for name in ("gcs_server", "raylet", "dashboard", "log_monitor", "runtime_env", "monitor.py"):
        if name in line:
            return f"ray {name}"
    return "other: " + (os.path.basename(cmdline(proc)[0]) if cmdline(proc) else "?")


class MemorySampler(threading.Thread):
    """Samples the RSS of every process of the soak's stack once a second; keeps the peak per role."""

    def __init__(self, stack: StackProcess, ray: RayHead, interval: float = 1.0) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.stack, self.ray, self.interval = stack, ray, interval
        self.peak: dict[str, float] = defaultdict(float)
        self.peak_pid: dict[str, int] = {}
        self.first: dict[str, float] = {}  # the role's largest RSS at its first sample
        self.last: dict[str, float] = {}  # ... and at its last sample (growth over the run)
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until ``stop``."""
        while not self._stop_event.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """One pass over the processes."""
        procs = self.stack.children() + self.ray.processes() + self.stack.dask.processes()
        if self.stack.popen is not None:
            try:
                procs.append(psutil.Process(self.stack.popen.pid))
            except psutil.NoSuchProcess:
                pass
        procs.append(psutil.Process(os.getpid()))
        now: dict[str, float] = defaultdict(float)
        for proc in procs:
            try:
                rss = proc.memory_info().rss / MB
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if not rss:
                continue  # a process on its way out
            role = "soak (load generator)" if proc.pid == os.getpid() else role_of(proc, self.stack)
            now[role] = max(now[role], rss)
            if rss > self.peak[role]:
                self.peak[role] = rss
                self.peak_pid[role] = proc.pid
        for role, rss in now.items():
            self.first.setdefault(role, rss)
            self.last[role] = rss

    def stop(self) -> None:
        """Stop sampling."""
        self._stop_event.set()
        self.join(timeout=5)
