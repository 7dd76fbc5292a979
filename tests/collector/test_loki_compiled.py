"""The compiled Loki protobuf decoder (collector/protocols/_loki_wire.pyx) gives exactly the batch of the
Python decoder (table and write-ahead payload) whenever it gives one, reads the lines Promtail ships
(free text, logfmt) without the Python code, and never crashes on truncated or garbage bytes."""

from __future__ import annotations

import importlib
import json
import random
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BodyError
from logwarden.collector.protocols import loki
from logwarden.collector.protocols.base import ProtocolRequest
from logwarden.collector.validation import RecordValidator
from tests.collector.strategies import mutated

DECODER = BatchDecoder(RecordValidator(), max_line_bytes=1 << 20, max_body_bytes=64 << 20)
NOW = int(time.time()) - 60
PROTOCOL = loki.LokiPush()


# a protobuf writer (any bytes, also what the generated classes refuse to write) ----------------------
def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def entry(seconds: int, nanos: int, line: bytes, metadata: list[tuple[str, str]] = ()) -> bytes:
    stamp = varint(1 << 3) + varint(seconds) + varint(2 << 3) + varint(nanos)
    parts = field(1, stamp) + field(2, line)
    for name, value in metadata:
        parts += field(3, field(1, name.encode()) + field(2, value.encode()))
    return parts


def push(streams: list[tuple[bytes, list[bytes]]]) -> bytes:
    return b"".join(field(1, field(1, labels) + b"".join(field(2, e) for e in entries)) for labels, entries in streams)


def labels(pairs: dict[str, str]) -> bytes:
    inner = ", ".join(f'{name}="{value}"' for name, value in pairs.items())
    return ("{" + inner + "}").encode()


# the two decoders --------------------------------------------------------------------------------------
def python_batch(body: bytes) -> DecodedBatch | None:
    saved = loki._loki_wire
    loki._loki_wire = None
    try:
        request = ProtocolRequest("POST", "/loki/api/v1/push", {}, {}, {"Content-Encoding": "snappy"}, body,
                                  loki.PROTOBUF)
        return PROTOCOL.decode_batch(request, DECODER)
    except BodyError:
        return None
    finally:
        loki._loki_wire = saved


def assert_same(body: bytes) -> DecodedBatch | None:
    """The compiled decoder answers exactly when the Python decoder's fast path does, with its batch."""
    compiled = PROTOCOL._compiled_batch(body, DECODER)
    python = python_batch(body)
    assert (compiled is not None) == (python is not None and python.fast and not python.rejected)
    if compiled is None:
        return None
    assert compiled.table.equals(python.table), (compiled.table.to_pylist()[:3], python.table.to_pylist()[:3])
    assert compiled.payload == python.payload
    return compiled


def bench_lines(n: int, rng: random.Random) -> list[bytes]:
    """Lines as bench/protocols.py makes them: logfmt and free text, half and half."""
    out = []
    for i in range(n):
        if i % 2:
            out.append((f'ts=2026-12-08T03:00:00Z level=info msg="request {i} done" status={rng.choice([200, 500])} '
                        f"duration_ms={rng.randrange(1, 900)} user_id=user-{rng.randrange(10**6)}").encode())
        else:
            out.append(f"request {i} for order {rng.randrange(10**9)} completed with status 200".encode())
    return out


def test_the_compiled_decoder_is_built() -> None:
    module = importlib.import_module("logwarden.collector.protocols._loki_wire")
    assert module.__file__.endswith(".so")
    assert loki._loki_wire is module


def test_promtail_lines_are_read_without_the_python_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    streams = []
    for service in ("checkout", "auth-service"):
        for level in ("info", "warn", "ERROR"):
            lines = bench_lines(40, rng)
            streams.append((labels({"service_name": service, "level": level, "env": "prod"}),
                            [entry(NOW - rng.randrange(60), rng.randrange(10**9), line) for line in lines]))
    streams.append((labels({"job": "varlogs"}), [entry(NOW, 5, line) for line in bench_lines(10, rng)]))
    calls = []
    real = PROTOCOL._compiled_entry
    monkeypatch.setattr(PROTOCOL, "_compiled_entry", lambda *args: calls.append(args) or real(*args))
    batch = assert_same(push(streams))
    assert batch is not None and batch.accepted == 250
    assert calls == []
    rows = batch.table.to_pylist()
    assert rows[1]["duration_ms"] is not None and rows[1]["user_id"].startswith("user-")
    assert {row["level"] for row in rows} == {"INFO", "WARNING", "ERROR"}


def test_other_lines_are_read_by_the_python_decoder_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [b'{"msg": "json", "level": "warn"}', b"plain text", b"ERROR something failed",
             b"<13>Oct 11 22:14:15 host app: syslog", b"a=b c=d", "é unicode".encode()]
    body = push([(labels({"app": "web", "level": "info"}), [entry(NOW, n, line) for n, line in enumerate(lines)])])
    calls = []
    real = PROTOCOL._compiled_entry
    monkeypatch.setattr(PROTOCOL, "_compiled_entry", lambda *args: calls.append(args) or real(*args))
    batch = assert_same(body)
    assert batch is not None and batch.accepted == len(lines)
    assert len(calls) == 5  # JSON, the level word, syslog, logfmt without a message, unicode
    assert [row["message"] for row in batch.table.to_pylist()][:3] == ["json", "plain text", "something failed"]


WORDS = st.sampled_from(
    ["request", "GET", "Started", "done", "ERROR", "WARN", "INFO:", "warning", "ab", "abcdefghijkl", "a,b", "x/y",
     "[x]", "|", ":", "CEF:", "http", "12", "Oct", "ts", "é", "\t", "\\", '"', "=", "k=v", "@x"]
)
KEYS = st.sampled_from(
    ["ts", "time", "level", "lvl", "msg", "message", "service", "app", "name", "user_id", "user", "request_id",
     "trace_id", "duration_ms", "latency_ms", "status", "error_code", "env", "log_format", "tag", "a.b",
     "__REALTIME_TIMESTAMP", "level_original", "x@y", "_k", "attributes.env"]
)
VALUES = st.sampled_from(
    ["", "-", "info", "warn", "x", "12", "1e3", "nan", "inf", "-5", "1_0", "user-7", "2026-12-08T03:00:00Z",
     '"quoted value"', '"a=b"', '""', '"esc\\"aped"', "a\"b", "é", "x,y/z"]
) | st.from_regex(r"[A-Za-z0-9_./:-]{0,8}", fullmatch=True)


@st.composite
def logfmt_lines(draw: Any) -> bytes:
    pairs = draw(st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=6))
    text = " ".join(f"{key}={value}" for key, value in pairs)
    if draw(st.integers(0, 5)) == 0:
        text += " " + draw(WORDS)
    return text.encode()


LINES = (
    logfmt_lines()
    | st.lists(WORDS, min_size=1, max_size=8).map(lambda words: " ".join(words).encode())
    | st.text(max_size=30).map(lambda text: text.encode())
    | st.binary(max_size=20)
    | st.sampled_from([b"", b'{"msg": "m", "level": "info"}', b"request 1 ok", b"x" * 3000, b"msg=" + b"y" * 2100])
)
LABELS = st.dictionaries(
    st.sampled_from(["service_name", "app", "job", "level", "severity", "env", "status", "user", "user_id",
                     "log_format", "env.x", "msg"]),
    st.sampled_from(["web", "info", "warn", "ERROR", "nonsense", "", "é", "prod"]),
    max_size=4,
)
TIMES = st.tuples(st.integers(NOW - 10**6, NOW + 10), st.integers(0, 10**9 - 1)) | st.sampled_from(
    [(-1, 0), (NOW, -1), (NOW, 10**9), (253402300800, 0), (0, 0), (2**63, 0)]
)
ENTRIES = st.tuples(TIMES, LINES, st.lists(st.tuples(st.sampled_from(["trace_id", "env", "k"]),
                                                      st.text(max_size=5)), max_size=2) | st.just([]))
STREAMS = st.lists(
    st.tuples(LABELS.map(labels) | st.sampled_from([b"", b"{bad", b"{a=\"\\\xff\"}"]),
              st.lists(ENTRIES, max_size=5)),
    min_size=1, max_size=3,
)


def body_of(streams: list) -> bytes:
    return push([(lab, [entry(s, n, line, meta) for (s, n), line, meta in entries]) for lab, entries in streams])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMS)
@example([(labels({"app": "web", "level": "warn"}), [((NOW, 5), b'ts=x level=info msg="a b" status=500', [])])])
@example([(labels({"level": "info"}), [((NOW, 5), b"msg=hello duration_ms=1e3 user=- request_id=r", [])])])
@example([(labels({"app": "w"}), [((NOW, 5), b"started service x", []), ((NOW, 6), b"Started GET now", [])])])
@example([(labels({"status": "x", "level": "info"}), [((NOW, 5), b"msg=a status=1 user_id=u", [])])])
@example([(labels({"level": "nonsense"}), [((NOW, 5), b"plain words here", [("k", "v")])])])
def test_same_batch_as_the_python_decoder(streams: list) -> None:
    assert_same(body_of(streams))


NEAR_MISSES = [
    b"web-1 | started", b"web-1  | {\"msg\": \"x\"}", b"GET /health 200", b"Oct 11 22:14:15 host app: x", b"Oct. 1 x",
    b"a,b and c/d", b"see [x] here", b"http 2026-12-08T03:00:00.1Z x", b"h2 1", b"CEF:0|a|b", b"x LEEF:1.0|a",
    b"ERR: failed", b"INFO started", b"Started SERVICE now", b"started service NOW", b"PANICKED", b"abcdABCDEFGHI",
    b"word ABCDEFGHIJ", b"a b c d e f g h i j k l m n o p q r s t u v w x y z ERROR", b"ts=1 msg=x", b"ts=1",
    b"a= b=c", b'k="v" x', b'k="v"x', b"k=v=w msg=m", b"msg=a msg=b", b"msg=m k=\"", b"_a=1 @b=2 msg=m",
    b"msg=m status=500", b"message=m msg=n", b"log=l level=warn", b"msg=m duration_ms=-1", b"msg=m latency_ms=2",
    b"msg=m user=-", b"msg=m service=svc app=a", b"msg=m name=n source=s", b"msg=m level= lvl=debug",
    b"msg=m __REALTIME_TIMESTAMP=1700000000000000", b"msg=m a.b=c", b"x" * 20000, b"msg=" + b"y" * 2100,
    b"request failed with ERROR code 7", b"job WARN x", b"Sept 11 22:14:15 host app x", b'msg="a\\nb" k=v',
    b'frank - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 2326', b"https 2026-12-08T03:00:00.123Z x",
    b"x CEF:0|Vendor|Product|1.0|100|name|5|src=1.2.3.4", b"service.web-1 | hello",
    b"msg=m status=503", b"msg=m PRIORITY=3", b"msg=m severityNumber=9", b"msg=m level=bogus status=404",
    b"msg=m lvl=WARN level=", b"msg=m statusCode=abc", b"msg=m log.level=error",
]


@pytest.mark.parametrize("line", NEAR_MISSES)
@pytest.mark.parametrize("pairs", [{"app": "web", "level": "warn"}, {"service_name": "s"}, {"level": "x", "env": "e"}])
def test_lines_near_the_rules(line: bytes, pairs: dict[str, str]) -> None:
    """Lines that one of the compiled decoder's rules must send to Python (or read exactly)."""
    assert_same(push([(labels(pairs), [entry(NOW, 7, line), entry(NOW, 8, b"plain line")])]))


def test_the_generated_bodies_take_the_compiled_path_often() -> None:
    """The equivalence test above is only worth something if the compiled decoder answers for many
    generated bodies, with lines it read itself."""
    answered = []

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(TIMES.filter(lambda t: 0 < t[0] < NOW + 100 and 0 <= t[1] < 10**9),
                              logfmt_lines() | st.lists(WORDS, min_size=1, max_size=6).map(
                                  lambda words: " ".join(words).encode()), st.just([])), min_size=1, max_size=4))
    def run(entries: list) -> None:
        answered.append(assert_same(body_of([(labels({"app": "web", "level": "info"}), entries)])) is not None)

    run()
    assert sum(answered) > len(answered) // 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_truncated_or_garbage_bodies(data: st.DataObject) -> None:
    """Bytes cut, flipped, spliced or random: the compiled decoder answers as Python would, or not at all."""
    lines = bench_lines(4, random.Random(2))
    body = push([(labels({"app": "web", "level": "info"}), [entry(NOW, 1, line) for line in lines])])
    assert_same(data.draw(mutated(body)))


# JSON pushes: the same entries read by the compiled decoder from orjson's objects ------------------------
def python_json_batch(body: bytes) -> DecodedBatch | None:
    saved = loki._loki_wire
    loki._loki_wire = None
    try:
        request = ProtocolRequest("POST", "/loki/api/v1/push", {}, {}, {}, body, "application/json")
        return PROTOCOL.decode_batch(request, DECODER)
    except BodyError:
        return None
    finally:
        loki._loki_wire = saved


def assert_same_json(body: bytes) -> DecodedBatch | None:
    compiled = PROTOCOL._compiled_json_batch(body, DECODER)
    python = python_json_batch(body)
    assert (compiled is not None) == (python is not None and python.fast and not python.rejected)
    if compiled is None:
        return None
    assert compiled.table.equals(python.table), (compiled.table.to_pylist()[:3], python.table.to_pylist()[:3])
    assert compiled.payload == python.payload
    return compiled


GOOD_STAMPS = st.integers(NOW - 10**6, NOW).map(lambda s: str(s * 10**9 + 5)) | st.just(NOW * 10**9)
JSON_STAMPS = GOOD_STAMPS | st.sampled_from(
    ["12", "-5", "1" * 21, "١٢٣", 10**19, 2**63 - 1, 2**64 - 1, True, None, 1.5]
)
GOOD_LINES = (logfmt_lines() | st.lists(WORDS, min_size=1, max_size=6).map(lambda words: " ".join(words).encode()))
JSON_VALUES = st.lists(
    st.tuples(GOOD_STAMPS, GOOD_LINES.map(lambda raw: raw.decode("utf-8", "replace"))).map(list), max_size=5
) | st.lists(
    st.tuples(JSON_STAMPS, LINES.map(lambda raw: raw.decode("utf-8", "replace"))).map(list)
    | st.tuples(JSON_STAMPS, st.text(max_size=8), st.dictionaries(st.sampled_from(["k", "env"]), st.text(max_size=3)))
    .map(list)
    | st.sampled_from([["1"], ["1", 2], "x", ["1", "line", {"k": 1}]]),
    max_size=5,
)
JSON_STREAMS = st.lists(
    st.fixed_dictionaries({"stream": LABELS | st.sampled_from([{"a": 1}, "x"]), "values": JSON_VALUES}), max_size=2
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_STREAMS)
@example([{"stream": {"app": "web", "level": "info"}, "values": [[str(NOW * 10**9), "request 1 ok"],
                                                               [str(NOW * 10**9), "msg=a lone \ud800 surrogate"]]}])
@example([{"stream": {"app": "w"}, "values": [["1" * 21, "x"], ["1" * 20, "y"], [NOW * 10**9, "z"]]}])
@example([{"stream": {"app": "w"}, "values": [["١٢٣", "x"], [True, "y"]]}])
@example([{"stream": {"app": "w"}, "values": [[str(2**63 + 5), "x"], [2**63 - 1, "msg=y level=info"]]}])
@example([{"stream": {"app": "w"}, "values": []}, {"stream": "bad", "values": []}])
def test_json_same_batch_as_the_python_decoder(streams: list) -> None:
    try:
        body = orjson.dumps({"streams": streams})
    except TypeError:  # a lone surrogate: escaped (``\ud800``), as some clients write it
        body = json.dumps({"streams": streams}).encode()
    assert_same_json(body)


def test_json_promtail_push_is_read_without_the_python_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(9)
    document = {"streams": [
        {"stream": {"service_name": "checkout", "level": level, "env": "prod"},
         "values": [[str((NOW - rng.randrange(60)) * 10**9 + n), line.decode()]
                    for n, line in enumerate(bench_lines(50, rng))]}
        for level in ("info", "warn")
    ]}
    calls = []
    real = PROTOCOL._compiled_entry
    monkeypatch.setattr(PROTOCOL, "_compiled_entry", lambda *args: calls.append(args) or real(*args))
    batch = assert_same_json(orjson.dumps(document))
    assert batch is not None and batch.accepted == 100 and calls == []


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_json_truncated_or_garbage_bodies(data: st.DataObject) -> None:
    document = {"streams": [{"stream": {"app": "web"}, "values": [[str(NOW * 10**9), "request 1 ok"]]}]}
    assert_same_json(data.draw(mutated(orjson.dumps(document))))
