"""Real processes for end-to-end tests: a Ray head, a Dask scheduler and worker, and ``logwarden up``."""
from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import requests

from logwarden.testing.cluster import BIN, RAY_ENV, RayHead, free_port, terminate

__all__ = ["DaskPair", "RayHead", "StackProcess", "free_port"]


class DaskPair:
    """``dask scheduler`` plus one ``dask worker``, on 127.0.0.1."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self) -> "DaskPair":
        """Start both and wait until the worker has registered."""
        self._spawn("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--dashboard-address", "127.0.0.1:0"])
        self._spawn("worker", [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1", "--nworkers", "1",
                               "--nthreads", "1", "--no-dashboard", "--memory-limit", "2GiB"])
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=60)
        return self

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.log_dir / f"dask-{name}.log", "wb")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True))

    def stop(self) -> None:
        """Stop the worker, then the scheduler, with their children."""
        procs = []
        for popen in reversed(self.processes):
            try:
                parent = psutil.Process(popen.pid)
                procs += parent.children(recursive=True) + [parent]
            except psutil.NoSuchProcess:
                pass
        terminate(procs)



def free_ports(count: int) -> list[int]:
    """``count`` consecutive free ports (as ``--collector-admin-port`` hands them out)."""
    while True:
        first = free_port()
        ports = list(range(first, first + count))
        if all(_bindable(port) for port in ports[1:]):
            return ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class StackProcess:
    """``logwarden up`` as a child process, with the helpers a test needs to look at it.

    With ``cert`` (the stack's certificate), the helpers speak TLS and verify against it; with
    ``ingest_token`` and ``read_token``, they send records and read metrics with those tokens."""

    def __init__(self, data_dir: Path, ray: "RayHead | None", extra: list[str] = (), cert: Path | None = None,
                 ingest_token: str | None = None, read_token: str | None = None, collectors: int = 1) -> None:
        self.data_dir = data_dir
        self.cert = cert
        self.ingest_token = ingest_token
        self.read_token = read_token
        self.env = {**os.environ, **RAY_ENV, **(ray.env if ray else {})}
        self.http_port, self.tcp_port, self.api_port = free_port(), free_port(), free_port()
        self.command = [sys.executable, "-m", "logwarden", "up", "--data-dir", str(data_dir), "--no-dashboards",
                        "--http-port", str(self.http_port), "--tcp-port", str(self.tcp_port),
                        "--api-port", str(self.api_port), "--syslog-port", str(free_port()), *extra]
        if ray:
            self.command += ["--ray-address", ray.address]
        # several collectors: each one's /metrics is on its own admin port (the shared port answers for any)
        self.admin_ports = free_ports(collectors) if collectors > 1 else []
        if self.admin_ports:
            self.command += ["--collectors", str(collectors), "--collector-admin-port", str(self.admin_ports[0])]
        self.log_path = data_dir.parent / f"{data_dir.name}-up.log"
        self.popen: subprocess.Popen | None = None
        self.descendants: dict[int, psutil.Process] = {}

    @property
    def scheme(self) -> str:
        return "https" if self.cert else "http"

    @property
    def http_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def api_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.api_port}"

    @property
    def verify(self) -> str | bool:
        """``verify=`` for requests (per request: a session's is replaced by REQUESTS_CA_BUNDLE)."""
        return str(self.cert) if self.cert else True

    @staticmethod
    def bearer(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def start(self, timeout: float = 120.0) -> "StackProcess":
        """Start and wait for the 'logwarden is up' line."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"logwarden up exited {self.popen.returncode}:\n{self.output()}")
            if "logwarden is up" in self.output():
                self.record_descendants()
                return self
            time.sleep(0.2)
        raise AssertionError(f"logwarden up did not come up in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def record_descendants(self) -> None:
        """Remember every process started under this one (to check none is left behind)."""
        try:
            for proc in psutil.Process(self.popen.pid).children(recursive=True):
                self.descendants[proc.pid] = proc
        except psutil.NoSuchProcess:
            pass

    def outbox(self) -> list[dict]:
        path = self.data_dir / "alerts" / "outbox.jsonl"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.record_descendants()
            result = predicate()
            if result:
                return result
            if self.popen.poll() is not None:
                raise AssertionError(f"logwarden up exited while waiting for {what}:\n{self.output()[-5000:]}")
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.output()[-5000:]}")

    def post(self, body: bytes, content_type: str = "application/x-ndjson") -> dict:
        response = requests.post(f"{self.http_url}/v1/logs", data=body, timeout=30, verify=self.verify,
                                 headers={"Content-Type": content_type, **self.bearer(self.ingest_token)})
        assert response.status_code == 200, response.text
        return response.json()

    def accepted(self, protocol: str) -> float:
        """Records the collectors report accepted over ``protocol`` (from /metrics)."""
        if self.admin_ports:
            return sum(self.accepted_by(port, protocol) for port in self.admin_ports)
        return self.accepted_by(self.http_port, protocol)

    def accepted_by(self, port: int, protocol: str) -> float:
        """Records the collector whose /metrics is on ``port`` reports accepted over ``protocol``."""
        answer = requests.get(f"{self.scheme}://127.0.0.1:{port}/metrics", headers=self.bearer(self.read_token),
                              timeout=10, verify=self.verify)
        assert answer.status_code == 200, answer.text
        text = answer.text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("logwarden_collector_records_accepted_total{"):
                labels, _, value = line.rpartition(" ")
                if re.search(f'protocol="[^"]*{protocol}[^"]*"', labels):
                    total += float(value)
        return total

    def send_tcp(self, lines: list[bytes]) -> None:
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=30) as sock:
            if self.cert:
                with ssl.create_default_context(cafile=str(self.cert)).wrap_socket(
                        sock, server_hostname="127.0.0.1") as tls:
                    tls.sendall(b"".join(line + b"\n" for line in lines))
                return
            sock.sendall(b"".join(line + b"\n" for line in lines))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 90.0) -> int:
        """Signal it as Ctrl-C would and wait; returns the exit status."""
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else 0
        self.record_descendants()
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"logwarden up did not stop within {timeout}s:\n{self.output()[-5000:]}")

    def kill(self) -> None:
        procs = list(self.descendants.values())
        if self.popen and self.popen.poll() is None:
            procs.append(psutil.Process(self.popen.pid))
        terminate(procs, timeout=5)

    def stray_processes(self, grace: float = 5.0) -> list[str]:
        """Descendants still running ``grace`` seconds after the stack stopped (helpers such as
        multiprocessing's resource tracker exit once the last pipe to them closes)."""
        _, still = psutil.wait_procs(list(self.descendants.values()), timeout=grace)
        alive = []
        for proc in still:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                continue
        return alive
