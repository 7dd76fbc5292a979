"""Shared helpers of the file-source tests: a real ``logwarden collector`` process, spool reading."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(data: Path, port: int, config: Path, log: Path | None = None) -> subprocess.Popen:
    """``logwarden collector`` (HTTP only) on ``port``, once it answers /health."""
    command = [sys.executable, "-m", "logwarden", "--log-level", "INFO", "collector", "--data-dir", str(data), "--http-port", str(port),
               "--no-tcp", "--no-syslog", "--config", str(config)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"collector exited with {process.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("collector did not start")


def spooled_rows(data: Path) -> list[dict]:
    """Every row of the spool's batches."""
    rows: list[dict] = []
    for path in sorted((data / "spool").glob("*.parquet")):
        try:
            rows += pq.read_table(path).to_pylist()
        except OSError:  # renamed away meanwhile
            continue
    return rows


def lines_on_disk(folder: Path, stem: str) -> list[bytes]:
    """The lines of every file of ``folder`` named after ``stem`` (gzip decompressed)."""
    lines: list[bytes] = []
    for path in sorted(folder.glob(f"{stem}*")):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines += [line for line in data.split(b"\n") if line.strip()]
    return lines


class InProcessCollector:
    """A CollectorServer with file sources, on its own event loop in a thread (HTTP on a free port only)."""

    def __init__(self, root: Path, sources_yaml: str, collector_yaml: str = "") -> None:
        import asyncio
        import threading

        from logwarden.collector.server import CollectorServer
        from logwarden.common.paths import DataDir
        from logwarden.settings import parse_settings

        settings = parse_settings(
            "collector:\n  http_port: 0\n  tcp_port: null\n  syslog_port: null\n"
            "  timestamp_skew: {max_future: 3650d, max_past: 3650d}\n  batch: {max_age: 50ms}\n"
            + collector_yaml + "sources:\n" + sources_yaml
        )
        self.root = root
        self.server = CollectorServer(DataDir.at(root), settings.collector, None, settings.sources)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "InProcessCollector":
        self.thread.start()
        self.call(self.server.start())
        return self

    def call(self, coroutine, timeout: float = 30.0):  # noqa: ANN001, ANN201
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def sources(self):  # noqa: ANN201
        return self.server.sources

    def rows(self) -> list[dict]:
        return spooled_rows(self.root)

    def wait_for_rows(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        rows = self.rows()
        while len(rows) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = self.rows()
        return rows
