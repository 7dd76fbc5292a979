"""Hostile input for every protocol decoder: mutated and random bodies, truncated gzip/zstd/snappy (always an
error, never a shorter batch), decompression bombs (refused before the output is made), deep nesting
(the record refused, or the body), invalid UTF-8. The decoders are fuzzed directly; a running server
gets the worst cases."""

from __future__ import annotations

import gzip
import zlib

import cramjam
import orjson
import pytest
import requests
import zstandard
from google.protobuf.json_format import MessageToJson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.decoding import BOM, BodyError, decompress
from logwarden.collector.protocols import ProtocolRequest, registered_protocols
from logwarden.collector.protocols.snappy import decompress_snappy
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from tests.collector.protocol_server import ProtocolServer
from tests.collector.strategies import mutated
from tests.collector.test_hostile_input import HOSTILE_LINES, VALID
from tests.collector.test_protocols import LOKI_LINES, PROTOBUF, loki_json, loki_protobuf, log_record, otlp_request

DECODER = BatchDecoder(
    RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_depth=32)), 64 * 1024, 1 << 20
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
PROTOCOLS = registered_protocols()


def otlp_body() -> bytes:
    records = [log_record(i, {"k": [i, "v"]} if i % 3 == 0 else f"m{i}", attributes={"a": i}) for i in range(12)]
    return otlp_request([({"service.name": "svc", "host.name": "h"}, records)]).SerializeToString()


SAMPLES = {
    ("otlp", "application/x-protobuf"): otlp_body(),
    ("otlp", "application/json"): MessageToJson(otlp_request(
        [({"service.name": "svc"}, [log_record(i, attributes={"a": i}) for i in range(12)])])).encode(),
    ("loki", "application/x-protobuf"): loki_protobuf(loki_json(LOKI_LINES * 3, metadata={"m": "1"})),
    ("loki", "application/json"): orjson.dumps(loki_json(LOKI_LINES * 3)),
    ("text", "text/plain"): "\n".join(LOKI_LINES * 3).encode(),
}


def decode(name: str, content_type: str, body: bytes):
    """decode_batch of protocol ``name``: a batch, or the BodyError/OverflowError it may raise."""
    protocol = PROTOCOLS[name]()
    request = ProtocolRequest("POST", "/", {}, {}, {}, body, content_type)
    try:
        batch = protocol.decode_batch(request, DECODER)
    except (BodyError, OverflowError) as exc:
        assert str(exc)
        return exc
    assert all(rejection.error for _, rejection in batch.rejected)
    assert batch.table.num_rows == batch.accepted
    return batch


@pytest.mark.parametrize("name, content_type", list(SAMPLES))
def test_the_sample_bodies_decode_cleanly(name, content_type):
    batch = decode(name, content_type, SAMPLES[(name, content_type)])
    assert not isinstance(batch, Exception) and batch.accepted >= 12 and not batch.rejected


@pytest.mark.parametrize("name, content_type", list(SAMPLES))
@FUZZ
@given(data=st.data())
def test_every_decoder_survives_mutated_and_random_bodies(name, content_type, data):
    body = SAMPLES[(name, content_type)]
    if name == "loki" and content_type == "application/x-protobuf":
        raw = bytes(cramjam.snappy.decompress_raw(body))
        body = bytes(cramjam.snappy.compress_raw(data.draw(mutated(raw))))  # mutate the protobuf itself
        if data.draw(st.booleans()):
            body = data.draw(mutated(body))  # and sometimes the snappy block
    else:
        body = data.draw(mutated(body))
    decode(name, content_type, body)


@FUZZ
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceLogs", "scopeLogs", "logRecords", "body", "attributes", "key", "value",
                         "stringValue", "kvlistValue", "values", "timeUnixNano", "severityNumber", "traceId",
                         "streams", "stream", "resource", "scope", "arrayValue", "intValue", "x"]),
        inner, max_size=4),
    max_leaves=30,
))
def test_json_decoders_survive_any_json_shape(document):
    try:
        body = orjson.dumps({"resourceLogs": document, "streams": document})
    except (TypeError, orjson.JSONEncodeError):
        return
    decode("otlp", "application/json", body)
    decode("loki", "application/json", body)


@FUZZ
@given(st.lists(
    st.binary(max_size=120) | st.sampled_from([line.encode() for line in LOKI_LINES]) | HOSTILE_LINES | VALID,
    max_size=12,
))
@example(lines=[b"\xef\xbb\xbf"])  # a body that is only a byte-order mark: no line of text
def test_text_keeps_one_record_per_non_blank_line(lines):
    body = b"\n".join(lines)
    batch = decode("text", "text/plain", body)
    text = body.removeprefix(BOM)  # a leading byte-order mark is the body's encoding signature, not text
    expected = sum(1 for line in text.split(b"\n") if line.rstrip(b"\r").strip())
    assert batch.accepted + len(batch.rejected) == expected
    valid = [line for line in lines if line.startswith(b'{"timestamp":"2026-11-22T08') and b'"service":"ok"' in line]
    messages = set(batch.table.column("message").to_pylist())
    assert {orjson.loads(line)["message"] for line in valid} <= messages  # native records keep their fields


# compression -----------------------------------------------------------------------------------------
BODY = SAMPLES[("loki", "application/json")] * 4
COMPRESSED = {
    "gzip": gzip.compress(BODY),
    "deflate": zlib.compress(BODY),
    "zstd": zstandard.ZstdCompressor().compress(BODY),
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(COMPRESSED)), st.floats(0, 1, exclude_max=True))
def test_truncated_gzip_deflate_zstd_bodies_are_errors_never_shorter_bodies(encoding, fraction):
    packed = COMPRESSED[encoding]
    cut = packed[: int(len(packed) * fraction)]
    with pytest.raises(BodyError):
        decompress(cut, encoding, 1 << 24)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1, exclude_max=True))
def test_truncated_snappy_bodies_are_errors(fraction):
    packed = bytes(cramjam.snappy.compress_raw(BODY))
    with pytest.raises(BodyError):
        decompress_snappy(packed[: int(len(packed) * fraction)], 1 << 24)


def test_decompression_bombs_are_refused_at_the_limit():
    zeros = b"\x00" * (64 << 20)
    for encoding, packed in (("gzip", gzip.compress(zeros, 9)), ("zstd", zstandard.ZstdCompressor().compress(zeros))):
        assert len(packed) < 200_000
        with pytest.raises(OverflowError):
            decompress(packed, encoding, 1 << 20)
    lying = b"\xff\xff\xff\xff\x07" + bytes(cramjam.snappy.compress_raw(b"x" * 100))[1:]  # announces 2 GiB
    with pytest.raises(OverflowError):
        decompress_snappy(lying, 1 << 20)
    with pytest.raises(OverflowError):
        decompress_snappy(bytes(cramjam.snappy.compress_raw(zeros[: 2 << 20])), 1 << 20)


# deep nesting ----------------------------------------------------------------------------------------
def nested_value(depth: int) -> AnyValue:
    value = AnyValue(string_value="leaf")
    for _ in range(depth):
        value = AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=value)]))
    return value


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (lengths below 2**14 here)."""
    length = len(payload)
    size = bytes([length]) if length < 128 else bytes([(length & 0x7F) | 0x80, length >> 7])
    return bytes([number << 3 | 2]) + size + payload


def test_a_record_nesting_past_the_limit_is_refused_alone_and_a_body_nesting_past_the_parser_is_400():
    shallow = BatchDecoder(RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_depth=6)), 1 << 16,
                           1 << 20)
    fine, deep = log_record(0, "fine"), log_record(1, "deep")
    deep.attributes.append(KeyValue(key="x", value=nested_value(10)))
    body = otlp_request([({"service.name": "s"}, [fine, deep])])
    protocol = PROTOCOLS["otlp"]()
    for payload, content_type in ((body.SerializeToString(), "application/x-protobuf"),
                                  (MessageToJson(body).encode(), "application/json")):
        request = ProtocolRequest("POST", "/", {}, {}, {}, payload, content_type)
        batch = protocol.decode_batch(request, shallow)
        assert batch.accepted == 1 and len(batch.rejected) == 1
        assert "deeper" in batch.rejected[0][1].error
    # 400 levels: past what the protobuf runtime parses (upb's depth limit), past what orjson parses
    value = _field(1, b"leaf")  # AnyValue{string_value}
    for _ in range(400):
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))  # AnyValue{kvlist{KeyValue{k, value}}}
    record = _field(5, value)  # LogRecord{body}
    request = _field(1, _field(2, _field(2, record)))  # Request{ResourceLogs{ScopeLogs{LogRecord}}}
    assert isinstance(decode("otlp", "application/x-protobuf", request), BodyError)
    json_bomb = b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":' + b'{"arrayValue":{"values":[' * 3000
    assert isinstance(decode("otlp", "application/json", json_bomb + b"]}}" * 3000 + b"}]}]}]}"), BodyError)


def test_invalid_utf8_protobuf_strings_refuse_the_otlp_body_and_json_bodies():
    body = otlp_request([({"service.name": "s"}, [log_record(0, "caf\u00e9")])]).SerializeToString()
    assert isinstance(decode("otlp", "application/x-protobuf", body.replace("é".encode(), b"\xe9")), BodyError)
    assert isinstance(decode("otlp", "application/json", b'{"resourceLogs": ["\xff"]}'), BodyError)
    assert isinstance(decode("loki", "application/json", b'{"streams": ["\xff"]}'), BodyError)


def test_a_running_server_answers_the_worst_cases_and_keeps_serving(tmp_path):
    with ProtocolServer(tmp_path, max_body_bytes=1 << 20) as server:
        url = server.url
        bomb = gzip.compress(b"\x00" * (32 << 20))
        assert requests.post(f"{url}/loki/api/v1/push", data=bomb, headers={"Content-Encoding": "gzip"},
                             timeout=30).status_code == 413
        assert requests.post(f"{url}/v1/logs", data=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"},
                             timeout=30).status_code == 413
        for cut in (10, 100, len(COMPRESSED["zstd"]) - 1):
            response = requests.post(f"{url}/v1/logs", data=COMPRESSED["zstd"][:cut],
                                     headers={**PROTOBUF, "Content-Encoding": "zstd"}, timeout=30)
            assert response.status_code == 400
        assert requests.post(f"{url}/v1/logs", data=b"x", headers={**PROTOBUF, "Content-Encoding": "br"},
                             timeout=30).status_code == 400
        for body in (b"\x00" * 1000, bytes(range(256)) * 10):
            assert requests.post(f"{url}/v1/logs", data=body, headers=PROTOBUF, timeout=30).status_code in (200, 400)
            assert requests.post(f"{url}/loki/api/v1/push", data=body, headers=PROTOBUF,
                                 timeout=30).status_code == 400
        good = requests.post(f"{url}/loki/api/v1/push", json=loki_json(["still serving"]), timeout=30)
        assert good.status_code == 204
    assert [row["message"] for row in server.rows()] == ["still serving"]
