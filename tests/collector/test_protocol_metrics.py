"""``/metrics`` counts records accepted and rejected per protocol, under the protocol's own name: one valid and
one refused record through every input of a running collector (the native API, OTLP protobuf and JSON,
Loki, Elasticsearch bulk, Splunk HEC, raw text, Fluent forward, syslog over TCP and UDP, NDJSON over TCP),
and the README names every one of these labels."""
from __future__ import annotations

import re
import socket
import time

import msgpack
import orjson
import requests
from google.protobuf.json_format import MessageToJson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.collector.helpers import RunningCollector, collector_config
from tests.readme import send_logs_section

NOW = time.time()
STAMP = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW))
LONG_SERVICE = "s" * 200  # over the schema's length limit: refused by every protocol


def otlp(services: list[str]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for service in services:
        resource_logs = request.resource_logs.add()
        attribute = resource_logs.resource.attributes.add()
        attribute.key, attribute.value.string_value = "service.name", service
        record = resource_logs.scope_logs.add().log_records.add()
        record.time_unix_nano = int(NOW * 1e9)
        record.severity_number = 17
        record.body.string_value = f"otlp from {service[:10]}"
    return request


def loki(services: list[str]) -> dict:
    return {"streams": [{"stream": {"service_name": service}, "values": [[str(int(NOW * 1e9)), "loki line"]]}
                        for service in services]}


def bulk(services: list[str]) -> bytes:
    return b"".join(b'{"create":{"_index":"logs"}}\n' + orjson.dumps(
        {"@timestamp": STAMP, "log.level": "warn", "service.name": service, "message": "bulk doc"}) + b"\n"
        for service in services)


def hec(services: list[str]) -> bytes:
    return b"".join(orjson.dumps({"time": NOW, "event": {"message": "hec event", "level": "warn", "service": service}})
                    for service in services)


def native(services: list[str]) -> bytes:
    return b"".join(orjson.dumps({"timestamp": STAMP, "level": "INFO", "service": service, "message": "native"})
                    + b"\n" for service in services)


def forward(port: int) -> None:
    entries = [[int(NOW), {"message": "forward ok", "level": "info"}],
               [int(NOW), {"message": "forward bad", "service": LONG_SERVICE}]]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(msgpack.packb(["app", entries, {"chunk": "c1"}]))
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            unpacker.feed(sock.recv(1024))
            for answer in unpacker:
                assert answer == {"ack": "c1"}
                return


def syslog(port: int, kind: int) -> None:
    good, bad = b"<11>Nov 22 10:00:00 web01 billing: payment failed", b"not syslog at all"
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_DGRAM:
            for message in (good, bad):
                sock.sendto(message, ("127.0.0.1", port))
        else:
            sock.connect(("127.0.0.1", port))
            sock.sendall(good + b"\n" + bad + b"\n")


def counts(text: str, name: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for labels, value in re.findall(rf"^logwarden_collector_records_{name}_total\{{([^}}]*)\}} (\S+)$", text, re.M):
        protocol = re.search(r'protocol="([^"]*)"', labels).group(1)
        found[protocol] = found.get(protocol, 0.0) + float(value)
    return found


def readme_labels() -> set[str]:
    sentence = re.search(r"the labels are\s+(.*?)\)", send_logs_section(), re.S).group(1)
    return set(re.findall(r"`([a-z-]+)`", sentence))


EXPECTED = {"http", "otlp", "loki", "elasticsearch", "splunk", "text", "forward", "syslog-tcp", "syslog-udp",
            "ndjson-tcp"}


def test_every_protocol_counts_its_accepted_and_rejected_records_under_its_name(tmp_path):
    config = collector_config(forward_port=0, forward_port_required=True)
    with RunningCollector(tmp_path, config) as collector:
        url, server = collector.url, collector.server
        services = ["svc", LONG_SERVICE]
        answers = [
            requests.post(f"{url}/v1/logs", data=native(services), headers={"Content-Type": "application/x-ndjson"}),
            requests.post(f"{url}/v1/logs", data=otlp(services).SerializeToString(),
                          headers={"Content-Type": "application/x-protobuf"}),
            requests.post(f"{url}/v1/logs", data=MessageToJson(otlp(services)),
                          headers={"Content-Type": "application/json"}),
            requests.post(f"{url}/loki/api/v1/push", json=loki(services)),
            requests.post(f"{url}/_bulk", data=bulk(services), headers={"Content-Type": "application/x-ndjson"}),
            requests.post(f"{url}/services/collector/event", data=hec(services)),
            requests.post(f"{url}/v1/logs?service=web", data=b"a text line\n" + b"z" * 2_000_000 + b"\n",
                          headers={"Content-Type": "text/plain"}),
        ]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 400, 200, 400, 200], [
            answer.text[:200] for answer in answers]
        forward(server.forward_port)
        syslog(server.syslog_port, socket.SOCK_STREAM)
        syslog(server.syslog_port, socket.SOCK_DGRAM)
        with socket.create_connection(("127.0.0.1", server.tcp_port)) as sock:
            sock.sendall(native(services))
        wanted = {protocol: 1.0 for protocol in EXPECTED} | {"otlp": 2.0}  # OTLP came as protobuf and as JSON
        deadline = time.monotonic() + 20
        while True:
            text = requests.get(f"{url}/metrics", timeout=10).text
            accepted, rejected = counts(text, "accepted"), counts(text, "rejected")
            if (accepted, rejected) == (wanted, wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert accepted == wanted, accepted
    assert rejected == wanted, rejected
    assert EXPECTED <= readme_labels(), "the README names every label"
