"""An external Dask cluster for tests and the soak, run the way a cluster user runs one: a ``dask scheduler``
and a ``dask worker --nworkers N`` (a nanny per worker process) on 127.0.0.1, each started again when it
exits, as a service manager would (``Restart=always``, same port)."""
from __future__ import annotations

import logging
import subprocess
import threading
import time
from pathlib import Path

import psutil

from logwarden.testing.cluster import BIN, cmdline, free_port, terminate

log = logging.getLogger(__name__)
RESTART_DELAY = 0.5  # seconds between an exit and the restart (systemd's RestartSec)
SCHEDULER, WORKER = "scheduler", "worker"


class DaskCluster:
    """``dask scheduler`` plus ``dask worker --nworkers workers --nthreads 1``, supervised."""

    def __init__(self, log_dir: Path, workers: int = 2) -> None:
        self.log_dir = log_dir
        self.workers = workers
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.restarts = {SCHEDULER: 0, WORKER: 0}
        self._popen: dict[str, subprocess.Popen] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def _command(self, name: str) -> list[str]:
        if name == SCHEDULER:
            return [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                    "--dashboard-address", "127.0.0.1:0"]
        return [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1", "--nworkers", str(self.workers),
                "--nthreads", "1", "--no-dashboard"]

    def _spawn(self, name: str) -> None:
        with open(self.log_dir / f"dask-{name}.log", "ab") as out:
            self._popen[name] = subprocess.Popen(self._command(name), stdout=out, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, start_new_session=True)

    def start(self, timeout: float = 90.0) -> "DaskCluster":
        """Start both, and the supervisor; wait until every worker has registered."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._spawn(SCHEDULER)
            self._spawn(WORKER)
        self._supervisor = threading.Thread(target=self._supervise, name="dask-supervisor", daemon=True)
        self._supervisor.start()
        if not self.wait_for_workers(timeout):
            raise RuntimeError(f"the Dask workers did not register with {self.address} within {timeout:.0f}s")
        return self

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                for name, popen in list(self._popen.items()):
                    if popen.poll() is None or self._stopping.is_set():
                        continue
                    log.warning("dask %s (pid %d) exited with %s; starting it again", name, popen.pid,
                                popen.returncode)
                    time.sleep(RESTART_DELAY)
                    self.restarts[name] += 1
                    self._spawn(name)

    def wait_for_workers(self, timeout: float) -> bool:
        """Whether ``workers`` workers are registered with the scheduler within ``timeout`` seconds."""
        from distributed import Client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with Client(self.address, timeout="5s") as client:
                    client.wait_for_workers(self.workers, timeout=max(1.0, deadline - time.monotonic()))
                    return True
            except (OSError, TimeoutError):
                time.sleep(0.5)
        return False

    def scheduler(self) -> psutil.Process | None:
        """The running scheduler process."""
        popen = self._popen.get(SCHEDULER)
        if popen is None or popen.poll() is not None:
            return None
        try:
            return psutil.Process(popen.pid)
        except psutil.NoSuchProcess:
            return None

    def kill_scheduler(self) -> int:
        """SIGKILL the scheduler (the supervisor starts it again on the same port); its pid."""
        proc = self.scheduler()
        if proc is None:
            raise RuntimeError("no Dask scheduler is running")
        proc.kill()
        return proc.pid

    def processes(self) -> list[psutil.Process]:
        """The scheduler, the worker command (nannies) and their descendants."""
        found: list[psutil.Process] = []
        for popen in list(self._popen.values()):
            try:
                parent = psutil.Process(popen.pid)
                found += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def worker_processes(self) -> list[psutil.Process]:
        """The worker processes (the nannies' multiprocessing children)."""
        return [p for p in self.processes() if _is_worker_process(p)]

    def stop(self) -> None:
        """Stop supervising, then the workers and the scheduler with their children."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
        terminate(self.processes())


def _is_worker_process(proc: psutil.Process) -> bool:
    line = " ".join(cmdline(proc))
    return "multiprocessing" in line and "resource_tracker" not in line and "forkserver" not in line


def role(proc: psutil.Process) -> str | None:
    """``dask scheduler``, ``dask nanny`` (the ``dask worker`` command) or ``dask worker`` (a worker
    process), or None for a process of another kind."""
    line = " ".join(cmdline(proc))
    if _is_worker_process(proc):
        return "dask worker"
    if "dask" in line and " scheduler" in line:
        return "dask scheduler"
    if "dask" in line and " worker" in line:
        return "dask nanny"
    return None
