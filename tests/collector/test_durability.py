"""kill -9 in the middle of traffic: every acknowledged record reaches the spool exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import requests

from tests.collector.helpers import spooled_rows

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(data: Path, port: int, config: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "logwarden",
        "collector",
        "--data-dir",
        str(data),
        "--http-port",
        str(port),
        "--tcp-port",
        "0",
        "--syslog-port",
        "0",
        "--config",
        str(config),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("collector did not start")


def batch(client: int, number: int, size: int) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "timestamp": "2026-11-22T10:00:00Z",
                "level": "INFO",
                "service": "svc",
                "message": f"c{client}-b{number}-r{i}",
            }
        )
        + b"\n"
        for i in range(size)
    )


def test_kill_9_loses_and_duplicates_no_acknowledged_record(tmp_path):
    config = tmp_path / "logwarden.yaml"
    # Small, fast-rolling batches so the kill lands among open, closing and spooled batches.
    config.write_text(
        "collector:\n  batch: {max_records: 700, max_age: 50ms}\n"
        "  timestamp_skew: {max_future: 3650d, max_past: 3650d}\n"
    )
    data, port = tmp_path / "data", free_port()
    process = start_collector(data, port, config)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        session = requests.Session()
        for n in range(10_000):
            if stop.is_set():
                return
            body = batch(number, n, 250)
            try:
                response = session.post(f"http://127.0.0.1:{port}/v1/logs", data=body, timeout=5)
            except requests.RequestException:
                return
            if response.status_code == 200:
                with lock:
                    acknowledged.extend(orjson.loads(line)["message"] for line in body.splitlines())

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20

    def open_batch_holds_records() -> bool:
        return any(path.stat().st_size for path in (data / "wal").glob("*.wal") if path.exists())

    # kill once batches have been spooled and the open one holds acknowledged records
    while time.monotonic() < deadline and (
        len(acknowledged) < 20_000 or not list((data / "spool").glob("*")) or not open_batch_holds_records()
    ):
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 5_000
    assert any(
        path.stat().st_size for path in (data / "wal").glob("*.wal")
    ), "the kill left nothing to recover"

    process = start_collector(data, port, config)  # recovers the write-ahead log
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    counts = Counter(row["message"] for row in spooled_rows(data))
    assert not [message for message, count in counts.items() if count > 1], "duplicated records"
    missing = set(acknowledged) - set(counts)
    assert not missing, f"{len(missing)} acknowledged records lost"
    assert not list((data / "wal").glob("*.wal"))
