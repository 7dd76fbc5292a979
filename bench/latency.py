"""End-to-end latency: from the collector's acknowledgement to the record being queryable in the lake,
and to the alert it triggers being in the outbox, at a steady rate; or the highest rate the whole stack
sustains.

    python bench/latency.py [--rate 50000] [--seconds 30] [--senders 4] [--config FILE] [--log FILE]
    python bench/latency.py --find-max [--rate 40000] [--seconds 60] [--probes 6]

Starts `logwarden up` (local Dask and Ray, no dashboards), posts NDJSON bodies of 1,000 records at
--rate for --seconds, each record tagged with its body's number (`request_id`); once a second a record
that fires `slow_response` for a service of its own. Watches the lake for committed files (and the
body numbers they hold) and the outbox for the alerts. Prints JSON: sent, acknowledged, sustained
rate, p50/p99/max of ack→lake and ack→alert, whether every acknowledged record reached the lake, and
the peak and last resident memory of the `logwarden up` process.

`--find-max` runs probes of --seconds each on one running stack: up from --rate by a quarter while
the stack keeps up, then halfway between the highest rate it kept up with and the lowest it did not,
--probes in all. A probe is sustained when at least 97 % of the asked rate was acknowledged, every
acknowledged record reached the lake within 10 s of the end of sending, and the backlog stayed flat
(the ack→lake latency of the probe's last third at most that of its first third plus 0.5 s). Before
the next probe the stack catches up: every record in the lake, every alert out, the spool empty.
Prints every probe and the highest sustained one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import psutil
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH = 1000
ACKED_SHARE = 0.97
DRAIN_SECONDS = 10.0
DRAIN_LIMIT = 600.0  # seconds a probe waits for the stack to catch up before the next one starts
FLAT_SLACK = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def body(index: int, trigger: int | None) -> bytes:
    """Body ``index``: 1,000 records tagged with it, and a slow record for service slow-``trigger``."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    tag = str(index)
    lines = [orjson.dumps({"timestamp": now, "level": "INFO", "service": f"svc-{n % 8}",
                           "message": f"request {n % 97} served", "duration_ms": float(n % 300), "request_id": tag})
             for n in range(index * BATCH, (index + 1) * BATCH)]
    if trigger is not None:
        lines.append(orjson.dumps({"timestamp": now, "level": "WARNING", "service": f"slow-{trigger}",
                                   "message": "request took too long", "duration_ms": 9000.0, "request_id": tag}))
    return b"\n".join(lines)


class LakeWatcher(threading.Thread):
    """Notes when each body number first appears in a committed batch (its commit marker written): one
    folder of markers is listed, and only the new batches' record files are read."""

    def __init__(self, lake: Path) -> None:
        super().__init__(daemon=True)
        self.lake, self.seen_markers, self.first_seen = lake, set(), {}
        self.stop = threading.Event()

    def run(self) -> None:
        markers = self.lake / "_commits"
        while not self.stop.wait(0.05):
            try:
                names = [entry.name for entry in os.scandir(markers) if entry.name.endswith(".json")]
            except FileNotFoundError:
                continue
            for name in names:
                if name not in self.seen_markers:
                    self.seen_markers.add(name)
                    self._read(markers / name, time.monotonic())

    def _read(self, marker: Path, now: float) -> None:
        for relative in orjson.loads(marker.read_bytes())["files"]:
            if not relative.startswith("logs/"):
                continue
            try:
                tags = pq.read_table(self.lake / relative, columns=["request_id"])["request_id"]
            except OSError:  # merged by compaction meanwhile: its rows were seen in the batch's other files
                continue
            for tag in pc.unique(tags.drop_null()).to_pylist():
                self.first_seen.setdefault(int(tag), now)


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

    def summary(self, since: int = 0) -> dict:
        samples = self.samples[since:] or [0.0]
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


@dataclass
class Sent:
    """What one probe sent and when each body and trigger was acknowledged (``time.monotonic``)."""

    rate: int
    started: float = 0.0
    seconds: float = 0.0
    bodies: int = 0
    acks: dict[int, float] = field(default_factory=dict)
    trigger_acks: dict[int, float] = field(default_factory=dict)


async def drive(url: str, rate: int, seconds: float, senders: int, first_index: int, first_trigger: int) -> Sent:
    """Post bodies numbered from ``first_index`` at ``rate`` records/s for ``seconds``, one of them per second
    with a trigger (numbered from ``first_trigger``)."""
    sent = Sent(rate)
    per_second = max(1, rate // BATCH)
    queue: asyncio.Queue = asyncio.Queue(maxsize=senders * 4)
    headers = {"Content-Type": "application/x-ndjson"}

    async def sender(session: aiohttp.ClientSession) -> None:
        while (item := await queue.get()) is not None:
            index, trigger = item
            async with session.post(url, data=body(index, trigger), headers=headers) as response:
                await response.read()
                if response.status == 200:
                    sent.acks[index] = time.monotonic()
                    if trigger is not None:
                        sent.trigger_acks[trigger] = sent.acks[index]

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(sender(session)) for _ in range(senders)]
        sent.started = time.monotonic()
        index = first_index
        for second in range(int(seconds)):
            for k in range(per_second):
                await queue.put((index, first_trigger + second if k == 0 else None))
                index += 1
                await asyncio.sleep(max(0.0, sent.started + second + (k + 1) / per_second - time.monotonic()))
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    sent.seconds = time.monotonic() - sent.started
    sent.bodies = index - first_index
    return sent


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    array = np.array(values)
    return {"p50": round(float(np.percentile(array, 50)), 3), "p99": round(float(np.percentile(array, 99)), 3),
            "max": round(float(array.max()), 3)}


class Bench:
    """One running ``logwarden up`` with its watchers."""

    def __init__(self, config: str | None, log: str | None) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="lw-latency-")) / "data"
        self.http_port = free_port()
        command = [sys.executable, "-m", "logwarden", "up", "--data-dir", str(self.data), "--no-dashboards",
                   "--http-port", str(self.http_port), "--tcp-port", str(free_port()),
                   "--api-port", str(free_port()), *(["--config", config] if config else [])]
        self.stack = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in self.stack.stdout:
            if "logwarden is up" in line:
                break
        else:
            raise SystemExit(f"logwarden up exited with {self.stack.wait()}")
        log_file = open(log, "w") if log else None  # noqa: SIM115 - written until the process ends
        threading.Thread(target=lambda: [log_file and log_file.write(line) for line in self.stack.stdout],
                         daemon=True).start()
        self.lake = LakeWatcher(self.data / "lake")
        self.outbox = OutboxWatcher(self.data / "alerts" / "outbox.jsonl")
        self.rss = RssWatcher(self.stack.pid)
        for watcher in (self.lake, self.outbox, self.rss):
            watcher.start()
        self.next_index = self.next_trigger = 0

    def probe(self, rate: int, seconds: float, senders: int) -> tuple[Sent, dict]:
        """Send at ``rate`` for ``seconds``, wait for the lake and the alerts; the measurements."""
        rss_from = len(self.rss.samples)
        sent = asyncio.run(drive(f"http://127.0.0.1:{self.http_port}/v1/logs", rate, seconds, senders,
                                 self.next_index, self.next_trigger))
        self.next_index += sent.bodies
        self.next_trigger += int(seconds)
        sending_ended = time.monotonic()
        deadline = sending_ended + DRAIN_LIMIT
        while time.monotonic() < deadline and (set(sent.acks) - set(self.lake.first_seen) or
                                               set(sent.trigger_acks) - set(self.outbox.first_seen)
                                               or any((self.data / "spool").glob("*.parquet"))):
            time.sleep(0.2)
        return sent, self.summary(sent, sending_ended, rss_from)

    def summary(self, sent: Sent, sending_ended: float, rss_from: int) -> dict:
        lake, outbox = self.lake.first_seen, self.outbox.first_seen
        to_lake = [lake[i] - t for i, t in sorted(sent.acks.items()) if i in lake]
        to_alert = [outbox[i] - t for i, t in sent.trigger_acks.items() if i in outbox]
        missing = set(sent.acks) - set(lake)
        third = max(1, len(to_lake) // 3)
        drained = not missing and max((lake[i] for i in sent.acks), default=sending_ended) \
            <= sending_ended + DRAIN_SECONDS
        return {
            "rate_asked": sent.rate, "bodies_sent": sent.bodies, "records_acknowledged": len(sent.acks) * BATCH,
            "records_per_s_acknowledged": round(len(sent.acks) * BATCH / sent.seconds),
            "all_acknowledged_in_lake": not missing, "lake_caught_up_within_10s": drained,
            "ack_to_lake_s": percentiles(to_lake),
            "ack_to_lake_p99_first_third_s": percentiles(to_lake[:third])["p99"],
            "ack_to_lake_p99_last_third_s": percentiles(to_lake[-third:])["p99"],
            "alerts_expected": len(sent.trigger_acks), "alerts_seen": len(to_alert),
            "ack_to_alert_s": percentiles(to_alert), "driver_rss_mb": self.rss.summary(rss_from)}

    def close(self) -> None:
        for watcher in (self.lake, self.outbox, self.rss):
            watcher.stop.set()
        self.stack.send_signal(signal.SIGINT)
        try:
            self.stack.wait(120)
        except subprocess.TimeoutExpired:
            self.stack.kill()


def sustained(result: dict) -> bool:
    """Whether a probe's rate was kept up with: acknowledged, in the lake soon after, a flat backlog."""
    first, last = result["ack_to_lake_p99_first_third_s"], result["ack_to_lake_p99_last_third_s"]
    return (result["records_per_s_acknowledged"] >= ACKED_SHARE * result["rate_asked"]
            and result["lake_caught_up_within_10s"] and first is not None and last is not None
            and last <= first + FLAT_SLACK)


def find_max(bench: Bench, start: int, seconds: float, senders: int, probes: int) -> dict:
    """Probe rates up by a quarter while sustained, then bisect; every probe and the best."""
    results, best, failed_at, rate = [], None, None, start
    for _ in range(probes):
        _, result = bench.probe(rate, seconds, senders)
        result["sustained"] = sustained(result)
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
        if result["sustained"]:
            best = result if best is None or rate > best["rate_asked"] else best
        else:
            failed_at = rate if failed_at is None else min(failed_at, rate)
        low = best["rate_asked"] if best else 0
        rate = int(rate * 1.25) if failed_at is None else (low + failed_at) // 2
        rate = max(BATCH, rate // BATCH * BATCH)
        if failed_at is not None and failed_at - low <= 5 * BATCH:
            break
        time.sleep(2)
    return {"probes": results, "highest_sustained": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--config", help="a logwarden configuration file for `logwarden up`")
    parser.add_argument("--log", help="write the output of `logwarden up` here")
    parser.add_argument("--find-max", action="store_true", help="find the highest rate sustained for --seconds")
    parser.add_argument("--probes", type=int, default=6, help="probes of --find-max at most")
    parser.add_argument("--trace", help="write (seconds since start, latency) of every body and alert here (JSON)")
    args = parser.parse_args()
    bench = Bench(args.config, args.log)
    try:
        if args.find_max:
            print(json.dumps(find_max(bench, args.rate, args.seconds, args.senders, args.probes), indent=2))
            return
        sent, result = bench.probe(args.rate, args.seconds, args.senders)
        if args.trace:
            lake, outbox = bench.lake.first_seen, bench.outbox.first_seen
            trace = {"lake": sorted((t - sent.started, lake[i] - t) for i, t in sent.acks.items() if i in lake),
                     "alert": sorted((t - sent.started, outbox[i] - t) for i, t in sent.trigger_acks.items()
                                     if i in outbox)}
            Path(args.trace).write_bytes(orjson.dumps(trace))
        print(json.dumps(result, indent=2))
    finally:
        bench.close()


if __name__ == "__main__":
    main()
