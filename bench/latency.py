"""End-to-end latency: from the collector's acknowledgement to the record being queryable in the lake,
and to the alert it triggers being in the outbox, at a steady rate.

    python bench/latency.py [--rate 50000] [--seconds 30] [--senders 4]

Starts `logwarden up` (local Dask and Ray, no dashboards), posts NDJSON batches of 1,000 records at
--rate for --seconds, each record tagged with a sequence number; once a second a record that fires
`slow_response` for a service of its own. Watches the lake for committed files (and the sequence
numbers they hold) and the outbox for the alerts. Prints JSON: sent, acknowledged, sustained rate,
p50/p99/max of ack→lake and ack→alert, whether every acknowledged record reached the lake, and the
peak and last resident memory of the `logwarden up` process.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH = 1000
SEQ = r'"seq":(?P<seq>-?\d+)'  # attributes are compact JSON


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def body(start_seq: int, trigger: int | None) -> bytes:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines = []
    for n in range(start_seq, start_seq + BATCH):
        record = {"timestamp": now, "level": "INFO", "service": f"svc-{n % 8}", "message": f"request {n % 97} served",
                  "duration_ms": float(n % 300), "seq": n}
        lines.append(orjson.dumps(record))
    if trigger is not None:
        lines.append(orjson.dumps({"timestamp": now, "level": "WARNING", "service": f"slow-{trigger}",
                                   "message": "request took too long", "duration_ms": 9000.0, "seq": -1 - trigger}))
    return b"\n".join(lines)


class LakeWatcher(threading.Thread):
    """Notes when each sequence number first appears in a committed lake file."""

    def __init__(self, lake: Path) -> None:
        super().__init__(daemon=True)
        self.lake, self.seen_files, self.first_seen = lake, set(), {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            for path in (self.lake / "logs").rglob("*.parquet"):
                if path.name.startswith(".") or path in self.seen_files:
                    continue
                self.seen_files.add(path)
                now = time.monotonic()
                attributes = pq.read_table(path, columns=["attributes"])["attributes"]
                seqs = pc.struct_field(pc.extract_regex(attributes, SEQ), [0]).drop_null()
                batches = pc.unique(pc.divide(pc.cast(seqs, pa.int64()), BATCH))
                for index in batches.to_pylist():
                    if index >= 0:
                        self.first_seen.setdefault(index, now)


class RssWatcher(threading.Thread):
    """Samples the resident memory of the ``logwarden up`` process (the driver) once a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.samples = psutil.Process(pid), []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.samples.append(self.process.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                return

    def summary(self) -> dict:
        samples = self.samples or [0.0]
        return {"peak": round(max(samples)), "last": round(samples[-1])}


class OutboxWatcher(threading.Thread):
    """Notes when each slow-N alert first appears in the outbox."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.first_seen, self.offset = path, {}, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            if not self.path.exists():
                continue
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            self.offset += len(complete)
            now = time.monotonic()
            for line in complete.splitlines():
                alert = orjson.loads(line)
                if alert["rule"] == "slow_response" and alert["key"].startswith("slow-"):
                    self.first_seen.setdefault(int(alert["key"][5:]), now)


async def drive(url: str, rate: int, seconds: float, senders: int) -> tuple[dict, dict, int]:
    batch_acks, trigger_acks = {}, {}
    per_second = max(1, rate // BATCH)
    queue: asyncio.Queue = asyncio.Queue(maxsize=senders * 4)
    headers = {"Content-Type": "application/x-ndjson"}

    async def sender(session: aiohttp.ClientSession) -> None:
        while (item := await queue.get()) is not None:
            index, trigger = item
            async with session.post(url, data=body(index * BATCH, trigger), headers=headers) as response:
                await response.read()
                if response.status == 200:
                    batch_acks[index] = time.monotonic()
                    if trigger is not None:
                        trigger_acks[trigger] = batch_acks[index]

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(sender(session)) for _ in range(senders)]
        started = time.monotonic()
        index = 0
        for second in range(int(seconds)):
            for k in range(per_second):
                await queue.put((index, second if k == 0 else None))
                index += 1
                await asyncio.sleep(max(0.0, started + second + (k + 1) / per_second - time.monotonic()))
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    return batch_acks, trigger_acks, index


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    array = np.array(values)
    return {"p50": round(float(np.percentile(array, 50)), 3), "p99": round(float(np.percentile(array, 99)), 3),
            "max": round(float(array.max()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--trace", help="write (seconds since start, latency) of every batch and alert here (JSON)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="lw-latency-")) / "data"
    http_port = free_port()
    command = [sys.executable, "-m", "logwarden", "up", "--data-dir", str(data), "--no-dashboards",
               "--http-port", str(http_port), "--tcp-port", str(free_port()), "--api-port", str(free_port())]
    stack = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in stack.stdout:
            if "logwarden is up" in line:
                break
        threading.Thread(target=lambda: [None for _ in stack.stdout], daemon=True).start()
        lake, outbox = LakeWatcher(data / "lake"), OutboxWatcher(data / "alerts" / "outbox.jsonl")
        rss = RssWatcher(stack.pid)
        lake.start()
        outbox.start()
        rss.start()
        started = time.monotonic()
        acks, trigger_acks, sent = asyncio.run(drive(f"http://127.0.0.1:{http_port}/v1/logs", args.rate,
                                                     args.seconds, args.senders))
        sending = time.monotonic() - started
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (set(acks) - set(lake.first_seen) or
                                               set(trigger_acks) - set(outbox.first_seen)):
            time.sleep(0.2)
        lake.stop.set()
        outbox.stop.set()
        rss.stop.set()
        to_lake = [lake.first_seen[i] - t for i, t in acks.items() if i in lake.first_seen]
        to_alert = [outbox.first_seen[i] - t for i, t in trigger_acks.items() if i in outbox.first_seen]
        if args.trace:
            trace = {"lake": sorted((t - started, lake.first_seen[i] - t) for i, t in acks.items() if i in lake.first_seen),
                     "alert": sorted((t - started, outbox.first_seen[i] - t) for i, t in trigger_acks.items()
                                     if i in outbox.first_seen)}
            Path(args.trace).write_bytes(orjson.dumps(trace))
        print(json.dumps({
            "rate_asked": args.rate, "batches_sent": sent, "records_acknowledged": len(acks) * BATCH,
            "records_per_s_acknowledged": round(len(acks) * BATCH / sending),
            "all_acknowledged_in_lake": not (set(acks) - set(lake.first_seen)),
            "ack_to_lake_s": percentiles(to_lake), "alerts_expected": len(trigger_acks),
            "alerts_seen": len(to_alert), "ack_to_alert_s": percentiles(to_alert),
            "driver_rss_mb": rss.summary()}, indent=2))
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(120)


if __name__ == "__main__":
    main()
