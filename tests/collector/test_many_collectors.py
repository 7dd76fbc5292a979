"""Several `logwarden collector` processes on one data dir and the same port (SO_REUSEPORT): the kernel
spreads connections over them, each answers /health and /metrics on its own admin port, a second collector
with the same write-ahead log is refused, and after a `kill -9` of one of them (never restarted) the first
collector adopts its write-ahead segments on its next start: every acknowledged record is spooled once."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import requests

from tests.collector.helpers import spooled_rows
from tests.collector.test_durability import free_port

REPO = Path(__file__).resolve().parents[2]


def collector(data: Path, port: int, admin: int, instance: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "logwarden", "collector", "--data-dir", str(data), "--http-port", str(port),
               "--no-tcp", "--no-syslog", "--no-forward", "--reuse-port", "--admin-port", str(admin)]
    if instance:
        command += ["--instance", instance]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_healthy(admin: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            if requests.get(f"http://127.0.0.1:{admin}/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.05)
    raise AssertionError("collector did not start")


def accepted(admin: int) -> float:
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    return sum(float(v) for v in re.findall(r'^logwarden_collector_records_accepted_total\{[^}]*\} (\S+)$', text, re.M))


def send(port: int, first: int, count: int) -> list[str]:
    """``count`` requests of 20 records, each on a new connection; the messages acknowledged."""
    acked = []
    for n in range(first, first + count):
        messages = [f"r{n}-{i}" for i in range(20)]
        body = b"\n".join(orjson.dumps({"timestamp": "2026-11-22T10:00:00Z", "level": "INFO", "service": "svc",
                                        "message": m}) for m in messages)
        answer = requests.post(f"http://127.0.0.1:{port}/v1/logs", data=body,
                               headers={"Content-Type": "application/x-ndjson", "Connection": "close"}, timeout=10)
        assert answer.status_code == 200, answer.text
        acked += messages
    return acked


def test_collectors_share_a_port_and_a_stopped_ones_records_are_adopted(tmp_path):
    data, port = tmp_path / "data", free_port()
    admins = [free_port(), free_port()]
    first = collector(data, port, admins[0])
    second = collector(data, port, admins[1], "c2")
    try:
        wait_healthy(admins[0], first)
        wait_healthy(admins[1], second)
        twin = collector(data, free_port(), free_port(), "c2")
        assert twin.wait(30) == 1
        assert "locked" in twin.stderr.read().decode()

        acked = send(port, 0, 60)
        counts = [accepted(admin) for admin in admins]
        assert sum(counts) == len(acked) and min(counts) > 0, counts  # both took connections
        assert list((data / "wal" / "c2").glob("*.wal")), "the second collector keeps its own write-ahead log"

        second.send_signal(signal.SIGKILL)  # its open batch stays in wal/c2, acknowledged
        second.wait(10)
        acked += send(port, 60, 20)  # the first collector takes every connection now
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        first = collector(data, port, admins[0])  # starts alone: adopts wal/c2
        wait_healthy(admins[0], first)
        deadline = time.monotonic() + 30
        while len(spooled_rows(data)) < len(acked) and time.monotonic() < deadline:
            time.sleep(0.2)
        spooled = Counter(row["message"] for row in spooled_rows(data))
        assert spooled == Counter(acked)  # every acknowledged record once
        assert not list((data / "wal" / "c2").glob("*.wal"))
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait(10)
