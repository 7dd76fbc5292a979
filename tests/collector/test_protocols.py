"""Ingest protocols end to end through ``mount_protocols``: OTLP/HTTP logs (protobuf and JSON), Loki push
(JSON and snappy protobuf), raw text; the native API still answering on the shared ``/v1/logs``; the
answers each protocol's clients expect; the fast path equal to the per-record path."""

from __future__ import annotations

import gzip
import time

import cramjam
import orjson
import pytest
import requests
import zstandard
from google.protobuf.json_format import MessageToJson
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.protocols import ProtocolRequest, registered_protocols
from logwarden.collector.protocols.loki import parse_labels
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from tests.collector.loki_push_pb2 import EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter
from tests.collector.protocol_server import ProtocolServer, attributes

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
T0 = 1_795_341_600_000_000_000  # 2026-11-22T10:00:00Z in ns
T0_TEXT = "2026-11-22T10:00:00+00:00"


def value(v) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=value(x)) for k, x in v.items()]))
    return AnyValue(string_value=v)


def kvs(mapping: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=value(v)) for k, v in mapping.items()]


def otlp_request(resources: list[tuple[dict, list[LogRecord]]], scope: str = "app.logger") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for resource, records in resources:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(kvs(resource))
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = scope
        scope_logs.scope.version = "1.2"
        scope_logs.log_records.extend(records)
    return request


def log_record(n: int = 0, body="hello", **fields) -> LogRecord:
    record = LogRecord(time_unix_nano=T0 + n * 1000, severity_number=9, severity_text="INFO")
    record.body.CopyFrom(value(body))
    attrs = fields.pop("attributes", {})
    for key, item in fields.items():
        setattr(record, key, item)
    record.attributes.extend(kvs(attrs))
    return record


def rows_by_message(server: ProtocolServer) -> dict[str, dict]:
    return {row["message"]: row for row in server.rows()}


@pytest.fixture
def server(tmp_path):
    with ProtocolServer(tmp_path) as running:
        yield running


def stopped(server: ProtocolServer) -> ProtocolServer:
    server.__exit__(None, None, None)
    return server


@pytest.fixture
def otlp_body() -> bytes:
    records = [
        log_record(0, "plain text body", attributes={"http.method": "GET", "user_id": "u-1", "retries": 3}),
        log_record(
            1,
            {"event": "login", "ok": True, "tags": ["a", "b"]},
            severity_number=13,
            severity_text="WARN",
            trace_id=bytes(range(16)),
            span_id=bytes(range(8)),
            attributes={"message": "clash", "duration_ms": 12.5, "nested": {"a": [1, 2]}},
        ),
        log_record(2, "observed only", time_unix_nano=0, observed_time_unix_nano=T0 + 5_000_000, severity_number=17,
                   severity_text=""),
        log_record(3, "text only", severity_number=0, severity_text="fatal"),
        log_record(4, "nothing said", severity_number=0, severity_text=""),
    ]
    resource = {"service.name": "checkout", "host.name": "web-1", "k8s.pod.uid": 7}
    return otlp_request([(resource, records), ({"host.name": "web-2"}, [log_record(5, "no service")])]).SerializeToString()


def check_otlp_rows(rows: dict[str, dict]) -> None:
    first = rows["plain text body"]
    assert (first["service"], first["level"], first["user_id"]) == ("checkout", "INFO", "u-1")
    assert first["timestamp"].isoformat() == T0_TEXT
    assert attributes(first) == {
        "http.method": "GET",
        "retries": 3,
        "scope.name": "app.logger",
        "scope.version": "1.2",
        "resource.host.name": "web-1",
        "resource.k8s.pod.uid": 7,
    }
    structured = rows['{"event":"login","ok":true,"tags":["a","b"]}']
    assert structured["level"] == "WARNING" and structured["duration_ms"] == 12.5
    assert structured["timestamp"].isoformat() == "2026-11-22T10:00:00.000001+00:00"
    extra = attributes(structured)
    assert extra["body"] == {"event": "login", "ok": True, "tags": ["a", "b"]}
    assert extra["trace_id"] == "000102030405060708090a0b0c0d0e0f" and extra["span_id"] == "0001020304050607"
    assert extra["attributes.message"] == "clash" and extra["nested"] == {"a": [1, 2]}
    assert extra["level_original"] == "WARN"
    observed = rows["observed only"]
    assert observed["timestamp"].isoformat() == "2026-11-22T10:00:00.005000+00:00"
    assert observed["level"] == "ERROR" and attributes(observed)["level_original"] == 17
    assert rows["text only"]["level"] == "CRITICAL" and attributes(rows["text only"])["level_original"] == "fatal"
    assert rows["nothing said"]["level"] == "INFO" and "level_original" not in attributes(rows["nothing said"])
    assert rows["no service"]["service"] == "unknown_service"
    assert attributes(rows["no service"])["resource.host.name"] == "web-2"


def test_otlp_protobuf_maps_service_level_body_time_ids_and_attributes(server, otlp_body):
    response = requests.post(f"{server.url}/v1/logs", data=otlp_body, headers=PROTOBUF, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    check_otlp_rows(rows_by_message(stopped(server)))


def test_otlp_json_as_message_to_json_writes_it_lands_the_same(server, otlp_body):
    body = MessageToJson(ExportLogsServiceRequest.FromString(otlp_body)).encode()
    response = requests.post(f"{server.url}/v1/logs", data=gzip.compress(body),
                             headers={**JSON, "Content-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200 and response.json() == {}
    check_otlp_rows(rows_by_message(stopped(server)))


def test_otlp_json_as_the_spec_writes_it_hex_ids_integer_enums_string_int64(server):
    body = {
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
            "scopeLogs": [{
                "scope": {"name": "s"},
                "logRecords": [{
                    "timeUnixNano": str(T0),
                    "severityNumber": 21,
                    "body": {"stringValue": "spec json"},
                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                    "spanId": "EEE19B7EC3C1B174",
                    "attributes": [{"key": "n", "value": {"intValue": "9007199254740993"}},
                                   {"key": "d", "value": {"doubleValue": 1.5}},
                                   {"key": "raw", "value": {"bytesValue": "AAE="}}],
                }, {
                    "time_unix_nano": T0, "severity_number": "SEVERITY_NUMBER_DEBUG", "body": {"string_value": "snake"},
                }],
            }],
        }]
    }
    response = requests.post(f"{server.url}/v1/logs", data=orjson.dumps(body), headers=JSON, timeout=10)
    assert response.status_code == 200, response.text
    rows = rows_by_message(stopped(server))
    spec = rows["spec json"]
    assert (spec["service"], spec["level"], spec["timestamp"].isoformat()) == ("cart", "CRITICAL", T0_TEXT)
    extra = attributes(spec)
    assert extra["trace_id"] == "5b8efff798038103d269b633813fc60c" and extra["span_id"] == "eee19b7ec3c1b174"
    assert (extra["n"], extra["d"], extra["raw"]) == (9007199254740993, 1.5, "AAE=")
    assert rows["snake"]["level"] == "DEBUG"


def test_otlp_partial_success_names_the_rejected_count_and_dead_letters_the_original_records(server):
    long_message = "x" * 70_000
    records = [log_record(0, "fine"), log_record(1, long_message), log_record(2, "also fine")]
    body = otlp_request([({"service.name": "api"}, records), ({"service.name": "s" * 200}, [log_record(3, "bad")])])
    response = requests.post(f"{server.url}/v1/logs", data=body.SerializeToString(), headers=PROTOBUF, timeout=10)
    assert response.status_code == 200
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_log_records == 2
    assert "2 of 4 log records rejected" in partial.error_message and "message" in partial.error_message
    json_body = MessageToJson(body).encode()
    answer = requests.post(f"{server.url}/v1/logs", data=json_body, headers=JSON, timeout=10).json()
    assert answer["partialSuccess"]["rejectedLogRecords"] == "2"
    stopped(server)
    assert sorted(row["message"] for row in server.rows()) == ["also fine", "also fine", "fine", "fine"]
    letters = server.letters()
    assert len(letters) == 4 and {letter.protocol for letter in letters} == {"otlp"}
    protobuf_letters = [letter for letter in letters if not letter.raw.startswith(b"{")]
    assert sorted(LogRecord.FromString(letter.raw).body.string_value for letter in protobuf_letters) == [
        "bad", long_message]
    assert {letter.field for letter in letters} == {"message", "service"}


def test_otlp_unreadable_bodies_are_400_with_a_status_in_the_request_encoding(server):
    response = requests.post(f"{server.url}/v1/logs", data=b"\x0a\xff\xff\xff\x0fgarbage", headers=PROTOBUF, timeout=10)
    assert response.status_code == 400
    status = response.content  # google.rpc.Status: code 3 (INVALID_ARGUMENT), then the message
    assert status.startswith(b"\x08\x03\x12") and b"ExportLogsServiceRequest" in status
    response = requests.post(f"{server.url}/v1/logs", data=b'{"resourceLogs": [1, 2]}', headers=JSON, timeout=10)
    assert response.status_code == 400 and response.json()["code"] == 3
    response = requests.post(f"{server.url}/v1/logs", data=b'{"resourceLogs": "x"', headers=JSON, timeout=10)
    assert response.status_code == 400 and "invalid OTLP JSON" in response.json()["message"]


def test_the_native_api_keeps_v1_logs_for_ndjson_arrays_and_plain_objects(server):
    record = {"timestamp": "2026-11-22T10:00:00Z", "level": "warn", "service": "n", "message": "native"}
    ndjson = requests.post(f"{server.url}/v1/logs", data=orjson.dumps(record),
                           headers={"Content-Type": "application/x-ndjson"}, timeout=10)
    array = requests.post(f"{server.url}/v1/logs", data=orjson.dumps([record]), headers=JSON, timeout=10)
    single = requests.post(f"{server.url}/v1/logs", data=orjson.dumps(record), headers=JSON, timeout=10)
    assert [r.json()["accepted"] for r in (ndjson, array, single)] == [1, 1, 1]
    rows = stopped(server).rows()
    assert {row["level"] for row in rows} == {"WARNING"} and len(rows) == 3


def test_tenant_comes_from_the_credential_and_a_bad_one_is_refused(server, otlp_body):
    bad = requests.post(f"{server.url}/v1/logs", data=otlp_body,
                        headers={**PROTOBUF, "Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401
    good = requests.post(f"{server.url}/v1/logs", data=otlp_body,
                         headers={**PROTOBUF, "Authorization": "Bearer token-of-acme-0123456789"}, timeout=10)
    assert good.status_code == 200
    assert {row["tenant"] for row in stopped(server).rows()} == {"acme"}


def test_a_failing_write_ahead_log_is_503_and_a_spent_budget_429_both_retryable(server, otlp_body):
    server.ingestor.wal.failed = "disk full"
    otlp = requests.post(f"{server.url}/v1/logs", data=otlp_body, headers=PROTOBUF, timeout=10)
    loki = requests.post(f"{server.url}/loki/api/v1/push", json={"streams": []}, timeout=10)
    assert (otlp.status_code, loki.status_code) == (503, 503)
    assert otlp.headers["Retry-After"] == loki.headers["Retry-After"] == "1"
    assert otlp.content.startswith(b"\x08\x0e")  # google.rpc.Status UNAVAILABLE (14)
    server.ingestor.wal.failed = None
    server.call(_force_budget(server, 10 << 30))
    throttled = requests.post(f"{server.url}/loki/api/v1/push", json={"streams": []}, timeout=10)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    server.call(_force_budget(server, -(10 << 30)))
    assert requests.post(f"{server.url}/loki/api/v1/push", json={"streams": []}, timeout=10).status_code == 204


async def _force_budget(server: ProtocolServer, size: int) -> None:
    if size > 0:
        server.ingestor.budget.force(size)
    else:
        server.ingestor.budget.release(-size)


def test_bodies_over_the_limit_bombs_and_truncated_compression(tmp_path):
    with ProtocolServer(tmp_path, max_body_bytes=20_000) as server:
        big = otlp_request([({"service.name": "a"}, [log_record(i, "x" * 100) for i in range(300)])]).SerializeToString()
        assert requests.post(f"{server.url}/v1/logs", data=big, headers=PROTOBUF, timeout=10).status_code == 413
        bomb = gzip.compress(b"\x00" * 5_000_000)
        response = requests.post(f"{server.url}/v1/logs", data=bomb,
                                 headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
        assert response.status_code == 413
        loki_bomb = bytes(cramjam.snappy.compress_raw(b"\x00" * 5_000_000))
        assert requests.post(f"{server.url}/loki/api/v1/push", data=loki_bomb, headers=PROTOBUF,
                             timeout=10).status_code == 413
        small = otlp_request([({"service.name": "a"}, [log_record(i) for i in range(20)])]).SerializeToString()
        for packed, encoding in ((gzip.compress(small), "gzip"), (zstandard.ZstdCompressor().compress(small), "zstd")):
            for cut in (len(packed) - 1, len(packed) - 4, len(packed) // 2):
                response = requests.post(f"{server.url}/loki/api/v1/push", data=packed[:cut],
                                         headers={**JSON, "Content-Encoding": encoding}, timeout=10)
                assert response.status_code == 400, (encoding, cut)
    assert server.rows() == []


# Loki ------------------------------------------------------------------------------------------------
LOKI_LINES = [
    "level=warn msg=\"disk almost full\" user_id=u-7 duration_ms=12",
    '{"msg": "json line", "request_id": "r-1", "level": "error", "extra": {"k": 1}}',
    "plain text that says nothing",
    "2026-11-22 10:00:00,123 ERROR [worker] db connection refused",
]


def loki_json(lines=LOKI_LINES, labels=None, metadata=None) -> dict:
    labels = labels if labels is not None else {"service_name": "billing", "env": "prod"}
    values = []
    for n, line in enumerate(lines):
        entry = [str(T0 + n), line]
        if metadata:
            entry.append(metadata)
        values.append(entry)
    return {"streams": [{"stream": labels, "values": values}]}


def loki_protobuf(document: dict) -> bytes:
    request = PushRequest()
    for stream in document["streams"]:
        labels = ", ".join(f'{k}="{v}"' for k, v in stream["stream"].items())
        adapter = StreamAdapter(labels="{" + labels + "}")
        for entry in stream["values"]:
            nanos = int(entry[0])
            metadata = [LabelPairAdapter(name=k, value=v) for k, v in (entry[2] if len(entry) > 2 else {}).items()]
            adapter.entries.append(EntryAdapter(
                timestamp=Timestamp(seconds=nanos // 10**9, nanos=nanos % 10**9), line=entry[1],
                structuredMetadata=metadata))
        request.streams.append(adapter)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def check_loki_rows(rows: dict[str, dict]) -> None:
    logfmt = rows["disk almost full"]
    assert (logfmt["service"], logfmt["level"], logfmt["user_id"], logfmt["duration_ms"]) == (
        "billing", "WARNING", "u-7", 12.0)
    assert logfmt["timestamp"].isoformat() == T0_TEXT
    assert attributes(logfmt) == {"log_format": "logfmt", "env": "prod", "trace": "t-1"}
    json_line = rows["json line"]
    assert (json_line["level"], json_line["request_id"]) == ("ERROR", "r-1")
    assert attributes(json_line)["extra"] == {"k": 1} and attributes(json_line)["log_format"] == "json"
    assert json_line["timestamp"].isoformat() == "2026-11-22T10:00:00+00:00"
    plain = rows["plain text that says nothing"]
    assert plain["level"] == "INFO" and attributes(plain)["log_format"] == "text"
    python = next(row for message, row in rows.items() if "db connection refused" in message)
    assert python["level"] == "ERROR"


def test_loki_json_labels_metadata_and_each_line_parsed(server):
    response = requests.post(f"{server.url}/loki/api/v1/push", json=loki_json(metadata={"trace": "t-1"}), timeout=10)
    assert response.status_code == 204 and response.content == b""
    check_loki_rows(rows_by_message(stopped(server)))


def test_loki_snappy_protobuf_lands_like_json(server):
    body = loki_protobuf(loki_json(metadata={"trace": "t-1"}))
    response = requests.post(f"{server.url}/loki/api/v1/push", data=body, headers=PROTOBUF, timeout=10)
    assert response.status_code == 204, response.text
    check_loki_rows(rows_by_message(stopped(server)))


def test_loki_level_label_wins_and_is_kept_as_sent_service_labels_configurable(tmp_path):
    options = {"loki": {"service_labels": ["component"], "level_labels": ["lvl"]}}
    with ProtocolServer(tmp_path, options=options) as server:
        document = loki_json(["the line says ERROR"], labels={"component": "db", "lvl": "Debug",
                                                                         "app": "ignored-here"})
        assert requests.post(f"{server.url}/loki/api/v1/push", json=document, timeout=10).status_code == 204
        nothing = loki_json(["no labels of note"], labels={"env": "x"})
        assert requests.post(f"{server.url}/loki/api/v1/push", json=nothing, timeout=10).status_code == 204
    rows = rows_by_message(server)
    row = rows["the line says ERROR"]
    assert (row["service"], row["level"]) == ("db", "DEBUG")
    assert attributes(row)["level_original"] == "Debug" and attributes(row)["app"] == "ignored-here"
    assert rows["no labels of note"]["service"] == "unknown_service"


def test_loki_partial_rejection_keeps_the_valid_entries_and_answers_400_with_the_count(server):
    document = loki_json(["good one", "bad stamp", "good two"])
    document["streams"][0]["values"][1][0] = "yesterday"
    document["streams"].append(loki_json(["bad service"], labels={"service_name": "s" * 200})["streams"][0])
    response = requests.post(f"{server.url}/loki/api/v1/push", json=document, timeout=10)
    assert response.status_code == 400
    assert response.text.startswith("2 of 4 entries rejected (2 stored") and "service" in response.text
    stopped(server)
    assert sorted(row["message"] for row in server.rows()) == ["good one", "good two"]
    letters = sorted(server.letters(), key=lambda letter: letter.index)
    assert [letter.protocol for letter in letters] == ["loki", "loki"]
    assert [orjson.loads(letter.raw)[1] for letter in letters] == ["bad stamp", "bad service"]


def test_loki_bad_bodies_are_400_empty_pushes_204(server):
    url = f"{server.url}/loki/api/v1/push"
    assert requests.post(url, data=b"{not json", headers=JSON, timeout=10).status_code == 400
    assert requests.post(url, json={"strooms": []}, timeout=10).status_code == 400
    assert requests.post(url, json={"streams": []}, timeout=10).status_code == 204
    assert requests.post(url, data=b"\x05not snappy", headers=PROTOBUF, timeout=10).status_code == 400
    packed = loki_protobuf(loki_json())
    for cut in (1, len(packed) // 2, len(packed) - 1):
        assert requests.post(url, data=packed[:cut], headers=PROTOBUF, timeout=10).status_code == 400
    raw = bytes(cramjam.snappy.decompress_raw(packed))
    truncated = bytes(cramjam.snappy.compress_raw(raw[:-3]))  # the protobuf itself cut inside a field
    assert requests.post(url, data=truncated, headers=PROTOBUF, timeout=10).status_code == 400
    stopped(server)
    assert server.rows() == []


def test_loki_protobuf_invalid_utf8_and_bad_labels_are_per_entry(server):
    request = PushRequest()
    good = StreamAdapter(labels='{app="x"}')
    good.entries.append(EntryAdapter(timestamp=Timestamp(seconds=T0 // 10**9), line="fine"))
    bad_labels = StreamAdapter(labels="app=x")
    bad_labels.entries.append(EntryAdapter(timestamp=Timestamp(seconds=T0 // 10**9), line="lost labels"))
    request.streams.extend([good, bad_labels])
    raw = request.SerializeToString().replace(b"fine", b"f\xffne")  # proto3 strings must be UTF-8; Go's Loki takes it
    response = requests.post(f"{server.url}/loki/api/v1/push", data=bytes(cramjam.snappy.compress_raw(raw)),
                             headers=PROTOBUF, timeout=10)
    assert response.status_code == 400 and "1 of 2 entries rejected" in response.text
    [row] = stopped(server).rows()
    assert row["message"] == "f\ufffdne" and attributes(row)["invalid_utf8"] is True
    [letter] = server.letters()
    assert EntryAdapter.FromString(letter.raw).line == "lost labels"


def test_loki_label_sets_with_escapes():
    assert parse_labels('{a="b", c="d \\"q\\" \\\\ e\\nf",d_1="" }') == {"a": "b", "c": 'd "q" \\ e\nf', "d_1": ""}
    assert parse_labels("{}") == {}


# raw text -------------------------------------------------------------------------------------------
def test_text_lines_are_parsed_one_by_one_and_long_lines_rejected(tmp_path):
    with ProtocolServer(tmp_path, max_line_bytes=2000) as server:
        body = b"\n".join([
            b'{"ts": "2026-11-22T10:00:00Z", "level": "warn", "msg": "json", "user_id": "u-1"}',
            b"level=error msg=logfmt request_id=r-9",
            b"2026-11-22 10:00:00,123 CRITICAL [main] python logging",
            b"just words",
            b"",
            b"z" * 3000,
            b"\xff\xfe bytes",
        ])
        response = requests.post(f"{server.url}/v1/logs?service=web", data=body,
                                 headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=10)
        assert response.status_code == 200
        answer = response.json()
        assert (answer["accepted"], answer["rejected"]) == (5, 1)
        assert answer["errors"][0]["index"] == 4 and "exceeds" in answer["errors"][0]["error"]
    rows = rows_by_message(server)
    assert (rows["json"]["level"], rows["json"]["user_id"], rows["json"]["service"]) == ("WARNING", "u-1", "web")
    assert rows["json"]["timestamp"].isoformat() == T0_TEXT
    assert (rows["logfmt"]["level"], rows["logfmt"]["request_id"]) == ("ERROR", "r-9")
    python = next(row for message, row in rows.items() if "python logging" in message)
    assert python["level"] == "CRITICAL"
    assert rows["just words"]["level"] == "INFO" and attributes(rows["just words"])["log_format"] == "text"
    assert attributes(rows["\ufffd\ufffd bytes"])["invalid_utf8"] is True
    [letter] = server.letters()
    assert letter.protocol == "text" and letter.raw == b"z" * 3000


# fast path == per-record path == recovery ------------------------------------------------------------
DECODER = BatchDecoder(
    RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_depth=6)), 1 << 20, 64 << 20
)
ATTRIBUTE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
KEYS = st.sampled_from(["a", "b.c", "user_id", "message", "level", "duration_ms", "resource.x", "trace_id", "k"])


def _otlp_value(item) -> AnyValue:
    return AnyValue() if item is None else value(item)


@st.composite
def otlp_records(draw) -> LogRecord:
    record = LogRecord(
        time_unix_nano=draw(st.sampled_from([0, T0, T0 + 123_456_789])),
        observed_time_unix_nano=T0 + 1,  # (both 0: the time of receipt, which differs between runs)
        severity_number=draw(st.integers(0, 24)),
        severity_text=draw(st.sampled_from(["", "INFO", "warn", "Error", "LOUD", "WARNING"])),
        trace_id=draw(st.sampled_from([b"", bytes(range(16))])),
    )
    record.body.CopyFrom(_otlp_value(draw(ATTRIBUTE_VALUES)))
    for key, item in draw(st.dictionaries(KEYS, ATTRIBUTE_VALUES, max_size=4)).items():
        record.attributes.append(KeyValue(key=key, value=_otlp_value(item)))
    return record


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(otlp_records(), min_size=1, max_size=8), st.sampled_from(["checkout", "", "s" * 129]))
def test_otlp_fast_path_rows_equal_the_per_record_path_and_the_recovered_ones(records, service):
    resource = {"service.name": service} if service else {"host.name": "h"}
    body = otlp_request([(resource, records)]).SerializeToString()
    protocol = registered_protocols()["otlp"]()
    for payload, content_type in ((body, "application/x-protobuf"),
                                  (MessageToJson(ExportLogsServiceRequest.FromString(body)).encode(), "application/json")):
        request = ProtocolRequest("POST", "/v1/logs", {}, {}, {}, payload, content_type)
        batch = protocol.decode_batch(request, DECODER)
        slow = DECODER.records(protocol.decode(request))
        assert batch.accepted + len(batch.rejected) == len(records)
        assert batch.table.equals(slow.table) and batch.payload == slow.payload
        assert [raw.index for raw, _ in batch.rejected] == [raw.index for raw, _ in slow.rejected]
        recovered = DECODER.ndjson(batch.payload, skew=False) if batch.payload else None
        if recovered is not None:
            assert recovered.table.equals(batch.table)


def test_the_fast_path_is_taken_for_clean_bodies():
    protocol = registered_protocols()["otlp"]()
    body = otlp_request([({"service.name": "a"}, [log_record(i, attributes={"k": i}) for i in range(50)])])
    request = ProtocolRequest("POST", "/v1/logs", {}, {}, {}, body.SerializeToString(), "application/x-protobuf")
    batch = protocol.decode_batch(request, DECODER)
    assert batch.fast and batch.accepted == 50


LINES = st.sampled_from(LOKI_LINES + ['{"message": "m", "user_id": 5, "level": "LOUD"}', "user_id=u msg=x env=clash",
                                      '{"msg": "deep", "x": [[[[[[[[1]]]]]]]]}']) | st.text(max_size=40)
LABELS = st.dictionaries(st.sampled_from(["service_name", "app", "level", "env", "user_id", "message", "logger"]),
                         st.text(min_size=1, max_size=8), max_size=4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, min_size=1, max_size=8), LABELS, st.none() | st.dictionaries(
    st.sampled_from(["env", "trace", "message"]), st.text(max_size=5), max_size=2))
def test_loki_and_text_fast_path_rows_equal_the_per_record_path_and_the_recovered_ones(lines, labels, metadata):
    document = loki_json(lines, labels=labels, metadata=metadata)
    cases = [
        ("loki", orjson.dumps(document), "application/json"),
        ("loki", loki_protobuf(document), "application/x-protobuf"),
        ("text", "\n".join(lines).encode(), "text/plain"),
    ]
    for name, payload, content_type in cases:
        if name == "loki" and content_type == "application/x-protobuf" and any('"' in v or "\\" in v for v in labels.values()):
            continue  # the test's label-string writer does not escape
        protocol = registered_protocols()[name]()
        request = ProtocolRequest("POST", "/", {}, {}, {}, payload, content_type)
        batch = protocol.decode_batch(request, DECODER)
        slow = DECODER.records(protocol.decode(request))
        assert batch.table.select(["level", "service", "message", "user_id", "attributes"]).equals(
            slow.table.select(["level", "service", "message", "user_id", "attributes"]))
        if name == "loki":  # (text lines without a time take the time of receipt, which differs between runs)
            assert batch.table.equals(slow.table) and batch.payload == slow.payload
        if batch.payload:
            assert DECODER.ndjson(batch.payload, skew=False).table.equals(batch.table)


def test_mount_declares_every_route_and_refuses_unknown_protocols(tmp_path):
    from aiohttp import web

    from logwarden.collector.protocols.mount import mount_protocols

    def declare(handler):
        handler.role = "ingest"  # as the authentication middleware's @requires(INGEST) marks a handler
        return handler

    with ProtocolServer(tmp_path) as server:
        app = web.Application()
        mounted = mount_protocols(app, server.ingestor, lambda request: "t", None, declare=declare,
                                  protocols=["otlp", "loki", "text"])
        assert set(mounted) == {"otlp", "loki", "text"}
        routes = {(route.method, route.resource.canonical): route.handler for route in app.router.routes()}
        assert set(routes) == {("POST", "/v1/logs"), ("POST", "/loki/api/v1/push")}
        assert all(handler.role == "ingest" for handler in routes.values())
        with pytest.raises(ValueError, match="unknown protocols"):
            mount_protocols(web.Application(), server.ingestor, lambda request: "t", None, protocols=["nope"])
