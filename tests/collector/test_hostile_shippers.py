"""Hostile input for the Elasticsearch bulk, Splunk HEC, Fluent forward and syslog decoders: mutated and
random bodies and streams, deep nesting, invalid UTF-8, oversized msgpack. No decoder raises anything but
its refusal of the whole body (BodyError), the valid records around a bad one are kept, and a forward
connection fed garbage ends with an error, never an exception."""

from __future__ import annotations

import gzip
import struct

import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.decoding import BodyError
from logwarden.collector.forward import ForwardOptions, ForwardSession
from logwarden.collector.protocols import ProtocolRequest
from logwarden.collector.protocols.elasticsearch import ElasticsearchBulk
from logwarden.collector.protocols.splunk_hec import SplunkHec
from logwarden.collector.streams import SyslogSession
from logwarden.collector.syslog import syslog_record
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from tests.collector.strategies import mutated
from tests.collector.test_hostile_input import HOSTILE_LINES

DECODER = BatchDecoder(
    RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_depth=32)), 64 * 1024, 1 << 20
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
DOC = {"@timestamp": "2026-11-22T08:00:00Z", "log": {"level": "warn"}, "message": "ok", "service": {"name": "s"}}
DEEP_JSON = b'{"message":"deep","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
NESTED_40 = {"message": "nested", "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}


def check_batch(batch) -> None:
    assert batch.table.num_rows == batch.accepted
    assert all(rejection.error for _, rejection in batch.rejected)
    assert batch.payload.count(b"\n") == batch.accepted  # one write-ahead line per accepted record


# --- Elasticsearch bulk -----------------------------------------------------------------------------------

def bulk(protocol: ElasticsearchBulk, body: bytes):
    request = ProtocolRequest("POST", "/_bulk", {}, {}, {}, body, "application/x-ndjson")
    try:
        batch = protocol.decode_batch(request, DECODER)
    except BodyError as exc:
        assert str(exc)
        return None
    check_batch(batch)
    return batch


@FUZZ
@given(st.lists(st.sampled_from(["good", "hostile", "delete"]) | HOSTILE_LINES, min_size=1, max_size=10))
def test_bulk_items_survive_hostile_documents_and_keep_the_good_ones(kinds):
    """Hostile document lines (truncated, invalid UTF-8, deep, huge, not objects) are refused item by item."""
    lines, good = [], 0
    for n, kind in enumerate(kinds):
        if kind == "good":
            lines += [b'{"create":{"_index":"i"}}', orjson.dumps({**DOC, "message": f"good {n}"})]
            good += 1
        elif kind == "delete":
            lines.append(b'{"delete":{"_index":"i","_id":"1"}}')
        elif kind == "hostile":
            lines += [b'{"index":{"_index":"i"}}', DEEP_JSON]
        else:
            lines += [b'{"index":{"_index":"i"}}', kind.replace(b"\n", b" ") or b" x"]
    protocol = ElasticsearchBulk()
    batch = bulk(protocol, b"\n".join(lines) + b"\n")
    assert batch is not None
    assert sorted(m for m in batch.table.column("message").to_pylist() if m.startswith("good ")) == sorted(
        f"good {n}" for n, kind in enumerate(kinds) if kind == "good"
    )
    assert batch.accepted + len(batch.rejected) == len(kinds)


@FUZZ
@given(data=st.data())
def test_bulk_survives_mutated_and_random_bodies(data):
    body = b"".join(b'{"create":{"_index":"logs"}}\n' + orjson.dumps({**DOC, "n": n}) + b"\n" for n in range(8))
    bulk(ElasticsearchBulk(), data.draw(mutated(body)))


def test_bulk_nesting_past_the_limit_is_refused_for_that_item_only():
    body = b"".join([
        b'{"index":{"_index":"i"}}\n', orjson.dumps(NESTED_40), b"\n",
        b'{"index":{"_index":"i"}}\n', DEEP_JSON, b"\n",
        b'{"index":{"_index":"i"}}\n', orjson.dumps(DOC), b"\n",
    ])
    batch = bulk(ElasticsearchBulk(), body)
    assert batch.accepted == 1 and sorted(raw.index for raw, _ in batch.rejected) == [0, 1]


# --- Splunk HEC -------------------------------------------------------------------------------------------

def hec(body: bytes, path: str = "/services/collector/event"):
    request = ProtocolRequest("POST", path, {}, {}, {}, body, "application/json")
    try:
        batch = SplunkHec().decode_batch(request, DECODER)
    except BodyError as exc:
        assert str(exc)
        return None
    check_batch(batch)
    return batch


@FUZZ
@given(data=st.data())
def test_hec_survives_mutated_and_random_bodies(data):
    body = b"".join(orjson.dumps({"time": 1795334400 + n, "event": {"message": f"e{n}", "level": "info"},
                                  "fields": {"n": n}}) for n in range(8))
    hec(data.draw(mutated(body)))
    hec(data.draw(mutated(body)), "/services/collector/raw")


@FUZZ
@given(st.lists(st.sampled_from(["good", "deep", "utf8", "cut"]), min_size=1, max_size=8))
def test_hec_keeps_every_event_before_the_first_unreadable_one(kinds):
    parts, readable = [], True
    expected = []
    for n, kind in enumerate(kinds):
        if kind == "good":
            parts.append(orjson.dumps({"event": f"good {n}"}))
            if readable:
                expected.append(f"good {n}")
        elif kind == "deep":
            parts.append(b'{"event":' + b"[" * 3000 + b"]" * 3000 + b"}")  # read, then refused for its depth
        elif kind == "utf8":
            parts.append(b'{"event":"\xff\xfe"}')
            readable = False
        else:
            parts.append(b'{"event": "cut')
            readable = False
    batch = hec(b"".join(parts))
    assert batch is not None
    assert [m for m in batch.table.column("message").to_pylist() if m.startswith("good ")] == expected


# --- Fluent forward ---------------------------------------------------------------------------------------

def event_time(seconds: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, 5))


def good_message(n: int) -> bytes:
    entries = [[event_time(1795334400 + i), {"message": f"good {n}.{i}", "level": "info"}] for i in range(3)]
    return msgpack.packb(["app.x", entries, {"chunk": f"c{n}"}])


MSGPACK_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4) | st.integers(-9, 9), inner,
                                                                max_size=4),
    max_leaves=20,
)


@FUZZ
@given(data=st.data())
def test_forward_sessions_survive_anything_and_ack_every_good_message_before_garbage(data):
    session = ForwardSession(DECODER, ForwardOptions(max_message_bytes=64 * 1024))
    stream, good, spoiled = b"", [], False
    for n in range(data.draw(st.integers(1, 5))):
        kind = data.draw(st.sampled_from(["good", "good", "mutated", "random", "value", "record"]))
        spoiled = spoiled or kind in ("mutated", "random", "value")
        if kind == "good":
            stream += good_message(n)
            if not spoiled:
                good.append(f"c{n}")  # before anything unreadable: must be acknowledged
        elif kind == "mutated":
            stream += data.draw(mutated(good_message(n)))
        elif kind == "random":
            stream += data.draw(st.binary(max_size=200))
        elif kind == "value":
            stream += msgpack.packb(data.draw(MSGPACK_VALUES))
        else:  # a message whose record is anything at all
            stream += msgpack.packb(["app", 1795334400, data.draw(MSGPACK_VALUES), {"chunk": f"r{n}"}])
    acks: list = []
    position = 0
    while position < len(stream):  # fed in pieces, as TCP reads would be
        size = data.draw(st.integers(1, 300))
        fed = session.feed(stream[position:position + size])
        position += size
        if fed.batch is not None:
            check_batch(fed.batch)
        acks += fed.acks
        if fed.error is not None:
            assert isinstance(fed.error, str)
            break
    assert all(chunk in acks for chunk in good), (good, acks)


@pytest.mark.parametrize("record", [
    {"message": "m", "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
    {"message": "m", "deep": {"a": {"b": {"c": {"d": 1}}}}, b"\xff": b"\xfe", 7: None},
])
def test_forward_records_nesting_too_deep_or_with_binary_keys_are_refused_or_kept_never_raised(record):
    # 900 levels of nesting: deeper than JSON writers go, within msgpack's limit
    deep = {"message": "m"}
    cursor = deep
    for _ in range(900):
        cursor["x"] = {}
        cursor = cursor["x"]
    session = ForwardSession(DECODER, ForwardOptions())
    fed = session.feed(msgpack.packb(["app", [[1795334400, record], [1795334400, deep]], {"chunk": "d"}],
                                     use_bin_type=True))
    assert fed.error is None and fed.acks == ["d"]
    check_batch(fed.batch)
    assert fed.batch.accepted + len(fed.batch.rejected) == 2
    assert any(raw.index == 1 for raw, _ in fed.batch.rejected)  # the 900 levels


def test_forward_oversized_and_bomb_messages_end_the_connection():
    session = ForwardSession(DECODER, ForwardOptions(max_message_bytes=4096))
    assert "exceeds" in session.feed(msgpack.packb(["app", 1, {"message": "x" * 10_000}])).error
    session = ForwardSession(DECODER, ForwardOptions(max_message_bytes=4096))
    bomb = gzip.compress(b"\x90" * (1 << 20))
    fed = session.feed(msgpack.packb(["app", bomb, {"compressed": "gzip", "chunk": "b"}]))
    assert fed.error is not None and "limit" in fed.error and fed.acks == []


# --- syslog -----------------------------------------------------------------------------------------------

SYSLOG_SAMPLES = [
    b"<134>Nov 22 10:00:00 dsm CEF:0|Trend Micro|Deep Security Manager|10.0|600|User Signed In|10|"
    b"src=10.52.116.160 suser=admin",
    b'<14>Nov 22 10:00:00 app1 api[7]: {"level":"error","msg":"db down","user_id":"u1"}',
    b'<30>1 2026-11-22T10:00:00Z web app 1 - - level=warn msg="cache storm" user_id=u-4',
    b"<13>Nov 22 10:00:00 qradar LEEF:1.0|Microsoft|MSExchange|4.0|15345|src=192.0.2.0\tsev=5\tusrName=joe",
    b"<14>Jul 20 23:59:02 firewall 1,2021/07/20 23:59:02,1234567890,SYSTEM,vpn,0,2021/07/20 23:59:02,,x,,0,0,"
    b"general,informational,IKE daemon started.,0,0x0",
    b"<13>1 2025-02-18T06:42:17Z DC - - - - MSWinEventLog\t1\tSecurity\t1\tTue Feb 18 06:42:17 2025\t4624\t"
    b"Microsoft-Windows-Security-Auditing\tN/A\tN/A\tSuccess Audit\tDC\tLogon\t\tAn account logged on.\t-1",
]


@FUZZ
@given(st.sampled_from(SYSLOG_SAMPLES), st.data())
def test_syslog_payloads_survive_mutation(sample, data):
    message = data.draw(mutated(sample))
    record, error = syslog_record(message)
    assert (record is None) != (error is None)
    if record is not None:
        orjson.dumps(record)  # what the write-ahead log keeps: always JSON
        assert record["syslog"]["format"].startswith("syslog-rfc")


@FUZZ
@given(st.lists(st.sampled_from(SYSLOG_SAMPLES) | st.binary(max_size=300) | HOSTILE_LINES, min_size=1, max_size=8))
def test_syslog_sessions_keep_every_good_message(messages):
    session = SyslogSession(DECODER)
    stream = b"".join(b"%d %s" % (len(m), m) for m in messages)
    batches = [session.feed(stream), session.finish()]
    accepted = sum(batch.accepted for batch in batches if batch is not None)
    for batch in batches:
        if batch is not None:
            check_batch(batch)
    assert accepted >= sum(1 for m in messages if m in SYSLOG_SAMPLES)
