"""Run the collector as a child process: start it, wait until it answers, restart it if it dies, stop it."""
from __future__ import annotations

import logging
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import orjson
import psutil

from logwarden.common.atomic import write_bytes_atomic
from logwarden.common.parentdeath import parent_env
from logwarden.common.tls import local_opener

log = logging.getLogger(__name__)


class CollectorProcess:
    """``logwarden collector`` as a supervised child process.

    The child stops by itself when its parent dies (``LOGWARDEN_PARENT_PID``,
    ``common.parentdeath``), and its pid is kept in ``collector.pid`` next to its log: a collector
    left over by a ``logwarden up`` that was killed (still flushing, or on a system where it did not
    notice) is stopped before a new one starts on the same data dir and ports.

    The child reads the same config file, so it serves TLS when a certificate is configured; its
    health is then probed over https with ``ssl_context`` (which trusts that certificate).

    One of several collectors on the same ports (``logwarden up --collectors N``): ``reuse_port``, an
    ``instance`` name (its own write-ahead log; None for the first) and an ``admin_port`` where its own
    health is probed (the shared port would answer for any of them)."""

    def __init__(self, data_dir: Path, host: str, http_port: int, tcp_port: int | None, config: str | None,
                 log_path: Path, syslog_port: int | None = None, ssl_context: ssl.SSLContext | None = None,
                 forward_port: int | None = None, *, instance: str | None = None, admin_port: int | None = None,
                 reuse_port: bool = False) -> None:
        self.command = [sys.executable, "-m", "logwarden", "collector", "--data-dir", str(data_dir),
                        "--host", host, "--http-port", str(http_port)]
        self.command += ["--no-tcp"] if tcp_port is None else ["--tcp-port", str(tcp_port)]
        if syslog_port is not None:
            self.command += ["--syslog-port", str(syslog_port)]
        if forward_port is not None:
            self.command += ["--forward-port", str(forward_port)]
        if config:
            self.command += ["--config", config]
        if instance:
            self.command += ["--instance", instance]
        if reuse_port:
            self.command += ["--reuse-port"]
        if admin_port is not None:
            self.command += ["--admin-port", str(admin_port)]
        self.name = f"collector {instance}" if instance else "collector"
        self._opener = local_opener(ssl_context)
        probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        probe_host = f"[{probe_host}]" if ":" in probe_host else probe_host
        probe_port = http_port if admin_port is None else admin_port
        self.health_url = f"{'https' if ssl_context else 'http'}://{probe_host}:{probe_port}/health"
        self.log_path = log_path
        self.pid_path = log_path.parent / (f"collector-{instance}.pid" if instance else "collector.pid")
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self.orphans_stopped = 0

    def start(self, timeout: float = 60.0) -> None:
        """Stop a collector left over by a previous ``logwarden up``, start the collector and wait until
        ``/health`` answers."""
        self.stop_orphan()
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, stdout=log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env={**os.environ, **parent_env()})
        log_file.close()
        self._write_pid(self.process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if self._healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {self.health_url} within {timeout:.0f}s")

    def _write_pid(self, pid: int) -> None:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            return  # already gone: start() reports it
        write_bytes_atomic(orjson.dumps({"pid": pid, "created": created, "command": self.command}), self.pid_path)

    def orphan(self) -> psutil.Process | None:
        """The collector named in ``collector.pid``, if it still runs and is not this supervisor's child
        (same pid and start time: a recycled pid is not taken for it)."""
        try:
            info = orjson.loads(self.pid_path.read_bytes())
            proc = psutil.Process(int(info["pid"]))
            if abs(proc.create_time() - float(info["created"])) > 0.01 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError, psutil.Error):
            return None
        if self.process is not None and proc.pid == self.process.pid:
            return None
        return proc

    def stop_orphan(self, timeout: float = 30.0) -> bool:
        """SIGTERM the left-over collector (then SIGKILL after ``timeout``); whether there was one."""
        proc = self.orphan()
        if proc is None:
            return False
        log.warning("a %s (pid %d) left over by a previous run still runs; stopping it", self.name, proc.pid)
        try:
            proc.terminate()
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        except psutil.NoSuchProcess:
            pass
        self.orphans_stopped += 1
        return True

    def _healthy(self) -> bool:
        try:
            with self._opener.open(self.health_url, timeout=1) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError, ValueError):  # ssl.SSLError is an OSError
            return False

    def alive(self) -> bool:
        """Whether the child is running."""
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> None:
        """Restart the collector if it died (its write-ahead log recovers what it acknowledged)."""
        if self.process is not None and not self.alive():
            log.error("%s exited with %s; restarting", self.name, self.process.returncode)
            self.restarts += 1
            self.start()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the collector flushes its open batch), then SIGKILL after ``timeout``."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within %.0fs; killing it", self.name, timeout)
            self.process.kill()
            self.process.wait()
        self.pid_path.unlink(missing_ok=True)
