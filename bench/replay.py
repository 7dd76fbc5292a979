"""Replay benchmark: ``logwarden replay`` of big files, end to end, against the processing benchmark.

What a user types: ``logwarden replay FILE --data-dir DIR`` on a data dir no stack runs on, so the
command starts the embedded stack (local Dask, local Ray detectors, alerting; no collector), reads
the file in chunks parsed on the Dask workers, writes spool batches, and waits until every batch is in
the lake. The rate is the records over ``seconds_until_processed`` (the command's clock, which starts
once the embedded stack is up: start-up excluded); the lake's row count is checked against the file.

Workloads (generated under /tmp, deterministic):
- ``json``: ``--records`` native JSON lines (the columnar path of the collector);
- ``text``: ``--text-lines`` RFC 3164 syslog lines (every line detected and parsed by ``logwarden.formats``).

The reference, in the same run: ``bench/processing.py`` (the stream pipeline alone on spool batches
already written, 2 workers), its structured and text rates. Also the peak RSS of the replay command's
process tree (sampled every 100 ms). Prints one JSON document.

    python bench/replay.py [--records 1000000] [--text-lines 300000] [--skip-reference]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from logwarden.storage import Lake, query  # noqa: E402

SERVICES = ["payment-service", "auth-service", "checkout", "inventory", "search-api"]
LEVELS = ["INFO"] * 8 + ["WARNING", "ERROR", "DEBUG"]


def write_json(path: Path, count: int, seed: int = 1) -> None:
    """``count`` native JSON records spread over the last hour."""
    rng = random.Random(seed)
    start = time.time() - 3600
    with path.open("wb") as out:
        for first in range(0, count, 10_000):
            lines = []
            for i in range(first, min(first + 10_000, count)):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i * 3600 / count))
                lines.append(orjson.dumps({
                    "timestamp": f"{stamp}.{i % 1000:03d}Z", "level": rng.choice(LEVELS),
                    "service": rng.choice(SERVICES),
                    "message": f"request {i} for order {rng.randrange(10**9)} completed in {rng.randrange(900)} ms",
                    "request_id": f"{rng.getrandbits(64):016x}", "duration_ms": round(rng.random() * 250, 3)}))
            out.write(b"\n".join(lines) + b"\n")


def write_syslog(path: Path, count: int, seed: int = 2) -> None:
    """``count`` RFC 3164 lines spread over the last hour."""
    rng = random.Random(seed)
    start = time.time() - 3600
    with path.open("w") as out:
        for i in range(count):
            stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(start + i * 3600 / count))
            out.write(f"{stamp} host{rng.randrange(9)} {rng.choice(SERVICES)}[{rng.randrange(9999)}]: request {i} "
                      f"took {rng.randrange(900)} ms for user u-{rng.randrange(10**6)}\n")


class PeakRss(threading.Thread):
    """Samples the RSS of a process and its children every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak_mb = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                total = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                continue
            self.peak_mb = max(self.peak_mb, total / 2**20)


def replay(path: Path, workdir: Path) -> dict:
    """Run ``logwarden replay`` on ``path`` into a fresh data dir; its summary, checked against the lake."""
    data = workdir / f"data-{path.stem}"
    shutil.rmtree(data, ignore_errors=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "logwarden", "replay", str(path), "--data-dir", str(data)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=workdir)
    rss = PeakRss(process.pid)
    rss.start()
    out, _ = process.communicate(timeout=1800)
    rss.stop.set()
    if process.returncode != 0:
        raise SystemExit(f"logwarden replay {path} failed with {process.returncode}:\n{out[-2000:]}")
    summary = json.loads(out[out.rindex("\n{") + 1:])
    in_lake = query(Lake(data / "lake"), "SELECT count(*) FROM logs")[0][0]
    processed = summary["seconds_until_processed"]
    result = {"records": summary["records"], "in_lake": in_lake, "read_seconds": summary["seconds"],
              "seconds_until_in_lake": processed, "records_per_second": round(summary["records"] / processed),
              "wall_seconds_with_startup": round(time.monotonic() - started, 1), "peak_rss_mb": round(rss.peak_mb)}
    shutil.rmtree(data, ignore_errors=True)
    return result


def reference(batches: int) -> dict:
    """The processing benchmark's rates (structured and text) in this run."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "processing.py"), "--batches", str(batches)],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {"error": done.stderr[-1000:]}
    result = json.loads(done.stdout[done.stdout.index("{"):])
    return {key: value for key, value in result.items() if "per_second" in key or key == "workers"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="native JSON records (default 1,000,000)")
    parser.add_argument("--text-lines", type=int, default=300_000, help="syslog lines (default 300,000)")
    parser.add_argument("--skip-reference", action="store_true", help="do not run bench/processing.py")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lw-replay-bench-"))
    try:
        json_file, text_file = workdir / "app.ndjson", workdir / "hosts.log"
        write_json(json_file, args.records)
        write_syslog(text_file, args.text_lines)
        result = {"machine": {"cores": os.cpu_count(), "load_before": os.getloadavg()[0]},
                  "json": replay(json_file, workdir), "text_syslog": replay(text_file, workdir)}
        if not args.skip_reference:
            result["reference_processing_benchmark"] = reference(batches=20)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
