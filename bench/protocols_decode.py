"""Decoding speed of the Elasticsearch bulk, Splunk HEC, Fluent forward and syslog inputs, in-process, with
native NDJSON decoding as the reference in the same run.

Each case turns ``--batch`` records from their wire form into a validated batch (what runs in the
collector's decode threads): the protocol's decoder, then the collector's validation
(``BatchDecoder.mapped``, the columnar check of the declared fields; ``BatchDecoder.records`` for
the per-record path). Rates are records per CPU second of this thread (``time.thread_time``: on a
shared machine, wall time would count the other processes), fastest of ``--repeat`` runs; the
wall-clock rate of that run is given too. No write-ahead log, no network: the full path is
measured by ``bench/protocols.py``.

Cases:

- ``native-ndjson-plain`` / ``native-ndjson-attributes``: ``BatchDecoder.decoded_body`` on NDJSON
  of the native shape, without attributes (the columnar fast path) and with three attributes
  (nested ``host``/``http`` objects: the per-record path) - the reference;
- ``elasticsearch-bulk``: Filebeat-like ECS documents (``@timestamp``, ``log.level``,
  ``service.name``, ``message``, ``user.id``, ``trace.id``, ``event.duration``, ``host``,
  ``agent``, ``ecs``...) in ``create`` action pairs, through ``ElasticsearchBulk.decode_batch``;
  ``elasticsearch-bulk-per-record``: the same with per-record validation (what the mount runs
  without ``decode_batch``);
- ``splunk-hec-event``: concatenated HEC events with text events (format detection on each);
- ``forward-packed``: one PackedForward message of records as Fluent Bit sends them after a
  parser (``level``, ``message``, ``service``, ``user_id``...), EventTime times, through
  ``ForwardSession.feed`` (unpacking, mapping and validation); ``forward-packed-gzip`` the same
  compressed; ``forward-raw-lines``: records of Fluent Bit's tail input without a parser
  (``{"log": ...}``), plain lines (no detection) and logfmt lines (format detection);
- ``syslog-rfc3164`` / ``syslog-rfc5424``: framed messages through ``syslog_record`` and
  ``BatchDecoder.mapped`` (``-per-record``: ``BatchDecoder.records``, what ``SyslogSession`` runs
  today); ``syslog-cef``: CEF payloads behind an RFC 3164 header (payload parsing).

Usage: ``python bench/protocols_decode.py [--batch 5000] [--repeat 5]`` (prints one JSON document).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import random
import struct
import sys
import time
from datetime import datetime, timezone
from typing import Callable

import msgpack
import orjson

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import RawRecord
from logwarden.collector.forward import ForwardOptions, ForwardSession
from logwarden.collector.protocols.base import ProtocolRequest
from logwarden.collector.protocols.elasticsearch import ElasticsearchBulk
from logwarden.collector.protocols.splunk_hec import SplunkHec
from logwarden.collector.syslog import syslog_line, syslog_record
from logwarden.collector.validation import RecordValidator, SkewLimits

SERVICES = ["payment-service", "auth-service", "checkout", "inventory", "search-api"]
LEVELS = ["info"] * 8 + ["warn", "error", "debug"]
NATIVE_LEVELS = ["INFO"] * 8 + ["WARNING", "ERROR", "DEBUG"]
PATHS = ["/api/v1/orders", "/api/v1/cart", "/login", "/api/v1/search?q=shoes", "/health"]


def decoder() -> BatchDecoder:
    validator = RecordValidator(skew=SkewLimits(max_future=3600, max_past=30 * 86400))
    return BatchDecoder(validator, max_line_bytes=1 << 20, max_body_bytes=256 << 20)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def native_records(n: int, rng: random.Random, attributes: bool) -> list[dict]:
    now = time.time() - 60
    out = []
    for i in range(n):
        record = {
            "timestamp": iso(now + i / 1000),
            "level": rng.choice(NATIVE_LEVELS),
            "service": rng.choice(SERVICES),
            "message": f"GET {rng.choice(PATHS)} 200 in {rng.randint(1, 900)} ms",
            "user_id": f"u-{rng.randint(1, 5000)}",
            "request_id": f"{rng.getrandbits(64):016x}",
        }
        if attributes:
            record["host"] = {"name": f"web-{rng.randint(1, 20)}"}
            record["http"] = {"status": 200, "method": "GET"}
            record["region"] = "eu-west-1"
        out.append(record)
    return out


def ecs_docs(n: int, rng: random.Random) -> list[dict]:
    now = time.time() - 60
    docs = []
    for i in range(n):
        docs.append({
            "@timestamp": iso(now + i / 1000),
            "log": {"level": rng.choice(LEVELS), "logger": "app.http"},
            "message": f"GET {rng.choice(PATHS)} 200 in {rng.randint(1, 900)} ms",
            "service": {"name": rng.choice(SERVICES), "version": "1.4.2"},
            "user": {"id": f"u-{rng.randint(1, 5000)}"},
            "trace": {"id": f"{rng.getrandbits(128):032x}"},
            "event": {"duration": rng.randint(1, 900) * 1_000_000, "dataset": "app.log"},
            "host": {"name": f"web-{rng.randint(1, 20)}"},
            "agent": {"type": "filebeat", "version": "8.15.0"},
            "ecs": {"version": "8.11.0"},
        })
    return docs


def bulk_body(docs: list[dict]) -> bytes:
    action = b'{"create":{"_index":"logs-app-default"}}\n'
    return b"".join(action + orjson.dumps(doc) + b"\n" for doc in docs)


def hec_body(n: int, rng: random.Random) -> bytes:
    now = time.time() - 60
    return b"".join(
        orjson.dumps({
            "time": now + i / 1000, "host": f"web-{rng.randint(1, 20)}", "source": rng.choice(SERVICES),
            "sourcetype": "app", "event": f"{rng.choice(['INFO', 'WARN', 'ERROR'])} payment {i} processed",
            "fields": {"region": "eu"},
        })
        for i in range(n)
    )


def event_time(seconds: float) -> msgpack.ExtType:
    whole = int(seconds)
    return msgpack.ExtType(0, struct.pack(">II", whole, int((seconds - whole) * 1e9)))


def fluent_records(n: int, rng: random.Random) -> list:
    now = time.time() - 60
    return [
        [event_time(now + i / 1000), {
            "level": rng.choice(LEVELS), "message": f"GET {rng.choice(PATHS)} 200 in {rng.randint(1, 900)} ms",
            "service": rng.choice(SERVICES), "user_id": f"u-{rng.randint(1, 5000)}",
            "request_id": f"{rng.getrandbits(64):016x}", "stream": "stdout",
            "kubernetes": {"pod_name": f"web-{rng.randint(1, 9)}", "namespace_name": "shop"},
        }]
        for i in range(n)
    ]


def fluent_raw_lines(n: int, rng: random.Random) -> list:
    now = time.time() - 60
    out = []
    for i in range(n):
        if i % 2:
            line = f"GET {rng.choice(PATHS)} 200 in {rng.randint(1, 900)} ms"
        else:
            line = f'level={rng.choice(LEVELS)} msg="payment {i}" user_id=u-{rng.randint(1, 5000)}'
        out.append([event_time(now + i / 1000), {"log": line, "stream": "stdout"}])
    return out


def forward_message(entries: list, gzipped: bool = False) -> bytes:
    payload = b"".join(msgpack.packb(entry) for entry in entries)
    option = {"size": len(entries), "chunk": "bench"}
    if gzipped:
        payload = gzip.compress(payload, 1)
        option["compressed"] = "gzip"
    return msgpack.packb(["app.web", payload, option])


def syslog_messages(n: int, rng: random.Random, kind: str) -> list[bytes]:
    now = datetime.now(timezone.utc)
    out = []
    for i in range(n):
        pri = 8 + rng.choice([3, 4, 6, 6, 6, 6])
        if kind == "rfc3164":
            stamp = now.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1) if now.day < 10 else now.strftime(
                "%b %d %H:%M:%S")
            out.append(f"<{pri}>{stamp} web-{i % 20} sshd[{1000 + i % 50}]: Accepted publickey for user{i % 300} "
                       f"from 10.0.{i % 256}.{i % 200} port {40000 + i % 20000} ssh2".encode())
        elif kind == "rfc5424":
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{i % 1000:03d}Z"
            out.append(f"<{pri}>1 {stamp} web-{i % 20} billing {1000 + i % 50} ID47 - payment {i} accepted for "
                       f"order {rng.randint(1, 10**6)}".encode())
        else:
            stamp = now.strftime("%b %d %H:%M:%S")
            out.append(f"<134>{stamp} fw-1 CEF:0|Trend Micro|Deep Security Manager|10.0|600|User Signed In|"
                       f"{rng.randint(1, 10)}|src=10.52.{i % 256}.160 suser=user{i % 300} target=admin "
                       f"msg=User signed in".encode())
    return out


def syslog_case(messages: list[bytes], per_record: bool) -> Callable[[BatchDecoder], DecodedBatch]:
    def run(dec: BatchDecoder) -> DecodedBatch:
        received = datetime.now(timezone.utc)
        records = []
        for index, message in enumerate(messages):
            value, error = syslog_record(message, received)
            records.append(RawRecord(index, message, value, error, syslog_line(value) if value is not None else None))
        return dec.records(records) if per_record else dec.mapped(records)
    return run


def measure(case: Callable[[BatchDecoder], DecodedBatch], dec: BatchDecoder, repeat: int, expected: int) -> dict:
    best = None
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            cpu, wall = time.thread_time(), time.perf_counter()
            batch = case(dec)
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        finally:
            gc.enable()
        if batch.accepted != expected:
            raise SystemExit(f"expected {expected} accepted records, got {batch.accepted} "
                             f"({batch.rejected[:1]})")
        if best is None or cpu < best[0]:
            best = (cpu, wall, batch.fast)
    cpu, wall, fast = best
    return {"records_per_cpu_s": round(expected / cpu), "records_per_wall_s": round(expected / wall),
            "fast_path": fast}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=5000, help="records per decoded body or message")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case; the fastest counts")
    args = parser.parse_args()
    n = args.batch
    rng = random.Random(7)
    dec = decoder()
    es = ElasticsearchBulk()
    hec = SplunkHec()
    plain = b"".join(orjson.dumps(r) + b"\n" for r in native_records(n, rng, attributes=False))
    with_attributes = b"".join(orjson.dumps(r) + b"\n" for r in native_records(n, rng, attributes=True))
    bulk = bulk_body(ecs_docs(n, rng))
    hec_events = hec_body(n, rng)
    packed = forward_message(fluent_records(n, rng))
    packed_gzip = forward_message(fluent_records(n, rng), gzipped=True)
    raw_lines = forward_message(fluent_raw_lines(n, rng))

    def request(path: str, body: bytes) -> ProtocolRequest:
        return ProtocolRequest("POST", path, {}, {}, {}, body, "application/x-ndjson")

    def forward(message: bytes) -> Callable[[BatchDecoder], DecodedBatch]:
        def run(d: BatchDecoder) -> DecodedBatch:
            fed = ForwardSession(d, ForwardOptions()).feed(message)
            assert fed.error is None and fed.acks == ["bench"], fed.error
            return fed.batch
        return run

    cases: dict[str, Callable[[BatchDecoder], DecodedBatch]] = {
        "native-ndjson-plain": lambda d: d.decoded_body(plain, "application/x-ndjson"),
        "native-ndjson-attributes": lambda d: d.decoded_body(with_attributes, "application/x-ndjson"),
        "elasticsearch-bulk": lambda d: es.decode_batch(request("/_bulk", bulk), d),
        "elasticsearch-bulk-per-record": lambda d: d.records(es.decode(request("/_bulk", bulk))),
        "splunk-hec-event": lambda d: hec.decode_batch(request("/services/collector/event", hec_events), d),
        "forward-packed": forward(packed),
        "forward-packed-gzip": forward(packed_gzip),
        "forward-raw-lines": forward(raw_lines),
        "syslog-rfc3164": syslog_case(syslog_messages(n, rng, "rfc3164"), per_record=False),
        "syslog-rfc3164-per-record": syslog_case(syslog_messages(n, rng, "rfc3164"), per_record=True),
        "syslog-rfc5424": syslog_case(syslog_messages(n, rng, "rfc5424"), per_record=False),
        "syslog-rfc5424-per-record": syslog_case(syslog_messages(n, rng, "rfc5424"), per_record=True),
        "syslog-cef": syslog_case(syslog_messages(n, rng, "cef"), per_record=False),
    }
    results = {name: measure(case, dec, args.repeat, n) for name, case in cases.items()}
    reference = results["native-ndjson-plain"]["records_per_cpu_s"]
    for result in results.values():
        result["vs_native_plain"] = round(result["records_per_cpu_s"] / reference, 2)
    print(json.dumps({
        "batch": n,
        "repeat": args.repeat,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
