"""File tailing benchmark: lines/s acknowledged into the collector's write-ahead log, against plain Python.

Starts ``logwarden collector`` as a child process (default configuration: fsync'ed write-ahead log, group
commit, 50k-record / 1 s Parquet batches) with a ``sources:`` section over an empty folder, then:

- ``one_growing_file``: a writer thread appends ``--lines`` native JSON records (``format: json``: the
  columnar fast path on whole blocks) to one file in 1 MiB writes; lines/s from the first write until
  the collector's ``logwarden_collector_records_accepted_total{protocol="file"}`` counts them all (the
  counter moves once the write-ahead log's fsync covered them);
- ``many_small_files``: ``--files`` files of ``--lines // --files`` lines each, created while it runs;
- ``text_lines``: ``--text-lines`` lines of ``TIME LEVEL message`` text (``format: auto``: every line parsed
  by ``logwarden.formats``, the per-line path);
- ``agent``: ``logwarden agent`` ships the text file to the collector (lines/s acknowledged by it), and its
  peak RSS;
- the reference: plain Python line iteration (``for line in open(path, "rb")``) over the same files, in
  this process, in the same run; and the collector's peak RSS (sampled every 50 ms).

Prints one JSON document. Usage: ``python bench/sources.py [--lines 1000000] [--files 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
SERVICES = ["payment-service", "auth-service", "checkout", "inventory", "search-api"]
LEVELS = ["INFO"] * 8 + ["WARNING", "ERROR", "DEBUG"]
_ACCEPTED = re.compile(r'^logwarden_collector_records_accepted_total\{protocol="file"\} (\S+)$', re.M)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def json_lines(count: int, seed: int, tag: str) -> bytes:
    """``count`` native JSON records (timestamps near now), distinct per ``tag``."""
    rng = random.Random(seed)
    now = time.time()
    out = []
    for i in range(count):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - rng.random() * 60))
        out.append(orjson.dumps({
            "timestamp": f"{stamp}.{rng.randrange(1000):03d}Z", "level": rng.choice(LEVELS),
            "service": rng.choice(SERVICES),
            "message": f"{tag} request {i} for order {rng.randrange(10**9)} completed with status "
                       f"{rng.choice([200, 201, 404, 500])}",
            "request_id": f"{rng.getrandbits(64):016x}", "duration_ms": round(rng.random() * 250, 3),
        }))
    return b"\n".join(out) + b"\n"


def text_lines(count: int, seed: int) -> bytes:
    rng = random.Random(seed)
    now = time.time()
    out = []
    for i in range(count):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - rng.random() * 60))
        out.append(f"{stamp}.{rng.randrange(1000):03d}Z {rng.choice(LEVELS)} {rng.choice(SERVICES)}: request {i} "
                   f"took {rng.randrange(900)} ms for user u-{rng.randrange(10**6)}".encode())
    return b"\n".join(out) + b"\n"


class Collector:
    """``logwarden collector`` with file sources in a child process, its peak RSS sampled."""

    def __init__(self, data: Path, logs: Path) -> None:
        self.port = free_port()
        config = data.parent / "logwarden.yaml"
        config.write_text(
            "collector:\n  timestamp_skew: {max_future: 1h, max_past: 30d}\n"
            f"sources:\n  - type: file\n    name: json\n    paths: ['{logs}/*.json']\n    format: json\n"
            f"  - type: file\n    name: text\n    paths: ['{logs}/*.log']\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "logwarden", "collector", "--data-dir", str(data), "--http-port", str(self.port),
             "--no-tcp", "--no-syslog", "--config", str(config)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.peak_rss = 0
        self._stop = threading.Event()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        proc = psutil.Process(self.process.pid)
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def accepted(self) -> int:
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        match = _ACCEPTED.search(text)
        return int(float(match.group(1))) if match else 0

    def wait_for(self, total: int, timeout: float = 600.0) -> float:
        """Seconds (monotonic) when the accepted count reached ``total``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.accepted() >= total:
                return time.monotonic()
            time.sleep(0.02)
        raise RuntimeError(f"only {self.accepted()} of {total} lines acknowledged")

    def stop(self) -> None:
        self._stop.set()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def python_lines(paths: list[Path]) -> tuple[int, float]:
    """Plain Python line iteration over ``paths``: (lines, seconds)."""
    started = time.perf_counter()
    count = 0
    for path in paths:
        with open(path, "rb") as handle:
            for _ in handle:
                count += 1
    return count, time.perf_counter() - started


def write_growing(path: Path, data: bytes, block: int = 1 << 20) -> None:
    with open(path, "ab") as handle:
        for start in range(0, len(data), block):
            handle.write(data[start:start + block])
            handle.flush()


def run(args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    logs = root / "logs"
    logs.mkdir()
    result: dict = {"load_average_at_start": os.getloadavg()[0]}
    try:
        one = json_lines(args.lines, 1, "one")
        per_file = max(1, args.lines // args.files)
        small = [json_lines(per_file, 100 + n, f"f{n}") for n in range(args.files)]
        text = text_lines(args.text_lines, 2)
        collector = Collector(root / "data", logs)
        try:
            time.sleep(1.0)
            started = time.monotonic()
            write_growing(logs / "one.json", one)
            done = collector.wait_for(args.lines)
            result["one_growing_file"] = {"lines": args.lines, "mb": round(len(one) / 1e6, 1),
                                          "lines_per_s": round(args.lines / (done - started))}
            base = collector.accepted()
            started = time.monotonic()
            for n, data in enumerate(small):
                (logs / f"small-{n:04d}.json").write_bytes(data)
            done = collector.wait_for(base + per_file * args.files)
            result["many_small_files"] = {"files": args.files, "lines": per_file * args.files,
                                          "lines_per_s": round(per_file * args.files / (done - started))}
            base = collector.accepted()
            started = time.monotonic()
            write_growing(logs / "text.log", text)
            done = collector.wait_for(base + args.text_lines)
            result["text_lines"] = {"lines": args.text_lines, "format": "auto (detected: text)",
                                    "lines_per_s": round(args.text_lines / (done - started))}
            result["agent"] = agent_run(root, logs, text, collector)
        finally:
            collector.stop()
        result["collector_peak_rss_mb"] = round(collector.peak_rss / 1e6, 1)
        count, seconds = python_lines([logs / "one.json"])
        result["reference_python_lines_per_s"] = {"one_file": round(count / seconds)}
        count, seconds = python_lines(sorted(logs.glob("small-*.json")))
        result["reference_python_lines_per_s"]["many_small_files"] = round(count / seconds)
        result["one_file_vs_python"] = round(result["one_growing_file"]["lines_per_s"]
                                             / result["reference_python_lines_per_s"]["one_file"], 3)
        result["goal_lines_per_s"] = 200_000
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def agent_run(root: Path, logs: Path, text: bytes, collector: Collector) -> dict:
    """``logwarden agent`` ships a copy of the text file to the collector: lines/s it acknowledged, agent RSS."""
    node = root / "node"
    node.mkdir()
    config = root / "agent.yaml"
    config.write_text(f"sources:\n  - type: file\n    paths: ['{node}/*.log']\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "logwarden", "agent", "--config", str(config), "--to",
         f"http://127.0.0.1:{collector.port}", "--state-dir", str(root / "agent-state")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    try:
        time.sleep(1.5)
        proc = psutil.Process(process.pid)
        base = _http_accepted(collector)
        lines = text.count(b"\n")
        started = time.monotonic()
        write_growing(node / "app.log", text)
        deadline = time.monotonic() + 600
        while _http_accepted(collector) < base + lines and time.monotonic() < deadline:
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    return {"lines": lines, "lines_per_s": round(lines / elapsed), "agent_peak_rss_mb": round(peak / 1e6, 1)}


def _http_accepted(collector: Collector) -> int:
    text = requests.get(f"http://127.0.0.1:{collector.port}/metrics", timeout=5).text
    match = re.search(r'^logwarden_collector_records_accepted_total\{protocol="http"\} (\S+)$', text, re.M)
    return int(float(match.group(1))) if match else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the growing file (default 1,000,000)")
    parser.add_argument("--files", type=int, default=1000, help="small files (default 1000; --lines spread over them)")
    parser.add_argument("--text-lines", type=int, default=200_000, help="text lines (default 200,000)")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
