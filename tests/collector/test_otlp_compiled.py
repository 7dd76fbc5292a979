"""The compiled OTLP/HTTP decoder (collector/protocols/_otlp_wire.pyx), protobuf and JSON, gives exactly the
batch the Python fast path gives (same table, same write-ahead payload bytes), or None and leaves the body
to the Python path; it takes the realistic bodies (bench/protocols.py's) itself and survives hostile
bytes."""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import math
from pathlib import Path
from unittest.mock import patch

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from google.protobuf.json_format import MessageToJson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BodyError
from logwarden.collector.protocols import ProtocolRequest, otlp
from logwarden.collector.protocols.otlp import PROTOBUF, OtlpLogs
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from tests.collector.strategies import mutated

BENCH = Path(__file__).resolve().parents[2] / "bench" / "protocols.py"
RECEIVED = 1_796_000_000_123_456  # the time of receipt in microseconds, fixed so both paths agree
T0 = 1_796_000_000_000_000_000
DECODER = BatchDecoder(RecordValidator(skew=SkewLimits.unlimited()), 1 << 20, 64 << 20)
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

pytestmark = pytest.mark.skipif(otlp.decode_logs is None, reason="the compiled OTLP decoder is not built")


def batches(body: bytes, decoder: BatchDecoder = DECODER) -> tuple[DecodedBatch | None, DecodedBatch | None]:
    """The compiled decoder's batch (None: it leaves the body to the Python path) and the Python path's
    batch (None: a BodyError)."""
    protocol = OtlpLogs()
    request = ProtocolRequest("POST", "/v1/logs", {}, {}, {}, body, PROTOBUF)
    with patch.object(otlp, "now_us", lambda: RECEIVED):
        compiled = protocol._compiled_batch(body, decoder)
        with patch.object(otlp, "decode_logs", None):
            try:
                python = protocol.decode_batch(request, decoder)
            except BodyError:
                python = None
    return compiled, python


def same(body: bytes, decoder: BatchDecoder = DECODER) -> DecodedBatch | None:
    """The compiled batch, after checking it is the Python fast path's batch whenever there is one."""
    compiled, python = batches(body, decoder)
    if compiled is not None:
        assert python is not None, "the Python path refuses the body"
        assert python.fast and not python.rejected, "the Python path takes the per-record path"
        assert compiled.payload == python.payload
        assert compiled.table.equals(python.table, check_metadata=True)
        assert compiled.fast
    return compiled


# building requests -----------------------------------------------------------------------------------
def any_value(value: object) -> AnyValue:
    if isinstance(value, AnyValue):
        return value
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=pairs(value.items())))
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    if value is None:
        return AnyValue()
    return AnyValue(string_value=str(value))


def pairs(items) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in items]


def request(groups: list[tuple[list, list[tuple[str, str, list]], list[LogRecord | dict]]]) -> bytes:
    """An export: per resource its attributes, its scopes (name, version, attributes) and their records
    (``LogRecord``s, or the fields of one as a dict)."""
    export = ExportLogsServiceRequest()
    for resource, scopes, records in groups:
        resource_logs = export.resource_logs.add()
        resource_logs.resource.attributes.extend(pairs(resource))
        for name, version, attributes in scopes:
            scope_logs = resource_logs.scope_logs.add()
            scope_logs.scope.name, scope_logs.scope.version = name, version
            scope_logs.scope.attributes.extend(pairs(attributes))
            for fields in records:
                scope_logs.log_records.add().CopyFrom(fields if isinstance(fields, LogRecord) else built(fields))
    return export.SerializeToString()


def built(fields: dict) -> LogRecord:
    """A ``LogRecord`` of ``fields`` (``body``: a value, or absent; ``attributes``: (key, value) pairs)."""
    fields = dict(fields)
    body = fields.pop("body", None)
    attributes = fields.pop("attributes")
    made = LogRecord(**fields)
    if body is not None:
        made.body.CopyFrom(any_value(body[0]))
    made.attributes.extend(pairs(attributes))
    return made


def record(n: int = 0, body: object = "hello", attributes: list | None = None, **fields: object) -> LogRecord:
    made = LogRecord(time_unix_nano=T0 + n * 1000, severity_number=9, severity_text="INFO")
    made.body.CopyFrom(any_value(body))
    for key, item in fields.items():
        setattr(made, key, item)
    made.attributes.extend(pairs(attributes or []))
    return made


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_protocols", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# strategies ------------------------------------------------------------------------------------------
TEXT = st.text(max_size=24) | st.sampled_from(["", "é", "a\"b\\c\n\t\x00\x1f\x7f", "😀\u2028", "x" * 300])
NAMES = st.sampled_from([
    "user_id", "duration_ms", "request_id", "error_code", "message", "level", "timestamp", "service",
    "trace_id", "span_id", "trace_flags", "event_name", "level_original", "body", "resource.host.name",
    "scope.name", "attributes.user_id", "code.line.number", "", "clé ✓", 'q"\\\n', "\x00",
]) | st.text(max_size=10)
SCALARS = (
    TEXT
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.floats()  # NaN and infinities too (orjson writes null)
    | st.binary(max_size=10)
    | st.none()
)
STRUCTURED = st.lists(SCALARS, max_size=2) | st.dictionaries(TEXT, SCALARS, max_size=2)
SEVERITY_TEXTS = st.sampled_from(["", "INFO", "info", "WARN", "warning", "Error", "ERROR", "bogus", "FATAL3", "é",
                                  "DEBUG", "trace", "3"])
SERVICE = st.sampled_from([[("service.name", "checkout")], [("service.name", "")], [("service.name", 7)], [],
                           [("service.name", "svc"), ("service.name", "other")]])


def groups_of(values: st.SearchStrategy, unique: bool) -> st.SearchStrategy:
    """Exports whose attribute values and bodies are drawn from ``values``; attribute names repeat within a
    record only when not ``unique``. Records are plain fields, built into messages per example."""
    attributes = st.lists(st.tuples(NAMES, values), max_size=6, unique_by=(lambda pair: pair[0]) if unique else None)
    records = st.fixed_dictionaries(
        {
            "time_unix_nano": st.sampled_from([0, T0, T0 + 999, 1]) | st.integers(0, 2**64 - 1),
            "observed_time_unix_nano": st.sampled_from([0, T0 + 5000]) | st.integers(0, 2**64 - 1),
            "severity_number": st.integers(-2, 30),
            "severity_text": SEVERITY_TEXTS,
            "trace_id": st.sampled_from([b"", bytes(range(16))]) | st.binary(max_size=17),
            "span_id": st.sampled_from([b"", bytes(range(8))]) | st.binary(max_size=9),
            "flags": st.sampled_from([0, 1]) | st.integers(0, 2**32 - 1),
            "event_name": st.sampled_from(["", "", "user.login"]) | TEXT,
            "dropped_attributes_count": st.integers(0, 3),
            "attributes": attributes,
        },
        optional={"body": st.tuples(TEXT | values)},
    )
    scopes = st.lists(st.tuples(TEXT, TEXT, attributes), max_size=2)
    resource = st.builds(lambda service, others: service + others, SERVICE, attributes)
    return st.lists(st.tuples(resource, scopes, st.lists(records, max_size=4)), max_size=3)


#: flat exports (the compiled decoder's own), and ones with structured values and repeated names
GROUPS = groups_of(SCALARS, unique=True) | groups_of(SCALARS | STRUCTURED, unique=False)


# tests -----------------------------------------------------------------------------------------------
def test_the_compiled_module_is_built() -> None:
    module = importlib.import_module("logwarden.collector.protocols._otlp_wire")
    assert module.__file__.endswith(".so")


def test_the_bench_requests_take_the_compiled_path_and_equal_the_python_path() -> None:
    bench = bench_module()
    for seed in range(3):
        body = bench.otlp_request(300, seed).SerializeToString()
        assert same(body) is not None
        assert same(body, BatchDecoder(RecordValidator(), 1 << 20, 64 << 20)) is not None  # default skew


def test_a_plain_request_gives_the_python_rows() -> None:
    body = request([(
        [("service.name", "checkout"), ("host.name", "web-1")],
        [("app.logger", "1.2", [("team", "pay")])],
        [record(0, "done", [("user_id", "u1"), ("code.line.number", 42)], trace_id=bytes(range(16)), flags=1),
         record(1, "plain", severity_number=13, severity_text="WARNING")],
    )])
    batch = same(body)
    assert batch is not None and batch.accepted == 2
    rows = batch.table.to_pylist()
    assert rows[0]["user_id"] == "u1" and rows[1]["user_id"] is None
    assert rows[1]["level"] == "WARNING" and rows[0]["service"] == "checkout"
    assert b'"trace_id":"000102030405060708090a0b0c0d0e0f"' in batch.payload


@pytest.mark.parametrize(
    "attributes",
    [
        [("message", "clash"), ("trace_id", "t"), ("level_original", 1), ("body", "b")],
        [("resource.host.name", "r"), ("scope.name", "s"), ("user_id", 5), ("duration_ms", 2.5)],
        [("duration_ms", 7), ("error_code", b"\x01\x02"), ("request_id", ""), ("x", None)],
        [("duration_ms", math.inf), ("d", math.nan), ("e", 1e16), ("f", -0.0), ("g", True)],
        [("clé ✓", "välue 😀"), ("ctl\x00\x1f", "\x7f\u2028\"\\"), ("", "empty name")],
    ],
)
def test_clashing_and_filling_names_are_placed_as_the_python_path_places_them(attributes) -> None:
    body = request([([("service.name", "s")], [("", "", [])], [record(0, "m", attributes)])])
    assert same(body) is not None


@pytest.mark.parametrize(
    ("number", "text"),
    [(0, ""), (9, "INFO"), (9, ""), (13, "warn"), (17, "Error"), (0, "bogus"), (0, "warning"), (25, ""), (-1, "x"),
     (24, "FATAL4"), (5, "é"), (1, "TRACE")],
)
def test_severities_give_the_python_level_and_level_original(number: int, text: str) -> None:
    body = request([([("service.name", "s")], [("a", "", [])], [record(0, "m", severity_number=number,
                                                                         severity_text=text)])])
    assert same(body) is not None


@pytest.mark.parametrize("body_value", [42, -7, True, False, 2.5, float("nan"), b"\x00\xff", None, "", "ünï"])
def test_scalar_bodies_are_the_python_messages(body_value) -> None:
    assert same(request([([("service.name", "s")], [("a", "", [])], [record(0, body_value)])])) is not None


def test_missing_service_empty_resource_and_scope_and_receipt_time() -> None:
    made = record(0, "no time")
    made.time_unix_nano = 0
    made.observed_time_unix_nano = 0
    batch = same(request([([], [("", "", [])], [made, record(1, "observed", time_unix_nano=0,
                                                                 observed_time_unix_nano=T0)])]))
    assert batch is not None
    assert batch.table.column("service").to_pylist() == ["unknown_service"] * 2
    assert batch.table.column("attributes").to_pylist() == [None, None]


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no records
        request([([("service.name", "s")], [], [])]),
        request([([("service.name", "s")], [("a", "", [])], [record(0, {"k": [1, 2]})])]),  # structured body
        request([([("service.name", "s")], [("a", "", [])], [record(0, "m", [("k", [1])])])]),  # array value
        request([([("service.name", "s")], [("a", "", [])], [record(0, "m", [("k", 1), ("k", 2)])])]),  # twice
        request([([("service.name", "s"), ("deep", {"a": {"b": 1}})], [("a", "", [])], [record(0, "m")])]),
        request([([("service.name", "s")], [("a", "", [])], [record(0, "m", [("attributes.x", 1), ("x", 2)])])]),
    ],
)
def test_what_the_compiled_decoder_leaves_to_the_python_path(body: bytes) -> None:
    compiled, _ = batches(body)
    assert compiled is None


def limited(max_fields: int) -> BatchDecoder:
    return BatchDecoder(
        RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_fields=max_fields)), 1 << 20, 1 << 20
    )


def test_the_field_limit_leaves_the_body_to_the_python_path() -> None:
    # 4 declared + user_id + 2 attributes + trace_id + level_original + scope.name + resource.host = 11 fields
    fields = record(0, "m", [("user_id", "u"), ("a", 1), ("b", 2)], trace_id=b"\x01", severity_text="warn")
    body = request([([("service.name", "s"), ("host", "h")], [("scope", "", [])], [fields])])
    assert same(body, limited(11)) is not None
    compiled, python = batches(body, limited(10))
    assert compiled is None and python is not None and len(python.rejected) == 1  # the Python path rejects it


@settings(FUZZ, max_examples=100)
@given(GROUPS, st.integers(4, 16))
def test_generated_requests_under_a_field_limit_give_the_python_batch(groups, max_fields: int) -> None:
    same(request(groups), limited(max_fields))


def test_invalid_utf8_is_left_to_the_python_path_which_refuses_it() -> None:
    body = request([([("service.name", "s")], [("a", "", [])], [record(0, "caf\u00e9", [("k", "caf\u00e9")])])])
    for bad in (body.replace("é".encode(), b"\xe9", 1), body.replace("é".encode(), b"\xed\xa0", 2)):
        assert batches(bad) == (None, None)


@FUZZ
@given(GROUPS)
def test_generated_requests_give_the_python_batch(groups) -> None:
    same(request(groups))


HOSTILE_BASE = request([(
    [("service.name", "s"), ("host.name", "h")],
    [("app", "1", [("k", "v")])],
    [record(n, f"message {n}", [("user_id", "u"), ("n", n)], trace_id=bytes(16), span_id=bytes(8), flags=1)
     for n in range(3)],
)])


@FUZZ
@given(st.data())
def test_truncated_and_garbage_bytes_give_none_or_the_python_batch(data) -> None:
    same(data.draw(mutated(HOSTILE_BASE)))


def test_cut_bench_bodies_give_none_or_the_python_batch() -> None:
    body = bench_module().otlp_request(20, 1).SerializeToString()
    for end in range(0, len(body), 97):
        same(body[:end])


# OTLP JSON -------------------------------------------------------------------------------------------
def same_json(body: bytes, decoder: BatchDecoder = DECODER) -> DecodedBatch | None:
    """The compiled OTLP JSON batch, after checking it is the Python fast path's batch whenever there is one."""
    protocol = OtlpLogs()
    request = ProtocolRequest("POST", "/v1/logs", {}, {}, {}, body, "application/json")
    with patch.object(otlp, "now_us", lambda: RECEIVED):
        compiled = protocol._compiled_json(body, decoder)
        with patch.object(otlp, "decode_logs", None):
            try:
                python = protocol.decode_batch(request, decoder)
            except BodyError:
                python = None
    if compiled is not None:
        assert python is not None, "the Python path refuses the body"
        assert python.fast and not python.rejected, "the Python path takes the per-record path"
        assert compiled.payload == python.payload
        assert compiled.table.equals(python.table, check_metadata=True)
    return compiled


def test_the_bench_json_requests_take_the_compiled_path_and_equal_the_python_path() -> None:
    bench = bench_module()
    for seed in range(2):
        export = bench.otlp_request(300, seed)
        assert same_json(MessageToJson(export, indent=None).encode()) is not None
        snake = MessageToJson(export, indent=None, preserving_proto_field_name=True).encode()
        assert same_json(snake, BatchDecoder(RecordValidator(), 1 << 20, 64 << 20)) is not None


@FUZZ
@given(GROUPS, st.booleans())
def test_generated_json_requests_give_the_python_batch(groups, snake: bool) -> None:
    export = ExportLogsServiceRequest.FromString(request(groups))
    for resource_logs in export.resource_logs:
        named(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            named(scope_logs.scope.attributes)
            for log_record in scope_logs.log_records:  # ids of their real sizes (others are kept as sent)
                log_record.trace_id = log_record.trace_id[:16].ljust(16, b"t") if log_record.trace_id else b""
                log_record.span_id = log_record.span_id[:8].ljust(8, b"s") if log_record.span_id else b""
                named(log_record.attributes)
    same_json(MessageToJson(export, indent=None, preserving_proto_field_name=snake).encode())


def named(attributes) -> None:
    """Attributes named (proto3 JSON leaves an empty key out, and an OTLP JSON attribute needs one)."""
    for pair in attributes:
        pair.key = pair.key or "unnamed"


JSON_INTS = st.one_of(
    st.integers(-(2**65), 2**65), st.integers(0, 2**64).map(str),
    st.sampled_from(["-5", "--5", "+5", "٣", "", "0", "1e3"]),
    st.floats(allow_nan=False), st.booleans(), st.none(),
)
JSON_IDS = st.one_of(
    st.binary(min_size=16, max_size=16).map(bytes.hex), st.binary(min_size=8, max_size=8).map(bytes.hex),
    st.binary(min_size=16, max_size=16).map(lambda raw: base64.b64encode(raw).decode()),
    st.binary(min_size=8, max_size=8).map(lambda raw: base64.b64encode(raw).decode()),
    st.sampled_from(["", "0A1B2C3D4E5F60718293A4B5C6D7E8F9", "zz" * 16, "AAAAAAAAAAAAAAAAAAAAAA=A", "AAAAAAAAAAA=",
                     "AAAAAAAAAA==", "0a 1b 2c 3d 4e 5f 60 71 82 93 a4"]),
    st.integers(0, 5), st.none(),
)
JSON_SCALAR_VALUES = st.one_of(
    TEXT.map(lambda text: {"stringValue": text}), TEXT.map(lambda text: {"bytes_value": text}),
    JSON_INTS.map(lambda number: {"intValue": number}), st.booleans().map(lambda flag: {"boolValue": flag}),
    st.floats().map(lambda number: {"doubleValue": number}),
    st.integers(-(2**70), 2**70).map(lambda number: {"double_value": number}),
    st.sampled_from([{}, {"stringValue": None}, {"other": 1}, {"stringValue": "a", "intValue": 1}, {"boolValue": 1},
                     {"arrayValue": {"values": []}}, {"stringValue": 5}, "text", None, {"doubleValue": "NaN"}]),
)
JSON_PAIRS = st.lists(
    st.fixed_dictionaries({"key": NAMES}, optional={"value": JSON_SCALAR_VALUES}), max_size=5,
    unique_by=lambda pair: pair["key"],
)
JSON_RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "timeUnixNano": JSON_INTS, "time_unix_nano": JSON_INTS, "observedTimeUnixNano": JSON_INTS,
        "severityNumber": JSON_INTS | st.sampled_from(["SEVERITY_NUMBER_WARN", "SEVERITY_NUMBER_NOPE", "9"]),
        "severityText": SEVERITY_TEXTS | st.integers(0, 3), "body": JSON_SCALAR_VALUES,
        "attributes": JSON_PAIRS | st.sampled_from([{}, "x", [None], [{"key": 1}]]),
        "traceId": JSON_IDS, "span_id": JSON_IDS, "spanId": JSON_IDS, "flags": JSON_INTS,
        "eventName": TEXT | st.integers(0, 2), "event_name": TEXT,
    },
)


@FUZZ
@given(st.lists(JSON_RECORDS, min_size=1, max_size=4), st.sampled_from([[], [{"key": "service.name",
                                                                         "value": {"stringValue": "svc"}}]]))
def test_hand_written_json_records_give_the_python_batch(log_records, resource) -> None:
    for record_ in log_records:
        record_.setdefault("timeUnixNano", str(T0))
    document = {"resourceLogs": [{"resource": {"attributes": resource},
                                  "scopeLogs": [{"scope": {"name": "s"}, "logRecords": log_records}]}]}
    same_json(json.dumps(document).encode())  # integers past 64 bits too


def test_json_ids_times_and_severities_in_their_sent_forms() -> None:
    document = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(T0), "severityNumber": "SEVERITY_NUMBER_WARN", "body": {"intValue": "-12"},
         "traceId": "0A1B2C3D4E5F60718293A4B5C6D7E8F9", "spanId": base64.b64encode(bytes(range(8))).decode(),
         "flags": "1", "attributes": [{"key": "user_id", "value": {"bytesValue": "AAE="}}]},
        {"time_unix_nano": T0, "severity_number": 17, "severity_text": "oops", "body": {"doubleValue": 1e16},
         "trace_id": base64.b64encode(bytes(16)).decode(), "event_name": "e"},
    ]}]}]}
    batch = same_json(orjson.dumps(document))
    assert batch is not None
    assert b'"trace_id":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"' in batch.payload
    assert b'"span_id":"0001020304050607"' in batch.payload
