"""kill -9 in the middle of traffic: every acknowledged record reaches the spool exactly once.

For the native API, and for every shipper protocol with acknowledgements (OTLP protobuf posted as an
``ExportLogsServiceRequest``, Elasticsearch bulk through the official client, Loki push, Splunk HEC, Fluent
forward with the ``chunk`` option): three clients send, the collector is killed with SIGKILL among open,
closing and spooled batches, restarted, and the clients resend what was not acknowledged, as shippers do.
Each record acknowledged before the kill is in the spool exactly once; a resent record at least once and at
most twice (twice when its first request had been made durable but its answer was lost in the kill)."""

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

import msgpack
import orjson
import pytest
import requests

from tests.collector.helpers import spooled_rows

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(data: Path, port: int, config: Path, forward_port: int | None = None) -> subprocess.Popen:
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
        *(["--forward-port", str(forward_port)] if forward_port else ["--no-forward"]),
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


# --- the shipper protocols with acknowledgements -------------------------------------------------------
RECORDS_PER_REQUEST = 250
DURABILITY_CONFIG = ("collector:\n  batch: {max_records: 700, max_age: 50ms}\n"
                     "  timestamp_skew: {max_future: 3650d, max_past: 3650d}\n")


class OtlpSender:
    """OTLP/HTTP protobuf, as an exporter posts it: acknowledged by a 200 without rejected records."""

    def __init__(self, port: int, forward_port: int) -> None:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        self.pb = logs_service_pb2
        self.url = f"http://127.0.0.1:{port}/v1/logs"
        self.session = requests.Session()

    def send(self, messages: list[str]) -> bool:
        request = self.pb.ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        attribute = resource_logs.resource.attributes.add()
        attribute.key, attribute.value.string_value = "service.name", "svc"
        scope_logs = resource_logs.scope_logs.add()
        now = time.time_ns()
        for message in messages:
            record = scope_logs.log_records.add()
            record.time_unix_nano, record.severity_number = now, 9
            record.body.string_value = message
        response = self.session.post(self.url, data=request.SerializeToString(), timeout=10,
                                     headers={"Content-Type": "application/x-protobuf"})
        if response.status_code != 200:
            return False
        answer = self.pb.ExportLogsServiceResponse.FromString(response.content)
        return answer.partial_success.rejected_log_records == 0

    def close(self) -> None:
        self.session.close()


class ElasticsearchSender:
    """The official client's bulk helper: acknowledged when every item is."""

    def __init__(self, port: int, forward_port: int) -> None:
        from elasticsearch import Elasticsearch, helpers

        self.helpers = helpers
        self.client = Elasticsearch(f"http://127.0.0.1:{port}", request_timeout=10, max_retries=0)

    def send(self, messages: list[str]) -> bool:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        actions = ({"_op_type": "create", "_index": "logs-svc",
                    "_source": {"@timestamp": stamp, "log.level": "info", "service.name": "svc", "message": m}}
                   for m in messages)
        ok, errors = self.helpers.bulk(self.client, actions, chunk_size=len(messages), raise_on_error=False)
        return ok == len(messages) and not errors

    def close(self) -> None:
        self.client.close()


class LokiSender:
    """Loki push (JSON): acknowledged by a 204."""

    def __init__(self, port: int, forward_port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/loki/api/v1/push"
        self.session = requests.Session()

    def send(self, messages: list[str]) -> bool:
        now = str(time.time_ns())
        body = {"streams": [{"stream": {"service_name": "svc", "level": "info"},
                             "values": [[now, message] for message in messages]}]}
        return self.session.post(self.url, data=orjson.dumps(body), timeout=10,
                                 headers={"Content-Type": "application/json"}).status_code == 204

    def close(self) -> None:
        self.session.close()


class SplunkSender:
    """Splunk HEC, concatenated events: acknowledged by ``{"code": 0}``."""

    def __init__(self, port: int, forward_port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/services/collector/event"
        self.session = requests.Session()

    def send(self, messages: list[str]) -> bool:
        now = time.time()
        body = b"".join(orjson.dumps({"time": now, "source": "svc",
                                      "event": {"message": m, "level": "info", "service": "svc"}}) for m in messages)
        response = self.session.post(self.url, data=body, timeout=10)
        return response.status_code == 200 and response.json().get("code") == 0

    def close(self) -> None:
        self.session.close()


class ForwardSender:
    """Fluent forward, Forward mode with the ``chunk`` option: acknowledged by ``{"ack": chunk}``."""

    def __init__(self, port: int, forward_port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", forward_port), timeout=10)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.chunks = 0

    def send(self, messages: list[str]) -> bool:
        self.chunks += 1
        chunk = f"chunk-{id(self)}-{self.chunks}"
        now = int(time.time())
        self.sock.sendall(msgpack.packb(["svc.app", [[now, {"message": m, "level": "info"}] for m in messages],
                                         {"chunk": chunk, "size": len(messages)}]))
        while True:
            data = self.sock.recv(4096)
            if not data:
                return False
            self.unpacker.feed(data)
            for answer in self.unpacker:
                return answer == {"ack": chunk}

    def close(self) -> None:
        self.sock.close()


SENDERS = {"otlp": OtlpSender, "elasticsearch": ElasticsearchSender, "loki": LokiSender, "splunk": SplunkSender,
           "forward": ForwardSender}


def _send_once(kind: type, port: int, forward_port: int, messages: list[str]) -> bool:
    """One try with a new client; False when not acknowledged (or the connection failed)."""
    try:
        sender = kind(port, forward_port)
    except OSError:
        return False
    try:
        return sender.send(messages)
    except Exception:  # noqa: BLE001 - any failure of the client: the request is not acknowledged
        return False
    finally:
        sender.close()


@pytest.mark.parametrize("protocol", sorted(SENDERS))
def test_kill_9_during_a_shippers_send_loses_no_acknowledged_record(tmp_path, protocol):
    config = tmp_path / "logwarden.yaml"
    config.write_text(DURABILITY_CONFIG)
    data, port, forward_port = tmp_path / "data", free_port(), free_port()
    process = start_collector(data, port, config, forward_port)
    kind = SENDERS[protocol]
    acknowledged: list[str] = []  # acknowledged by the first collector
    unacknowledged: list[list[str]] = []  # sent (or about to be) when the collector died: to resend
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        sender = kind(port, forward_port)
        try:
            for n in range(100_000):
                if stop.is_set():
                    return
                messages = [f"{protocol}-c{number}-b{n}-r{i}" for i in range(RECORDS_PER_REQUEST)]
                try:
                    done = sender.send(messages)
                except Exception:  # noqa: BLE001 - the collector died under the request
                    done = False
                with lock:
                    if done:
                        acknowledged.extend(messages)
                    else:
                        unacknowledged.append(messages)
                if not done:
                    return
        finally:
            sender.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60

    def open_batch_holds_records() -> bool:
        return any(path.stat().st_size for path in (data / "wal").glob("*.wal") if path.exists())

    # kill once batches have been spooled and the open one holds acknowledged records
    try:
        while time.monotonic() < deadline and (
            len(acknowledged) < 5_000 or not list((data / "spool").glob("*")) or not open_batch_holds_records()
        ):
            time.sleep(0.01)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        stop.set()
        for thread in threads:
            thread.join(30)
    assert len(acknowledged) >= 2_000, (len(acknowledged), len(unacknowledged))
    assert any(path.stat().st_size for path in (data / "wal").glob("*.wal")), "the kill left nothing to recover"

    process = start_collector(data, port, config, forward_port)  # recovers the write-ahead log
    try:
        for messages in unacknowledged:  # as a shipper does: what was not acknowledged is sent again
            assert any(_send_once(kind, port, forward_port, messages) for _ in range(5)), "resend refused"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    counts = Counter(row["message"] for row in spooled_rows(data))
    first = set(acknowledged)
    assert len(first) == len(acknowledged)
    lost = first - set(counts)
    assert not lost, f"{len(lost)} acknowledged records lost"
    duplicated = [message for message in first if counts[message] > 1]
    assert not duplicated, f"{len(duplicated)} acknowledged records stored twice"
    resent = {message for messages in unacknowledged for message in messages}
    assert all(1 <= counts[message] <= 2 for message in resent), "a resent record is missing or stored 3 times"
    assert set(counts) == first | resent, "records that nobody sent"
    assert not list((data / "wal").glob("*.wal"))
