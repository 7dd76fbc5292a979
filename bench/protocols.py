"""Ingest protocols benchmark: records acknowledged per second, per protocol, with the native NDJSON API as
the reference in the same run.

Two modes (both print one JSON document):

- ``--mode decoders`` (in-process, no server): records per CPU second of each protocol's decoding *and*
  validation (``decode_batch``: the body to a validated Arrow batch, what runs in the collector's decode
  threads), one thread, fastest of ``--repeat`` runs, CPU time of the thread (not wall time: on a shared
  machine that would count the other processes); the native NDJSON decoder (``BatchDecoder.decoded_body``,
  its columnar fast path) on the same records is the reference; per protocol also whether the
  columnar fast path was taken and the per-record path's rate (``decode`` then per-record validation).
- ``--mode mounted``: the full path with the protocols mounted the way the collector will mount them,
  until its HTTP server does: a child process (this script with ``--serve``) runs an aiohttp app with
  ``mount_protocols`` over an ``Ingestor`` in the collector's default configuration (fsync'ed write-ahead
  log with group commit, 50k-record / 1 s Parquet batches, two decode threads), the native NDJSON API as
  the fallback of ``/v1/logs``; then the same load as ``--mode collector``.
- ``--mode collector``: starts ``logwarden collector`` as a child process (default configuration:
  fsync'ed write-ahead log with group commit), then, for each protocol of ``--protocols``, ``--clients``
  keep-alive clients post pre-built bodies of ``--batch`` records for ``--seconds``; a record counts
  once its answer says it was accepted (which the collector gives only after the fsync): the OTLP
  answer's ``rejected_log_records`` is subtracted, Loki's 204 means all, the native answer says
  ``accepted``, Elasticsearch's items without an error, HEC's ``{"code": 0}``. Fluent ``forward``:
  ``--clients`` TCP connections each send PackedForward messages of ``--batch`` records with the
  ``chunk`` option and wait for the ``ack`` (sent after the fsync) before the next: records counted on
  their ack. ``syslog``: ``--clients`` TCP connections stream octet-counted RFC 5424 messages for
  ``--seconds`` (syslog has no acknowledgement), then half-close; the collector closes each once what it
  read is durable, and the rate is what its ``/metrics`` counts as accepted over the whole time (sending
  and draining). Reports records/s, p50/p99 latency, the statuses seen, and the collector's peak RSS.
  A protocol whose route is not served answers 404/415: its ``statuses`` say so. The collector's CPU
  time per record accepted (all its threads) is given too: on a shared machine it moves less than the rate.

Protocols: ``native-ndjson`` (the reference), ``otlp-protobuf``, ``otlp-json``, ``loki-protobuf``,
``loki-json``, ``elasticsearch`` (Filebeat-like ECS documents in ``create`` pairs), ``splunk`` (HEC,
concatenated text events), ``text``, ``forward`` and ``syslog`` (``--mode collector`` only; their decoders
alone: ``bench/protocols_decode.py``).

Usage::

    python bench/protocols.py --mode decoders [--batch 1000] [--repeat 5]
    python bench/protocols.py --mode mounted [--seconds 15] [--clients 4] [--batch 1000]
    python bench/protocols.py --mode collector --protocols native-ndjson,otlp-protobuf,loki-protobuf \\
        [--seconds 15] [--clients 4] [--batch 1000]
    python bench/protocols.py --mode collector [--runs 3]   # every protocol, three runs, one collector each
    python bench/protocols.py --mode collector --collectors 2   # two collectors sharing the ports
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import aiohttp
import cramjam
import msgpack
import orjson
from google.protobuf.json_format import MessageToJson
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.collector import Collector, free_port, make_bodies  # noqa: E402
from bench.protocols_decode import bulk_body, ecs_docs, fluent_records, hec_body, syslog_messages  # noqa: E402
from logwarden.collector.batch import BatchDecoder  # noqa: E402
from logwarden.collector.protocols import ProtocolRequest, registered_protocols  # noqa: E402
from logwarden.collector.validation import RecordValidator  # noqa: E402
from tests.collector.loki_push_pb2 import EntryAdapter, PushRequest, StreamAdapter  # noqa: E402

PROTOCOLS = ("native-ndjson", "otlp-protobuf", "otlp-json", "loki-protobuf", "loki-json", "elasticsearch", "splunk",
             "text", "forward", "syslog")
STREAMS = ("forward", "syslog")  # TCP protocols: --mode collector only
GOALS = {"otlp-protobuf": 150_000, "elasticsearch": 150_000, "loki-protobuf": 150_000, "forward": 150_000,
         "syslog": 100_000}
SERVICES = ["payment-service", "auth-service", "checkout", "inventory", "search-api"]
LEVELS = [(9, "INFO")] * 8 + [(13, "WARN"), (17, "ERROR"), (5, "DEBUG")]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def otlp_request(size: int, seed: int) -> ExportLogsServiceRequest:
    """An export as the OpenTelemetry Python SDK's LoggingHandler makes it: one resource per service, one
    scope, each record with a body, a severity, trace context and the code.* attributes (and a user)."""
    rng = random.Random(seed)
    now = time.time_ns()
    request = ExportLogsServiceRequest()
    per_service = max(1, size // len(SERVICES))
    made = 0
    for service in SERVICES:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend([
            _kv("service.name", service), _kv("host.name", f"web-{rng.randrange(8)}"),
            _kv("telemetry.sdk.language", "python"), _kv("telemetry.sdk.name", "opentelemetry"),
            _kv("telemetry.sdk.version", "1.45.2"),
        ])
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = f"{service}.handlers"
        for _ in range(min(per_service, size - made)):
            number, text = rng.choice(LEVELS)
            record = scope_logs.log_records.add()
            record.time_unix_nano = now - rng.randrange(60 * 10**9)
            record.observed_time_unix_nano = record.time_unix_nano + 1000
            record.severity_number, record.severity_text = number, text
            record.body.string_value = (
                f"request {made} for order {rng.randrange(10**9)} completed with status "
                f"{rng.choice([200, 201, 404, 500])}"
            )
            record.trace_id = rng.randbytes(16)
            record.span_id = rng.randbytes(8)
            record.flags = 1
            record.attributes.extend([
                _kv("code.file.path", f"/app/{service}/handlers.py"), _kv("code.function.name", "handle"),
                _kv("code.line.number", rng.randrange(40, 400)), _kv("user_id", f"user-{rng.randrange(10**6)}"),
            ])
            made += 1
        if made >= size:
            break
    return request


def loki_document(size: int, seed: int) -> dict:
    """A push as Promtail makes it: a few streams (service, level labels), each line logfmt or plain text."""
    rng = random.Random(seed)
    now = time.time_ns()
    streams: dict[tuple[str, str], list] = {}
    for n in range(size):
        service = rng.choice(SERVICES)
        level = rng.choice(["info"] * 8 + ["warn", "error", "debug"])
        if n % 2:
            line = (f'ts={time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())} level={level} msg="request {n} done" '
                    f"status={rng.choice([200, 404, 500])} duration_ms={rng.randrange(1, 900)} "
                    f"user_id=user-{rng.randrange(10**6)}")
        else:
            line = f"request {n} for order {rng.randrange(10**9)} completed with status {rng.choice([200, 500])}"
        streams.setdefault((service, level), []).append([str(now - rng.randrange(60 * 10**9)), line])
    return {"streams": [{"stream": {"service_name": s, "level": lv, "env": "prod"}, "values": v}
                        for (s, lv), v in streams.items()]}


def loki_protobuf(document: dict) -> bytes:
    request = PushRequest()
    for stream in document["streams"]:
        labels = ", ".join(f'{key}="{value}"' for key, value in stream["stream"].items())
        adapter = StreamAdapter(labels="{" + labels + "}")
        for stamp, line in stream["values"]:
            nanos = int(stamp)
            adapter.entries.append(EntryAdapter(timestamp=Timestamp(seconds=nanos // 10**9, nanos=nanos % 10**9),
                                                line=line))
        request.streams.append(adapter)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def text_body(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    lines = [f"{stamp},{rng.randrange(1000):03d} {rng.choice(['INFO', 'WARNING', 'ERROR'])} [worker-{n % 4}] "
             f"request {n} for order {rng.randrange(10**9)} done" for n in range(size)]
    return "\n".join(lines).encode() + b"\n"


def bodies(protocol: str, size: int, count: int) -> tuple[list[bytes], dict[str, str], str]:
    """``count`` bodies of ``size`` records, their headers and their path."""
    if protocol == "native-ndjson":
        return make_bodies(count, size), {"Content-Type": "application/x-ndjson"}, "/v1/logs"
    if protocol == "otlp-protobuf":
        made = [otlp_request(size, seed).SerializeToString() for seed in range(count)]
        return made, {"Content-Type": "application/x-protobuf"}, "/v1/logs"
    if protocol == "otlp-json":
        made = [MessageToJson(otlp_request(size, seed), indent=None).encode() for seed in range(count)]
        return made, {"Content-Type": "application/json"}, "/v1/logs"
    if protocol == "loki-protobuf":
        made = [loki_protobuf(loki_document(size, seed)) for seed in range(count)]
        return made, {"Content-Type": "application/x-protobuf"}, "/loki/api/v1/push"
    if protocol == "loki-json":
        made = [orjson.dumps(loki_document(size, seed)) for seed in range(count)]
        return made, {"Content-Type": "application/json"}, "/loki/api/v1/push"
    if protocol == "text":
        return [text_body(size, seed) for seed in range(count)], {"Content-Type": "text/plain"}, "/v1/logs"
    if protocol == "elasticsearch":
        made = [bulk_body(ecs_docs(size, random.Random(seed))) for seed in range(count)]
        return made, {"Content-Type": "application/x-ndjson"}, "/_bulk"
    if protocol == "splunk":
        made = [hec_body(size, random.Random(seed)) for seed in range(count)]
        return made, {"Content-Type": "application/json"}, "/services/collector/event"
    if protocol == "forward":
        made = []
        for seed in range(count):  # PackedForward as Fluent Bit sends it, with the chunk option
            payload = b"".join(msgpack.packb(entry) for entry in fluent_records(size, random.Random(seed)))
            made.append(msgpack.packb(["app.web", payload, {"size": size, "chunk": f"bench-{seed}"}]))
        return made, {}, ""
    if protocol == "syslog":
        made = []
        for seed in range(count):  # RFC 5424 with octet counting, as rsyslog's omfwd sends it
            messages = syslog_messages(size, random.Random(seed), "rfc5424")
            made.append(b"".join(b"%d %s" % (len(message), message) for message in messages))
        return made, {}, ""
    raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


# in-process ----------------------------------------------------------------------------------------
def _best(run: Callable[[], int], repeat: int) -> tuple[float, int]:
    """The fastest of ``repeat`` runs in CPU seconds of this thread (the machine is shared: wall time would
    count the other processes), and what the run counted."""
    best = float("inf")
    count = 0
    for _ in range(repeat):
        gc.collect()
        started = time.thread_time()
        count = run()
        best = min(best, time.thread_time() - started)
    return best, count


def decoders(names: list[str], size: int, repeat: int) -> dict:
    decoder = BatchDecoder(RecordValidator(), max_line_bytes=1 << 20, max_body_bytes=256 << 20)
    classes = registered_protocols()
    results = {}
    for name in names:
        if name in STREAMS:
            results[name] = {"skipped": "a TCP protocol: bench/protocols_decode.py measures its decoder"}
            continue
        made, headers, path = bodies(name, size, 4)
        content_type = headers["Content-Type"]
        if name == "native-ndjson":
            seconds, count = _best(lambda: sum(decoder.decoded_body(b, content_type).accepted for b in made), repeat)
            fast = decoder.decoded_body(made[0], content_type).fast
            results[name] = {"records_per_s": round(count / seconds), "fast_path": fast}
            continue
        protocol = classes[name.split("-")[0]]()
        requests_ = [ProtocolRequest("POST", path, {}, {}, headers, body, content_type) for body in made]
        seconds, count = _best(lambda: sum(protocol.decode_batch(r, decoder).accepted for r in requests_), repeat)
        batch = protocol.decode_batch(requests_[0], decoder)
        slow_seconds, slow_count = _best(
            lambda: sum(decoder.records(protocol.decode(r)).accepted for r in requests_), max(1, repeat // 2))
        results[name] = {
            "records_per_s": round(count / seconds),
            "us_per_record": round(seconds / count * 1e6, 2),
            "fast_path": batch.fast,
            "rejected": len(batch.rejected),
            "per_record_path_records_per_s": round(slow_count / slow_seconds),
            "body_bytes": round(sum(map(len, made)) / len(made)),
        }
    return results


# against a collector ------------------------------------------------------------------------------
def accepted_of(protocol: str, status: int, answer: bytes, size: int) -> int:
    if protocol.startswith("otlp") and status == 200:
        if protocol == "otlp-json":
            rejected = int(orjson.loads(answer).get("partialSuccess", {}).get("rejectedLogRecords", 0))
        else:
            rejected = ExportLogsServiceResponse.FromString(answer).partial_success.rejected_log_records
        return size - rejected
    if protocol.startswith("loki"):
        return size if status == 204 else 0
    if protocol == "elasticsearch":
        if status != 200:
            return 0
        if b'"errors":false' in answer[:64]:  # as Filebeat and Logstash do: the items only when errors is true
            return size
        items = orjson.loads(answer)["items"]
        return sum(1 for item in items if "error" not in next(iter(item.values())))
    if protocol == "splunk":
        return size if status == 200 and orjson.loads(answer).get("code") == 0 else 0
    if status == 200:
        return orjson.loads(answer)["accepted"]
    return 0


def _summary(accepted: int, elapsed: float, latencies: list[float], extra: dict) -> dict:
    latencies.sort()
    return {
        "records_per_s": round(accepted / elapsed),
        "accepted": accepted,
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        **extra,
        "latency_ms": {
            "p50": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
            "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
        },
    }


async def forward_load(port: int, size: int, clients: int, seconds: float) -> dict:
    """PackedForward messages with ``chunk`` from ``clients`` connections, one awaiting its ack at a time."""
    made, _, _ = bodies("forward", size, 16)
    chunks = [msgpack.unpackb(body, raw=False)[2]["chunk"] for body in made]
    latencies: list[float] = []
    accepted = 0
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        unpacker = msgpack.Unpacker(raw=False)
        n = number
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(made[n % len(made)])
                await writer.drain()
                answer = None
                while answer is None:
                    data = await reader.read(4096)
                    if not data:
                        return
                    unpacker.feed(data)
                    answer = next(unpacker, None)
                latencies.append(time.perf_counter() - started)
                if answer != {"ack": chunks[n % len(made)]}:
                    raise RuntimeError(f"unexpected forward answer {answer!r}")
                accepted += size
                n += clients
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return _summary(accepted, time.perf_counter() - started, latencies, {})


def accepted_metric(metric_ports: list[int], protocol: str) -> float:
    import requests

    pattern = rf'^logwarden_collector_records_accepted_total\{{protocol="{re.escape(protocol)}"\}} (\S+)$'
    return sum(float(value) for port in metric_ports
               for value in re.findall(pattern, requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text,
                                       re.M))


def syslog_load(metric_ports: list[int], port: int, size: int, clients: int, seconds: float) -> dict:
    """Octet-counted RFC 5424 streamed from ``clients`` connections for ``seconds``; what became durable (the
    collectors' /metrics on ``metric_ports``)."""
    import threading

    made, _, _ = bodies("syslog", size, 16)
    before = accepted_metric(metric_ports, "syslog-tcp")
    sent = [0] * clients
    deadline = time.perf_counter() + seconds

    def sender(number: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            n = number
            while time.perf_counter() < deadline:
                sock.sendall(made[n % len(made)])
                sent[number] += size
                n += clients
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(120)
            sock.recv(1)  # the collector closes once everything it read is durable

    started = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    durable = int(accepted_metric(metric_ports, "syslog-tcp") - before)
    return {"records_per_s": round(durable / elapsed), "accepted": durable, "sent": sum(sent),
            "seconds": round(elapsed, 2), "acknowledged": False}


async def load(port: int, protocol: str, size: int, clients: int, seconds: float) -> dict:
    made, headers, path = bodies(protocol, size, 16)
    url = f"http://127.0.0.1:{port}{path}"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = 0
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal accepted
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            n = number
            while time.perf_counter() < deadline:
                body = made[n % len(made)]
                n += clients
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                accepted += accepted_of(protocol, response.status, answer, size)
                if response.status in (429, 503):
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                elif response.status >= 400:
                    return  # every body is valid: the route is not served (404, or the native API's 400)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return _summary(accepted, time.perf_counter() - started, latencies, {"statuses": statuses})


def against_collector(names: list[str], size: int, clients: int, seconds: float, kind: type = Collector,
                      collectors: int = 1) -> dict:
    data = Path(tempfile.mkdtemp(prefix="lw-bench-protocols-"))
    collector = CollectorGroup(data, collectors) if collectors > 1 else kind(data)
    results: dict = {}
    try:
        collector.wait_ready()
        for name in names:
            collector.peak_rss = 0
            cpu_before = collector.cpu_seconds()
            if name in STREAMS and not hasattr(collector, "forward_port"):
                results[name] = {"skipped": "a TCP protocol: --mode collector only"}
                continue
            if name == "forward":
                results[name] = asyncio.run(forward_load(collector.forward_port, size, clients, seconds))
            elif name == "syslog":
                results[name] = syslog_load(getattr(collector, "metric_ports", [collector.http_port]),
                                            collector.syslog_port, size, clients, seconds)
            else:
                results[name] = asyncio.run(load(collector.http_port, name, size, clients, seconds))
            results[name]["collector_peak_rss_mb"] = round(collector.peak_rss / 2**20, 1)
            cpu = collector.cpu_seconds() - cpu_before  # the collector's own CPU: less sensitive to other load
            results[name]["collector_cpu_cores"] = round(cpu / results[name]["seconds"], 2)
            results[name]["collector_cpu_us_per_record"] = round(cpu / max(results[name]["accepted"], 1) * 1e6, 1)
    finally:
        collector.stop()
        shutil.rmtree(data, ignore_errors=True)
    return results


class ProtocolsCollector(Collector):
    """``logwarden collector`` (default configuration) with its HTTP, syslog and forward ports; as one of
    several on the same ``ports`` (SO_REUSEPORT) with its own ``instance`` and ``admin_port``."""

    def __init__(self, data: Path, ports: tuple[int, int, int] | None = None, instance: str | None = None,
                 admin_port: int | None = None) -> None:  # noqa: D107 - replaces Collector's command
        import threading

        self.http_port, self.syslog_port, self.forward_port = ports or (free_port(), free_port(), free_port())
        self.tcp_port = None
        self.metric_ports = [self.http_port if admin_port is None else admin_port]
        command = [sys.executable, "-m", "logwarden", "collector", "--data-dir", str(data),
                   "--http-port", str(self.http_port), "--no-tcp", "--syslog-port", str(self.syslog_port),
                   "--forward-port", str(self.forward_port)]
        if ports is not None:
            command += ["--reuse-port", "--admin-port", str(admin_port)] + (["--instance", instance] if instance else [])
        # its log to a file: a pipe nobody reads would stall it once full (a line per stream connection)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.log)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{self.metric_ports[0]}/health", timeout=1).ok:
                    self._sampler.start()
                    return
            except requests.RequestException:
                time.sleep(0.1)
        self.log.seek(0)
        raise RuntimeError(self.log.read().decode(errors="replace")[-5000:])


class CollectorGroup:
    """``count`` collectors on the same ports (as ``logwarden up --collectors N`` runs them): the kernel
    spreads the clients' connections over them; CPU and peak RSS are their sums."""

    def __init__(self, data: Path, count: int) -> None:  # noqa: D107
        ports = (free_port(), free_port(), free_port())
        self.members = [ProtocolsCollector(data, ports, f"c{n}" if n > 1 else None, free_port())
                        for n in range(1, count + 1)]
        self.http_port, self.syslog_port, self.forward_port = ports
        self.tcp_port = None
        self.metric_ports = [member.metric_ports[0] for member in self.members]

    @property
    def peak_rss(self) -> int:
        return sum(member.peak_rss for member in self.members)

    @peak_rss.setter
    def peak_rss(self, value: int) -> None:
        for member in self.members:
            member.peak_rss = value

    def wait_ready(self) -> None:
        for member in self.members:
            member.wait_ready()

    def cpu_seconds(self) -> float:
        return sum(member.cpu_seconds() for member in self.members)

    def stop(self) -> None:
        for member in self.members:
            member.stop()


class MountedCollector(Collector):
    """This script's ``--serve`` in a child process: the protocols mounted over an Ingestor."""

    def __init__(self, data: Path) -> None:  # noqa: D107 - replaces Collector's command
        import threading

        self.http_port = self.tcp_port = free_port()
        command = [sys.executable, __file__, "--serve", "--data", str(data), "--port", str(self.http_port)]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)


def serve(data: Path, port: int) -> None:
    """Serve the mounted protocols on ``port`` until SIGTERM (the ``--mode mounted`` child)."""
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from aiohttp import web

    from logwarden.collector.budget import MemoryBudget
    from logwarden.collector.config import CollectorConfig
    from logwarden.collector.ingest import Ingestor
    from logwarden.collector.metrics import CollectorMetrics
    from logwarden.collector.protocols.mount import mount_protocols
    from logwarden.common.paths import DataDir

    config = CollectorConfig()
    paths = DataDir.at(data).create()
    validator = RecordValidator(skew=config.skew, limits=config.limits)
    decoder = BatchDecoder(validator, config.max_line_bytes, config.max_body_bytes, columnar=config.columnar)
    executor = ThreadPoolExecutor(max_workers=int(os.environ.get("LW_BENCH_DECODE_THREADS", "2")), thread_name_prefix="decode")

    async def main_loop() -> None:
        ingestor = Ingestor(paths, validator, config.batch, CollectorMetrics(), lambda batch_id: False,
                            MemoryBudget(config.memory_budget_bytes), decoder)
        await ingestor.start()
        loop = asyncio.get_running_loop()

        async def native(request: web.Request) -> web.Response:
            body = await request.read()
            batch = await loop.run_in_executor(executor, decoder.decoded_body, body, request.content_type)
            result = await ingestor.submit(batch, "http", "http:bench", "default")
            return web.json_response(result.to_dict(), status=200 if result.accepted else 400)

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app = web.Application(client_max_size=config.max_body_bytes)
        app.router.add_get("/health", health)
        mount_protocols(app, ingestor, lambda request: "default", executor,
                        fallbacks={("POST", "/v1/logs"): native})
        runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()
        await ingestor.stop()

    asyncio.run(main_loop())
    executor.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["decoders", "mounted", "collector"], default="decoders")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated, see the docstring")
    parser.add_argument("--batch", type=int, default=1000, help="records per body")
    parser.add_argument("--repeat", type=int, default=5, help="decoders mode: runs, the fastest counts")
    parser.add_argument("--seconds", type=float, default=15.0, help="collector mode: duration per protocol")
    parser.add_argument("--clients", type=int, default=4, help="collector mode: concurrent keep-alive clients")
    parser.add_argument("--runs", type=int, default=1, help="collector/mounted mode: runs, a fresh collector each")
    parser.add_argument("--collectors", type=int, default=1,
                        help="collector mode: this many collectors on the same ports (SO_REUSEPORT), as "
                             "`logwarden up --collectors N` runs them")
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.data), args.port)
        return
    names = [name.strip() for name in args.protocols.split(",") if name.strip()]
    load_before = os.getloadavg()
    runs = []
    for _ in range(1 if args.mode == "decoders" else args.runs):
        started_load = os.getloadavg()[0]
        if args.mode == "decoders":
            results = decoders(names, args.batch, args.repeat)
        else:
            kind = MountedCollector if args.mode == "mounted" else ProtocolsCollector
            results = against_collector(names, args.batch, args.clients, args.seconds, kind, args.collectors)
        reference = results.get("native-ndjson", {}).get("records_per_s")
        for name, result in results.items():
            if reference and name != "native-ndjson" and "records_per_s" in result:
                result["ratio_to_native"] = round(result["records_per_s"] / reference, 2)
        runs.append({"loadavg_1m_before": round(started_load, 2), "results": results})
    document = {
        "mode": args.mode,
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "records_per_body": args.batch,
        "clients": args.clients,
        "collectors": args.collectors,
        "runs": runs,
        "goal_records_per_s": GOALS,
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
