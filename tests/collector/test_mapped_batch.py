"""``BatchDecoder.mapped`` (the columnar fast path for records a protocol decoded) gives the same outcome
as the per-record path ``BatchDecoder.records`` on every generated batch: the same accepted rows and
write-ahead lines, the same rejected records with the same field and error."""

from __future__ import annotations

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.decoding import RawRecord
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from tests.collector.strategies import clean_records, records

NOW = 1_795_334_400.0  # 2026-11-22T08:00:00Z
VALIDATOR = RecordValidator(
    skew=SkewLimits(max_future=3600, max_past=400 * 86400),
    clock=lambda: NOW,
    limits=RecordLimits(max_fields=12, max_depth=4),
)
DECODER = BatchDecoder(VALIDATOR, max_line_bytes=1 << 22, max_body_bytes=1 << 26)
# No clock skew limit: the generated valid records span years 1 to 9999.
ANY_TIME = BatchDecoder(
    RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_fields=12, max_depth=4)),
    max_line_bytes=1 << 22,
    max_body_bytes=1 << 26,
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NESTED = st.recursive(st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3), lambda inner: st.lists(inner, max_size=2)
                      | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=8)


def outcome(batch) -> tuple[list, list, list]:
    table = batch.table
    for i, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type):  # years 1..9999: compare the integers
            table = table.set_column(i, column.name, table.column(i).cast(pa.int64()))
    rows = sorted(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) for row in table.to_pylist())
    lines = sorted(line for line in batch.payload.split(b"\n") if line)
    rejected = sorted((raw.index, why.field, why.error, why.reason) for raw, why in batch.rejected)
    return rows, lines, rejected


def raw_records(values: list) -> list[RawRecord]:
    return [RawRecord(i, orjson.dumps(value), value) for i, value in enumerate(values)]


@PROPERTY
@given(
    st.lists(
        clean_records()
        | records()
        | st.builds(lambda r, extra: {**r, **extra}, clean_records(), st.dictionaries(st.text(max_size=4), NESTED,
                                                                                        max_size=14)),
        min_size=1,
        max_size=12,
    )
)
def test_mapped_equals_the_per_record_path(values):
    fast = DECODER.mapped(raw_records(values))
    slow = DECODER.records(raw_records(values))
    assert outcome(fast) == outcome(slow)
    assert fast.table.schema == slow.table.schema


@PROPERTY
@given(
    st.lists(
        st.builds(lambda r, extra: {**r, **extra}, clean_records(), st.dictionaries(st.text(max_size=4), NESTED,
                                                                                    max_size=3)),
        min_size=1,
        max_size=6,
    )
)
def test_mapped_equals_the_per_record_path_on_valid_records_with_attributes(values):
    """Valid records (levels as clients send them, attributes nesting around the depth limit) take the
    fast path, and it agrees with the per-record path."""
    fast = ANY_TIME.mapped(raw_records(values))
    slow = ANY_TIME.records(raw_records(values))
    assert outcome(fast) == outcome(slow)


def test_clean_records_take_the_fast_path_with_their_attributes_and_normalized_levels():
    values = [
        {"timestamp": "2026-11-22T08:00:00Z", "level": "warn", "service": "s", "message": "a", "k": {"x": 1}},
        {"timestamp": "2026-11-22T08:00:01Z", "level": "INFO", "service": "s", "message": "b"},
        {"timestamp": "2026-11-22T08:00:02Z", "level": "ERROR", "service": "s", "message": "c", "user_id": "u"},
    ]
    batch = DECODER.mapped(raw_records(values))
    assert batch.fast and not batch.rejected
    rows = batch.table.to_pylist()
    assert [row["level"] for row in rows] == ["WARNING", "INFO", "ERROR"]
    assert orjson.loads(rows[0]["attributes"]) == {"k": {"x": 1}, "level_original": "warn"}
    assert rows[1]["attributes"] is None and rows[2]["user_id"] == "u"
    assert outcome(batch) == outcome(DECODER.records(raw_records(values)))


def test_one_bad_record_is_named_and_the_others_are_kept():
    good = {"timestamp": "2026-11-22T08:00:00Z", "level": "INFO", "service": "s", "message": "ok"}
    values = [good, {**good, "user_id": None}, {**good, "service": 5}, good, {**good, "deep": [[[[1]]]]}]
    records_ = raw_records(values)
    records_.append(RawRecord(5, b"{", error="invalid JSON"))
    records_.append(RawRecord(6, b"?", {**good, "bytes": b"\x00"}))  # not JSON: refused, not raised
    records_.append(RawRecord(7, b"", {**good, "nested": [[[1]]]}))  # at the depth limit (4): accepted
    batch = DECODER.mapped(records_)
    assert batch.fast and batch.accepted == 3
    assert sorted((raw.index, why.field) for raw, why in batch.rejected) == [
        (1, "user_id"), (2, "service"), (4, ""), (5, ""), (6, "")
    ]
