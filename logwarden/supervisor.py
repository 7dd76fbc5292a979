"""Run the collector as a child process: start it, wait until it answers, restart it if it dies, stop it."""
from __future__ import annotations

import logging
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from logwarden.common.tls import local_opener

log = logging.getLogger(__name__)


class CollectorProcess:
    """``logwarden collector`` as a supervised child process.

    The child reads the same config file, so it serves TLS when a certificate is configured; its
    health is then probed over https with ``ssl_context`` (which trusts that certificate)."""

    def __init__(self, data_dir: Path, host: str, http_port: int, tcp_port: int | None, config: str | None,
                 log_path: Path, syslog_port: int | None = None, ssl_context: ssl.SSLContext | None = None,
                 forward_port: int | None = None) -> None:
        self.command = [sys.executable, "-m", "logwarden", "collector", "--data-dir", str(data_dir),
                        "--host", host, "--http-port", str(http_port)]
        self.command += ["--no-tcp"] if tcp_port is None else ["--tcp-port", str(tcp_port)]
        if syslog_port is not None:
            self.command += ["--syslog-port", str(syslog_port)]
        if forward_port is not None:
            self.command += ["--forward-port", str(forward_port)]
        if config:
            self.command += ["--config", config]
        self._opener = local_opener(ssl_context)
        probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        probe_host = f"[{probe_host}]" if ":" in probe_host else probe_host
        self.health_url = f"{'https' if ssl_context else 'http'}://{probe_host}:{http_port}/health"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self, timeout: float = 60.0) -> None:
        """Start the collector and wait until ``/health`` answers."""
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, stdout=log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited with {self.process.returncode}; see {self.log_path}")
            if self._healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"collector did not answer {self.health_url} within {timeout:.0f}s")

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
            log.error("collector exited with %s; restarting", self.process.returncode)
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
            log.error("collector did not stop within %.0fs; killing it", timeout)
            self.process.kill()
            self.process.wait()
