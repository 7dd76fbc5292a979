"""The compiled PackedForward decoder (collector/_forward_fast.pyx) gives exactly the batch of the Python
decoder (table, write-ahead payload, acknowledgements, rejections) for any forward message, takes the
fast path for the records Fluent Bit sends, and never crashes on truncated or garbage bytes."""

from __future__ import annotations

import gzip
import importlib
import random
import struct
import time
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logwarden.collector import forward
from logwarden.collector.batch import BatchDecoder
from logwarden.collector.forward import ForwardOptions, ForwardSession
from logwarden.collector.validation import RecordValidator
from tests.collector.strategies import LEVEL_WORDS, LEVELS, mutated

DECODER = BatchDecoder(RecordValidator(), max_line_bytes=1 << 20, max_body_bytes=64 << 20)
NOW = time.time() - 60
KEYS = [
    "message", "msg", "log", "MESSAGE", "level", "severity", "lvl", "levelname", "service", "service_name",
    "app", "application", "user_id", "userId", "request_id", "trace_id", "error_code", "duration_ms",
    "tag", "fluent_tag", "timestamp", "level_original", "stream", "kubernetes", "é", "a\"b\\c\n", "\x00",
]
TEXTS = st.text(max_size=12) | st.sampled_from(
    ["", "GET /health 200", "level=info msg=x", "ERROR boom", "{\"a\": 1}", "😀 \u2028\x1f", "<13>Oct"]
)
SCALARS = (
    st.none() | st.booleans() | TEXTS | st.sampled_from(LEVEL_WORDS + LEVELS)
    | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.floats(width=32)
    | st.binary(max_size=4) | st.builds(msgpack.ExtType, st.integers(1, 5), st.binary(max_size=3))
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=6,
)


def event_time(seconds: float) -> msgpack.ExtType:
    whole = int(seconds)
    return msgpack.ExtType(0, struct.pack(">II", whole, int((seconds - whole) * 1e9)))


TIMES = (
    st.floats(NOW - 1e6, NOW + 10).map(event_time)
    | st.integers(int(NOW) - 10**6, int(NOW) + 10) | st.floats(NOW - 1e6, NOW + 10)
    | st.sampled_from([-1, 2**40, 2**34 + 0.5, 2**34 + 0.5, float("nan"), "now", None, msgpack.Timestamp(int(NOW), 5)])
)


WIDTHS = [0, -1, -32, -33, 127, 128, 255, 256, 65535, 65536, -129, -(2**31) - 1, 2**32, 2**63, 2**64 - 1]
TAME_KEYS = st.sampled_from(
    ["stream", "kubernetes", "host", "é", "a\"b\\c\n", "\x00", "msg", "log", "app", "userId", "trace_id",
     "duration_ms", "level_original", "fluent_tag", "severity", "error_code"]
) | st.text(max_size=6)
TAME_VALUES = st.recursive(
    st.none() | st.booleans() | TEXTS | st.integers(-(2**63), 2**63 - 1) | st.sampled_from(WIDTHS)
    | st.floats(allow_nan=False) | st.floats(width=32, allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TAME_KEYS, inner, max_size=3),
    max_leaves=5,
)


@st.composite
def wild_records(draw: Any) -> dict:
    """Maps with the known keys in any mix and values of every msgpack type."""
    record = draw(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), VALUES, max_size=7))
    if draw(st.booleans()):
        record["message"] = draw(TEXTS)
    if draw(st.booleans()):
        record["level"] = draw(st.sampled_from(LEVEL_WORDS + LEVELS + ["", "nonsense"]))
    return record


@st.composite
def shipped_records(draw: Any) -> dict:
    """Maps as shippers send them: a message, mostly a level, attributes of JSON types."""
    record = {"message": draw(TEXTS)} if draw(st.integers(0, 5)) else {"log": draw(TEXTS)}
    if draw(st.integers(0, 4)):
        record["level"] = draw(st.sampled_from(LEVEL_WORDS + LEVELS))
    record.update(draw(st.dictionaries(TAME_KEYS, TAME_VALUES, max_size=6)))
    return record


FLUENT_RECORDS = st.one_of(shipped_records(), shipped_records(), wild_records())


GOOD_TIMES = st.floats(NOW - 1e6, NOW + 10).map(event_time) | st.integers(int(NOW) - 10**6, int(NOW) + 10)
ENTRIES = st.lists(st.tuples(GOOD_TIMES, shipped_records()).map(list), max_size=6) | st.lists(
    st.tuples(TIMES, FLUENT_RECORDS).map(list)
    | st.sampled_from([[1], "entry", [int(NOW), "not a map"], [event_time(NOW), {1: "int key"}]]),
    max_size=6,
)


def packed(entries: list, tag: str = "app.web", compressed: bool = False, chunk: str | None = "c1") -> bytes:
    payload = b"".join(msgpack.packb(entry) for entry in entries)
    option: dict = {"size": len(entries)}
    if chunk is not None:
        option["chunk"] = chunk
    if compressed:
        payload = gzip.compress(payload, 1)
        option["compressed"] = "gzip"
    return msgpack.packb([tag, payload, option])


def feed(message: bytes, compiled: bool) -> forward.Fed:
    saved = forward.packed_columns
    if not compiled:
        forward.packed_columns = None
    try:
        return ForwardSession(DECODER, ForwardOptions()).feed(message)
    finally:
        forward.packed_columns = saved


def assert_same(message: bytes) -> forward.Fed:
    fast, slow = feed(message, True), feed(message, False)
    assert (fast.error, fast.acks) == (slow.error, slow.acks)
    assert (fast.batch is None) == (slow.batch is None)
    if fast.batch is not None:
        assert fast.batch.table.equals(slow.batch.table), (fast.batch.table.to_pylist(), slow.batch.table.to_pylist())
        assert fast.batch.payload == slow.batch.payload
        assert [(raw.index, raw.raw, why) for raw, why in fast.batch.rejected] == [
            (raw.index, raw.raw, why) for raw, why in slow.batch.rejected
        ]
    return fast


def bench_records(n: int, rng: random.Random) -> list:
    """Records as Fluent Bit sends an application's logs (as bench/protocols_decode.py makes them)."""
    return [
        [event_time(NOW + i / 1000), {
            "level": rng.choice(["info"] * 8 + ["warn", "error", "debug"]),
            "message": f"GET /api/v1/orders 200 in {rng.randint(1, 900)} ms",
            "service": rng.choice(["checkout", "auth-service"]), "user_id": f"u-{rng.randint(1, 5000)}",
            "request_id": f"{rng.getrandbits(64):016x}", "stream": "stdout",
            "kubernetes": {"pod_name": f"web-{rng.randint(1, 9)}", "namespace_name": "shop"},
        }]
        for i in range(n)
    ]


def test_the_compiled_decoder_is_built() -> None:
    module = importlib.import_module("logwarden.collector._forward_fast")
    assert module.__file__.endswith(".so")
    assert forward.packed_columns is module.packed_columns


@pytest.mark.parametrize("compressed", [False, True])
def test_fluent_bit_records_take_the_compiled_path(compressed: bool) -> None:
    entries = bench_records(300, random.Random(3))
    entries[5][1]["duration_ms"] = 12.5
    entries[6][1]["duration_ms"] = 7
    entries[7][1].pop("level")  # a message no format detection looks at: INFO
    calls = []
    real = forward._FastPacked.batch

    def spy(self: forward._FastPacked, decoder: BatchDecoder) -> Any:
        calls.append(result := real(self, decoder))
        return result

    forward._FastPacked.batch = spy
    try:
        fed = assert_same(packed(entries, compressed=compressed))
    finally:
        forward._FastPacked.batch = real
    assert calls and calls[0] is not None, "the compiled decoder fell back to Python"
    assert fed.batch.accepted == 300 and fed.acks == ["c1"]
    row = fed.batch.table.slice(5, 1).to_pylist()[0]
    assert row["duration_ms"] == 12.5 and row["level"] in LEVELS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ENTRIES, st.booleans(), st.sampled_from(["app.web", "kube.var.log", "", "é.x"]))
@example([[event_time(NOW), {"message": "a", "message_truncated_from": 3, "level": "warn"}]], False, "a")
@example([[event_time(NOW), {"msg": "x", "level": "info", "kubernetes": {"a": [1, {"b": None}]}}]], True, "t")
@example([[int(NOW), {"log": "plain line", "x": 2**64 - 1, "y": -(2**63), "z": 1e300}]], False, "t")
@example([[event_time(NOW), {"message": "m", "level": "info", "w": WIDTHS, "f": [1.5, 0.1, -0.0, 1e16]}]], False, "t")
@example([[NOW, {"message": "m", "level": "crit", "a": {"k": 1, "k2": 2}, "tag": "mine"}]], False, "t")
@example([[event_time(NOW), {"message": "m", "level": "WARN", "attr": "\"level_original\""}]], False, "t")
def test_same_batch_as_the_python_decoder(entries: list, compressed: bool, tag: str) -> None:
    assert_same(packed(entries, tag, compressed))


@settings(max_examples=60, deadline=None)
@given(st.lists(ENTRIES, min_size=1, max_size=4), st.lists(st.sampled_from(["packed", "forward", "message"]),
                                                         min_size=4, max_size=4))
def test_several_messages_in_one_read(groups: list, modes: list) -> None:
    """Messages of every mode in one read: the records keep their order whichever decoder reads them."""
    parts = []
    for n, (entries, mode) in enumerate(zip(groups, modes)):
        if mode == "packed":
            parts.append(packed(entries, chunk=f"c{n}"))
        elif mode == "forward":
            parts.append(msgpack.packb(["app.web", entries, {"chunk": f"c{n}"}]))
        elif entries and isinstance(entries[0], list) and len(entries[0]) == 2:
            parts.append(msgpack.packb(["app.web", *entries[0], {"chunk": f"c{n}"}]))
    assert_same(b"".join(parts))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_truncated_or_garbage_payloads(data: st.DataObject) -> None:
    """Payload bytes cut, flipped, spliced or random: same answer as Python (usually an error), no crash."""
    payload = b"".join(msgpack.packb(entry) for entry in bench_records(3, random.Random(1)))
    broken = data.draw(mutated(payload))
    assert_same(msgpack.packb(["app.web", broken, {"chunk": "c"}]))


def test_deep_nesting_and_many_fields_go_to_python() -> None:
    deep: Any = "x"
    for _ in range(50):
        deep = {"d": deep}
    many = {f"k{i}": i for i in range(1200)}
    for record in ({"message": "m", "level": "info", "deep": deep}, {"message": "m", "level": "info", **many}):
        fed = assert_same(packed([[event_time(NOW), record]]))
        assert fed.batch.accepted + len(fed.batch.rejected) == 1
