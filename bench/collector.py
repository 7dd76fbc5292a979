"""Collector throughput benchmark: HTTP NDJSON and TCP NDJSON, with ack-after-fsync, against a ceiling.

Starts ``logwarden collector`` as a child process on loopback (default configuration: fsync'ed
write-ahead log with group commit, 50k-record / 1 s Parquet batches), then:

- HTTP: ``--clients`` concurrent keep-alive aiohttp clients (one process, pre-built bodies of
  ``--batch`` records) post for ``--seconds``; records/s accepted (counted from the answers),
  p50/p99 request latency, the collector's peak RSS, fsyncs per request (group commit);
- TCP: ``--clients`` connections stream the same NDJSON for ``--seconds``; records/s made
  durable (read from the collector's metrics after the senders finish);
- ceiling: ``pyarrow.json.read_json`` on the same bodies, single thread, in this process.

Prints one JSON document. Usage: ``python bench/collector.py [--seconds 15] [--clients 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import orjson
import psutil
import pyarrow.json as pj

REPO = Path(__file__).resolve().parents[1]
SERVICES = ["payment-service", "auth-service", "checkout", "inventory", "search-api"]
LEVELS = ["INFO"] * 8 + ["WARNING", "ERROR", "DEBUG"]


def make_bodies(count: int, size: int, seed: int = 7) -> list[bytes]:
    """``count`` NDJSON bodies of ``size`` realistic records (timestamps near now)."""
    rng = random.Random(seed)
    now = time.time()
    bodies = []
    for b in range(count):
        lines = []
        for i in range(size):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - rng.random() * 60))
            record = {
                "timestamp": f"{stamp}.{rng.randrange(1000):03d}Z",
                "level": rng.choice(LEVELS),
                "service": rng.choice(SERVICES),
                "message": f"request {b}-{i} for order {rng.randrange(10**9)} completed with status "
                f"{rng.choice([200, 201, 404, 500])}",
                "request_id": f"{rng.getrandbits(64):016x}",
                "user_id": f"user-{rng.randrange(10**6)}",
                "duration_ms": round(rng.random() * 250, 3),
            }
            lines.append(orjson.dumps(record))
        bodies.append(b"\n".join(lines) + b"\n")
    return bodies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """``logwarden collector`` in a child process, with its peak RSS sampled."""

    def __init__(self, data: Path) -> None:
        self.http_port, self.tcp_port = free_port(), free_port()
        command = [
            sys.executable,
            "-m",
            "logwarden",
            "collector",
            "--data-dir",
            str(data),
            "--http-port",
            str(self.http_port),
            "--tcp-port",
            str(self.tcp_port),
            "--no-syslog",
        ]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.http_port}/health", timeout=1).ok:
                    self._sampler.start()
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(self.process.stderr.read().decode())

    def _sample(self) -> None:
        proc = psutil.Process(self.process.pid)
        while not self._stop.wait(0.05):
            try:
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            except psutil.Error:
                return

    def metric(self, name: str) -> float:
        import requests

        text = requests.get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5).text
        return sum(
            float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
        )

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self._stop.set()
        self.process.terminate()
        self.process.wait(60)


async def http_load(port: int, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """Post bodies from ``clients`` keep-alive connections for ``seconds``."""
    latencies: list[float] = []
    accepted = 0
    statuses: dict[int, int] = {}
    url = f"http://127.0.0.1:{port}/v1/logs"
    headers = {"Content-Type": "application/x-ndjson"}
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal accepted
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            n = number
            while time.perf_counter() < deadline:
                body = bodies[n % len(bodies)]
                n += clients
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    accepted += orjson.loads(answer)["accepted"]
                elif response.status == 429:
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "records_per_s": round(accepted / elapsed),
        "requests": len(latencies),
        "accepted": accepted,
        "seconds": round(elapsed, 2),
        "statuses": statuses,
        "latency_ms": {
            "p50": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            "max": round(latencies[-1] * 1000, 2),
        },
    }


def tcp_load(collector: Collector, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """Stream NDJSON from ``clients`` connections for ``seconds``; count what became durable."""
    before = collector.metric("logwarden_collector_records_accepted_total")
    sent = [0] * clients
    deadline = time.perf_counter() + seconds

    def sender(number: int) -> None:
        with socket.create_connection(("127.0.0.1", collector.tcp_port)) as sock:
            n = number
            while time.perf_counter() < deadline:
                sock.sendall(bodies[n % len(bodies)])
                sent[number] += bodies[n % len(bodies)].count(b"\n")
                n += clients
            sock.shutdown(socket.SHUT_WR)
            sock.recv(1)  # the collector closes once everything it read is durable

    started = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    durable = collector.metric("logwarden_collector_records_accepted_total") - before
    return {
        "records_per_s": round(durable / elapsed),
        "sent": sum(sent),
        "durable": int(durable),
        "seconds": round(elapsed, 2),
    }


def ceiling(bodies: list[bytes], seconds: float = 3.0) -> dict:
    """``pyarrow.json.read_json`` on the same bodies (one thread), records/s."""
    options = pj.ReadOptions(use_threads=False, block_size=max(map(len, bodies)) + 1)
    records, n = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        records += pj.read_json(io.BytesIO(bodies[n % len(bodies)]), read_options=options).num_rows
        n += 1
    return {"records_per_s": round(records / (time.perf_counter() - started))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each load phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive clients / connections")
    parser.add_argument("--batch", type=int, default=1000, help="records per HTTP body")
    args = parser.parse_args()

    bodies = make_bodies(64, args.batch)
    data = Path(tempfile.mkdtemp(prefix="lw-bench-collector-"))
    load_before = os.getloadavg()
    collector = Collector(data)
    try:
        collector.wait_ready()
        asyncio.run(http_load(collector.http_port, bodies[:4], 1, 1.0))  # warm-up
        cpu_before, fsyncs_before = collector.cpu_seconds(), collector.metric(
            "logwarden_collector_wal_fsyncs_total"
        )
        http = asyncio.run(http_load(collector.http_port, bodies, args.clients, args.seconds))
        cpu = collector.cpu_seconds() - cpu_before
        http["collector_cpu_cores"] = round(cpu / http["seconds"], 2)
        http["collector_cpu_us_per_record"] = round(cpu / max(http["accepted"], 1) * 1e6, 2)
        fsyncs = collector.metric("logwarden_collector_wal_fsyncs_total") - fsyncs_before
        http["fsyncs"] = int(fsyncs)
        http["requests_per_fsync"] = round(http["requests"] / max(fsyncs, 1), 2)
        tcp = tcp_load(collector, bodies, args.clients, args.seconds)
        time.sleep(1.5)  # let the last batch roll over
        spooled = sum(1 for _ in (data / "spool").glob("*.parquet"))
        peak_rss = collector.peak_rss
    finally:
        collector.stop()
        shutil.rmtree(data, ignore_errors=True)
    reference = ceiling(bodies)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "config": {
            "clients": args.clients,
            "records_per_body": args.batch,
            "ack_after_fsync": True,
            "body_bytes": round(sum(map(len, bodies)) / len(bodies)),
        },
        "http_ndjson": http,
        "tcp_ndjson": tcp,
        "collector_peak_rss_mb": round(peak_rss / 2**20, 1),
        "spool_batches": spooled,
        "ceiling_pyarrow_read_json_1_thread": reference,
        "ratio_http_to_ceiling": round(http["records_per_s"] / reference["records_per_s"], 2),
        "ratio_tcp_to_ceiling": round(tcp["records_per_s"] / reference["records_per_s"], 2),
        "targets": {
            "http_records_per_s>=200000": http["records_per_s"] >= 200_000,
            "peak_rss_mb<500": peak_rss / 2**20 < 500,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
