"""The compiled fast path of the Elasticsearch bulk decoder (collector/protocols/_esbulk.pyx) gives exactly
the batch of the Python fast path (``ecs_record`` and ``BatchDecoder.mapped``): the same table and the same
write-ahead bytes, attribute order included, whenever it takes a body; it takes the bodies shippers send,
declines (None) the rest, never crashes on garbage, and the per-item answer of a fast batch is the one the
Python items give."""

from __future__ import annotations

import importlib
import json
import random
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.protocols_decode import bulk_body, decoder as bench_decoder, ecs_docs
from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BodyError
from logwarden.collector.ingest import IngestResult
from logwarden.collector.protocols import elasticsearch
from logwarden.collector.protocols.base import ProtocolRequest
from logwarden.collector.protocols.elasticsearch import ElasticsearchBulk
from logwarden.collector.protocols.peritem import decode_items_batch
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from tests.collector.strategies import JSON_VALUES
from tests.collector.test_protocol_elasticsearch import ecs_documents

RECEIVED = "2026-11-22T09:00:00.250000Z"  # the time of receipt both paths give a document without one
SMALL = BatchDecoder(RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_fields=20, max_depth=5)),
                     1 << 20, 1 << 26)
ROOMY = BatchDecoder(RecordValidator(skew=SkewLimits.unlimited()), 1 << 20, 1 << 26)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ES = ElasticsearchBulk()


def request(body: bytes, index: str | None = None) -> ProtocolRequest:
    path = f"/{index}/_bulk" if index else "/_bulk"
    return ProtocolRequest("POST", path, {"index": index} if index else {}, {}, {}, body, "application/x-ndjson")


def both(body: bytes, decoder: BatchDecoder, index: str | None = None) -> tuple[DecodedBatch | None, object]:
    """The compiled batch (or None) and the Python fast path's batch (or the BodyError it raises)."""
    with mock.patch.object(elasticsearch, "now_rfc3339", lambda: RECEIVED):
        compiled = ES.compiled_batch(request(body, index), decoder)
        try:
            python: object = decode_items_batch(ES, request(body, index), decoder)
        except BodyError as exc:
            python = exc
    return compiled, python


def assert_same(compiled: DecodedBatch | None, python: object) -> None:
    """When the compiled path takes the body, its batch is the Python one, byte for byte."""
    if compiled is None:
        return
    assert isinstance(python, DecodedBatch), python
    assert not python.rejected and compiled.fast
    assert compiled.table.schema == python.table.schema
    assert compiled.table.to_pylist() == python.table.to_pylist()
    assert compiled.table.equals(python.table)
    assert compiled.payload == python.payload
    assert compiled.payload_crc == python.payload_crc


def body_of(docs: list, action: bytes = b'{"create":{"_index":"logs-app"}}', dumps=orjson.dumps) -> bytes:
    return b"".join(action + b"\n" + dumps(doc) + b"\n" for doc in docs)


def test_the_compiled_module_is_built() -> None:
    """The test install has it: a missing module would test (and benchmark) the Python decoder only."""
    module = importlib.import_module("logwarden.collector.protocols._esbulk")
    assert module.__file__.endswith(".so")
    assert elasticsearch.bulk_documents is not None


@pytest.mark.parametrize("decoder", [ROOMY, bench_decoder()], ids=["unlimited-skew", "bench"])
def test_shippers_bodies_take_the_compiled_path_and_equal_the_python_one(decoder: BatchDecoder) -> None:
    body = bulk_body(ecs_docs(300, random.Random(3)))
    compiled, python = both(body, decoder)
    assert compiled is not None, "the realistic body fell back to the Python decoder"
    assert_same(compiled, python)
    assert compiled.accepted == 300
    with mock.patch.object(elasticsearch, "now_rfc3339", lambda: RECEIVED):
        assert ES.decode_batch(request(body), decoder).fast


def test_filebeat_logstash_and_plain_documents_take_the_compiled_path() -> None:
    docs = [
        {"@timestamp": "2026-11-22T10:00:00.123Z", "log": {"level": "warn", "logger": "app.db"},
         "service": {"name": "payment-service", "version": "1.4.2"}, "message": "Database connection slow",
         "user": {"id": "u-42", "name": "alice"}, "trace": {"id": "4bf92f35"}, "error": {"code": "DB_SLOW"},
         "event": {"duration": 2_500_000_000, "dataset": "payment.log"}, "host": {"name": "web-1"}},
        {"@timestamp": "2026-11-22T10:00:01+02:00", "log.level": "ERROR", "service.name": "auth-service",
         "message": "Login failed \u00e9\u2028\U0001F600 \"quoted\"\n\ttab", "user.name": "bob",
         "labels": {"region": "eu"}, "tags": ["a", 1, 2.5, None, True, {"k": []}], "level_original_x": 1},
        {"@timestamp": "2026-11-22T10:00:02Z", "message": "no service, no level: the index names the service"},
        {"timestamp": "2026-11-22T10:00:03Z", "level": "info", "service": "svc", "user_id": "u", "request_id": "r",
         "error_code": "E1", "duration": 5, "numbers": [0, -1, 12345678901234567890, 1e-7, 3.0, -0.0]},
        {"event": {"original": "raw text"}, "message_truncated_from": 3, "service": {"version": "2"}},
    ]
    compiled, python = both(body_of(docs), ROOMY)
    assert compiled is not None
    assert_same(compiled, python)
    rows = compiled.table.to_pylist()
    assert [row["service"] for row in rows] == ["payment-service", "auth-service", "logs-app", "svc", "logs-app"]
    assert rows[4]["message"] == "raw text" and rows[2]["timestamp"] is not None


def test_json_written_otherwise_than_orjson_writes_it_gives_orjson_text() -> None:
    """Spaces, escapes a writer chose (``\\u00e9``, ``\\/``), CRLF lines: the lines are orjson's text."""
    docs = [{"@timestamp": "2026-11-22T10:00:00Z", "message": "caf\u00e9 / \u2028 \x01", "a": {"b": [1, {"c": "d"}]},
             "log": {"level": "Warning"}}] * 3
    body = body_of(docs, dumps=lambda doc: json.dumps(doc, indent=None, separators=(" , ", " : ")).encode())
    body = body.replace(b"/", b"\\/").replace(b"\n", b"\r\n")
    compiled, python = both(body, ROOMY)
    assert compiled is not None
    assert_same(compiled, python)
    assert b"\\u00e9" not in compiled.payload and "caf\u00e9".encode() in compiled.payload


@pytest.mark.parametrize("body", [
    b'{"delete":{"_index":"a","_id":"1"}}\n',
    b'{"update":{"_index":"a","_id":"1"}}\n{"doc":{}}\n',
    b'{"index":{}}\n{"message":"no index"}\n',
    b'{"index":{"_index":"a"}}\n["not an object"]\n',
    b'{"index":{"_index":"a"}}\n{"message":"x","message":"duplicate"}\n',
    b'{"index":{"_index":"a"}}\n{"host":{"name":"a","name":"b"}}\n',
    b'{"index":{"_index":"a"}}\n{"message":"cut"\n',
    b'{"index":{"_index":"a"}}\n{"message":"raw \x01 control"}\n',
    b'{"index":{"_index":"a"}}\n{"message":"\xff not utf-8"}\n',
    b'{"index":{"_index":"a"}}\n{"message":"lone \\ud800"}\n',
    b'{"index":{"_index":"a"}}\n{"message":"x"} trailing\n',
    b'{"index":{"_index":"a"}}\n{"@timestamp":1795341601000}\n',
    b'{"index":{"_index":"a"}}\n{"@timestamp":"2026-11-22 10:00:00"}\n',
    b'{"index":{"_index":"a"}}\n{"service":{"name":7}}\n',
    b'{"index":{"_index":"a"}}\n{"message":{"structured":true}}\n',
    b'{"index":{"_index":"a"}}\n{"event":{"duration":-5}}\n',
    b'{"index":{"_index":"a"}}\n{"duration_ms":5}\n',
    b'{"index":{"_index":"a"}}\n{"level":"x","level_original":"y"}\n',
    b'{"index":{"_index":"a"}}\n{"level_original":"y"}\n',
    b'{"index":{"_index":"a"}}\n{"service":{"version":"1"},"service.version":"2"}\n',
    b'{"index":{"_index":"a"}}\n{"a":[[[[[[[[1]]]]]]]]}\n',
    b'{"index":{"_index":"a"}}\n',
    b'{"index":{"_index":"a"}}\n\n{"message":"x"}\n',
    b'{"index" {"_index":"a"}}\n{"message":"x"}\n',
    b'{"index":{"_index":"a"},"create":{}}\n{"message":"x"}\n',
    b"\n\n",
])
def test_unusual_bodies_take_the_python_decoder(body: bytes) -> None:
    compiled, python = both(body, SMALL)
    assert compiled is None
    with mock.patch.object(elasticsearch, "now_rfc3339", lambda: RECEIVED):
        try:
            batch = ES.decode_batch(request(body), SMALL)
        except BodyError:
            assert isinstance(python, BodyError)
        else:  # the Python decoder decided
            assert isinstance(python, DecodedBatch) and batch.table.equals(python.table)


clashing = st.dictionaries(
    st.sampled_from(["timestamp_original", "level_original", "service.version", "service.name", "user_id",
                     "request_id", "error_code", "a.b", "message_truncated_from", "format", "x\u00e9", "\u2028",
                     "ctl\x01", 'q"uote', "back\\slash", "log.level"]),
    JSON_VALUES, max_size=3,
)


@st.composite
def documents(draw) -> dict:
    doc = draw(ecs_documents())
    if draw(st.booleans()):
        doc.update(draw(clashing))
    if draw(st.integers(0, 3)) == 0:
        doc["message"] = draw(st.text(alphabet=st.characters(max_codepoint=0x10FFFF, blacklist_categories=["Cs"]),
                                      max_size=30))
    return doc


TEXT = (st.text(alphabet=st.characters(max_codepoint=0x10FFFF, blacklist_categories=["Cs"]), max_size=12)
        | st.text(alphabet='\t\n\r\x00\x01\x08\x0c\x1f\x7f"\\/.{[\u00e9\u2028\U0001F600 a', max_size=8))
STAMPS = st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123Z", "2026-11-22T10:00:00.123456+02:00",
                          "2026-11-22T23:59:59-05:30", "0001-01-01T00:00:00Z"] * 3
                         + ["2026-02-30T10:00:00Z", "2026-11-22T10:00:00.1234567Z", "2026-11-22 10:00:00",
                            "0000-01-01T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T10:00:00+02:60"])
LEVEL_WORDS = st.sampled_from(["info", "INFO", "warn", "Error", "DEBUG", "notice", "LOUD", "", "fatal"])


@st.composite
def plausible_documents(draw) -> dict:
    """Documents as shippers write them, nested or dotted, with unicode, control characters, missing fields
    and names that clash with the record's."""
    doc: dict = {}
    nested = draw(st.booleans())

    def put(parent: str, child: str, value) -> None:
        if nested:
            doc.setdefault(parent, {})[child] = value
        else:
            doc[f"{parent}.{child}"] = value

    if draw(st.integers(0, 4)):
        doc[draw(st.sampled_from(["@timestamp", "@timestamp", "timestamp"]))] = draw(STAMPS)
    if draw(st.integers(0, 3)):
        put("log", "level", draw(LEVEL_WORDS))
    if draw(st.booleans()):
        put("log", "logger", draw(TEXT))
    for parent, child in (("service", "name"), ("user", "id"), ("user", "name"), ("trace", "id"),
                          ("error", "code"), ("service", "version"), ("event", "dataset")):
        if draw(st.integers(0, 2)) == 0:
            put(parent, child, draw(TEXT))
    if draw(st.integers(0, 2)) == 0:
        put("event", "duration", draw(st.integers(0, 10**15)))
    if draw(st.integers(0, 4)):
        doc["message"] = draw(TEXT)
    elif draw(st.booleans()):
        put("event", "original", draw(TEXT))
    names = TEXT if draw(st.integers(0, 3)) else st.sampled_from(
        ["service", "level", "user_id", "request_id", "error_code", "host", "a.b", "timestamp_original"])
    extra = draw(st.dictionaries(names, JSON_VALUES, max_size=4))
    for key, value in extra.items():
        doc.setdefault(key, value)
    return doc


@st.composite
def bodies(draw) -> tuple[bytes, str | None]:
    docs = draw(st.lists(plausible_documents() if draw(st.integers(0, 3)) else documents(), min_size=1, max_size=4))
    index = draw(st.sampled_from([None, "logs-path"]))
    lines = []
    for doc in docs:
        meta: dict = {}
        if index is None or draw(st.booleans()):
            meta["_index"] = draw(st.sampled_from(["logs-app", "x" * 140, "\u00e9t\u00e9"]))
        if draw(st.booleans()):
            meta["_id"] = draw(st.sampled_from(["id-1", 'q"', 42]))
        op = draw(st.sampled_from(["create", "index", "index"]))
        style = draw(st.integers(0, 3))
        if style == 0:
            text = json.dumps(doc, ensure_ascii=True, separators=(", ", ": ")).encode()
        else:
            text = orjson.dumps(doc)
        lines.append(orjson.dumps({op: meta}) + b"\n" + text + b"\n")
    return b"".join(lines), index


@PROPERTY
@given(bodies(), st.sampled_from([SMALL, ROOMY]))
@example((body_of([{"a": {"b": 1}}]), None), SMALL)
@example((body_of([{"service": {"name": "", "version": "1"}, "user": {"id": "", "name": "n"}}]), None), SMALL)
@example((body_of([{"user": {"id": ""}, "user_id": "u"}]), None), SMALL)
@example((body_of([{"@timestamp": None, "timestamp": "2026-11-22T10:00:00Z", "message": None,
                    "event": {"original": "o", "duration": None}}]), None), SMALL)
def test_compiled_batch_equals_the_python_one(case: tuple[bytes, str | None], decoder: BatchDecoder) -> None:
    body, index = case
    compiled, python = both(body, decoder, index)
    assert_same(compiled, python)


@PROPERTY
@given(st.lists(documents(), min_size=1, max_size=4), st.data())
def test_cut_or_damaged_bodies_never_crash(docs: list, data) -> None:
    body = body_of(docs)
    cut = data.draw(st.integers(0, len(body)))
    damaged = bytearray(body[:cut])
    if damaged and data.draw(st.booleans()):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    compiled, python = both(bytes(damaged), SMALL)
    assert_same(compiled, python)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_crashes(raw: bytes) -> None:
    compiled, python = both(b'{"create":{"_index":"a"}}\n' + raw + b"\n", SMALL)
    assert_same(compiled, python)
    compiled, python = both(raw, SMALL)
    assert_same(compiled, python)


def answer_of(body: bytes, result: IngestResult, fast: bool) -> dict:
    req = request(body)
    if fast:
        assert ES.compiled_batch(req, ROOMY) is not None
        answer = ES.answer(req, [], result)
    else:
        answer = ES.answer(req, ES.items(body, None), result)
    assert answer.status == 200 and answer.headers["X-Elastic-Product"] == "Elasticsearch"
    document = orjson.loads(answer.body)
    document["took"] = 0
    return document


def test_the_answer_of_a_fast_batch_is_the_per_item_answer() -> None:
    docs = [{"@timestamp": "2026-11-22T10:00:00Z", "message": f"m{n}"} for n in range(20)]
    body = b"".join(orjson.dumps({("create", "index")[n % 2]: {"_index": f"i{n % 3}", "_id": f"id-{n}\u00e9\""}})
                    + b"\n" + orjson.dumps(doc) + b"\n" for n, doc in enumerate(docs))
    accepted = IngestResult(accepted=20)
    fast = answer_of(body, accepted, fast=True)
    assert fast == answer_of(body, accepted, fast=False)
    assert fast["errors"] is False and [item[op]["_seq_no"] for item, op in zip(fast["items"], ["create", "index"] * 10)
                                        ] == list(range(20))
    refused = IngestResult(accepted=19, rejected=1, errors=[{"index": 7, "field": "message", "error": "bad"}],
                           rejected_indexes=[7])
    partly = answer_of(body, refused, fast=True)
    assert partly == answer_of(body, refused, fast=False)
    assert partly["errors"] is True and partly["items"][7]["index"]["status"] == 400


def test_generated_ids_of_a_fast_batch_are_distinct() -> None:
    body = body_of([{"message": "x"}] * 40)
    req = request(body)
    assert ES.compiled_batch(req, ROOMY) is not None
    items = orjson.loads(ES.answer(req, [], IngestResult(accepted=40)).body)["items"]
    ids = [item["create"]["_id"] for item in items]
    assert len(set(ids)) == 40 and all(i.endswith(f"{n:x}") for n, i in enumerate(ids))
    assert orjson.loads(ES.answer(req, [], IngestResult(accepted=40)).body)["items"] == items
