"""The real logrotate (create and copytruncate, with compress) rotates a file that a writer keeps appending
to, while the collector process that follows it is killed with -9 and restarted: every line that is in
the files at the end (the current one and the gzip-compressed rotated ones) was written ahead once, and
no line twice. (logrotate's copytruncate loses the lines written between its copy and its truncation:
those are in no file; they reach the spool only if they were read before the truncation.)"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.sources.helpers import free_port, lines_on_disk, spooled_rows, start_collector

LOGROTATE = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None)
pytestmark = pytest.mark.skipif(LOGROTATE is None, reason="logrotate is not installed (apt-get install logrotate)")


class Writer(threading.Thread):
    """Appends numbered lines, opening the file for each write (as a program that reopens its log)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.written = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stopping.is_set():
            lines = "".join(
                f"2026-11-22T10:00:00.000Z INFO line {self.written + i:07d} {'x' * rng.randint(0, 120)}\n"
                for i in range(rng.randint(1, 20))
            )
            with open(self.path, "a") as handle:
                handle.write(lines)
            self.written += lines.count("\n")
            time.sleep(0.002)


def numbers(lines: list[bytes]) -> list[int]:
    return [int(line.split(b" line ")[1].split()[0]) for line in lines]


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_rotation_and_kill_9_lose_and_repeat_nothing(tmp_path: Path, mode: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log_file = logs / "app.log"
    log_file.touch()
    rotate_conf = tmp_path / "logrotate.conf"
    rotate_conf.write_text(f"{log_file} {{\n  rotate 1000\n  {mode}\n  compress\n  missingok\n}}\n")
    state = tmp_path / "logrotate.state"
    config = tmp_path / "logwarden.yaml"
    config.write_text(
        "collector:\n  batch: {max_records: 2000, max_age: 100ms}\n"
        "  timestamp_skew: {max_future: 3650d, max_past: 3650d}\n"
        f"sources:\n  - type: file\n    paths: ['{log_file}']\n    rotate_wait: 1s\n"
    )
    data, port = tmp_path / "data", free_port()
    collector = start_collector(data, port, config, tmp_path / "collector.log")
    writer = Writer(log_file)
    writer.start()
    rng = random.Random(mode)
    kills = 0
    try:
        for rotation in range(8):
            time.sleep(rng.uniform(0.4, 1.0))
            subprocess.run([LOGROTATE, "-f", "-s", str(state), str(rotate_conf)], check=True)
            if rotation in (2, 5):  # kill right after a rotation, rotate once more while it is down
                time.sleep(rng.uniform(0.0, 0.3))
                collector.send_signal(signal.SIGKILL)
                collector.wait()
                kills += 1
                time.sleep(0.3)
                subprocess.run([LOGROTATE, "-f", "-s", str(state), str(rotate_conf)], check=True)
                collector = start_collector(data, port, config, tmp_path / "collector.log")
        time.sleep(rng.uniform(0.2, 0.6))
        collector.send_signal(signal.SIGKILL)  # and once in the middle of the writing
        collector.wait()
        kills += 1
        collector = start_collector(data, port, config, tmp_path / "collector.log")
        time.sleep(1.0)
    finally:
        writer.stopping.set()
        writer.join()
    on_disk = numbers(lines_on_disk(logs, "app.log"))
    assert len(on_disk) == len(set(on_disk)) and len(on_disk) > 1000
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(spooled_rows(data)) < len(on_disk):
        time.sleep(0.5)
    time.sleep(1.5)  # a duplicate would come now
    collector.send_signal(signal.SIGTERM)
    assert collector.wait(30) == 0
    spooled = Counter(int(row["message"].split()[1]) for row in spooled_rows(data))
    repeated = sorted(number for number, count in spooled.items() if count > 1)
    lost = sorted(set(on_disk) - set(spooled))
    invented = sorted(set(spooled) - set(range(writer.written)))
    assert kills == 3 and len(list(logs.glob("app.log.*.gz"))) >= 9
    assert not repeated, f"{len(repeated)} lines written ahead twice, e.g. {repeated[:5]}"
    assert not lost, f"{len(lost)} of {len(on_disk)} lines lost, e.g. {lost[:5]}"
    assert not invented, f"{len(invented)} lines that were never written, e.g. {invented[:5]}"
    if mode == "create":  # nothing lost by logrotate itself either
        assert len(on_disk) == writer.written
    assert not list((data / "wal").glob("*.wal"))
