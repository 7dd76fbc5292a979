"""The fast paths agree with jsonschema, the reference, on every generated record.

Both the per-record path (fastjsonschema with the collector's date-time check) and the
columnar path (Arrow) are compared: same verdict, and the field named is one jsonschema names.
Whenever the columnar path accepts a body, its rows equal those of the per-record path.

The schema describes a stored record: levels are normalized before validation (``warn`` becomes
WARNING, the value as sent kept in ``level_original``), so the reference validates the record as
normalized by ``normalized_level``; the rows of both paths carry the same ``level_original``.
"""

from __future__ import annotations

import jsonschema
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.decoding import split_ndjson
from logwarden.collector.timestamps import ARROW_RFC3339, is_rfc3339, to_epoch_us
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits, normalized_level
from logwarden.common.records import TIMESTAMP, load_log_schema
from tests.collector.strategies import clean_records, records, timestamps

SCHEMA = load_log_schema()
REFERENCE = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
VALIDATOR = RecordValidator(
    skew=SkewLimits.unlimited(), limits=RecordLimits(max_fields=10_000, max_depth=1000)
)
DECODER = BatchDecoder(VALIDATOR, max_line_bytes=1 << 22, max_body_bytes=1 << 26)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_fields(record: dict) -> set[str]:
    """The fields jsonschema finds at fault ("" for the record as a whole) in the record as normalized;
    empty when valid."""
    fields = set()
    record = normalized_level(record)
    for error in REFERENCE.iter_errors(record):
        if error.validator == "required":
            fields |= {name for name in error.validator_value if name not in record}
        else:
            fields.add(".".join(str(p) for p in error.path))
    return fields


def verdicts(records_: list[dict]) -> tuple[list[str | None], pa.Table, bool]:
    """Per record None (accepted) or the field named, through the full NDJSON path."""
    body = b"".join(orjson.dumps(r) + b"\n" for r in records_)
    batch = DECODER.ndjson(body)
    result: list[str | None] = [None] * len(records_)
    for raw, rejection in batch.rejected:
        result[raw.index] = rejection.field
    return result, batch.table, batch.fast


def test_the_reference_checks_date_time_formats():
    assert not REFERENCE.is_valid({"timestamp": "yesterday", "level": "INFO", "service": "s", "message": ""})


def test_the_reference_sees_normalized_levels_and_still_refuses_unknown_ones():
    base = {"timestamp": "2026-11-22T10:00:00Z", "service": "s", "message": ""}
    assert not REFERENCE.is_valid({**base, "level": "warn"})  # the stored form is the five words
    assert reference_fields({**base, "level": "warn"}) == set()
    assert reference_fields({**base, "level": "LOUD"}) == {"level"}
    assert normalized_level({**base, "level": "Error"}) == {**base, "level": "ERROR", "level_original": "Error"}


@PROPERTY
@given(st.lists(clean_records(), min_size=1, max_size=20))
def test_both_paths_keep_the_level_as_sent_when_it_is_not_one_of_the_five(records_):
    named, table, fast = verdicts(records_)
    assert fast
    rows = table.select(["level", "attributes"]).to_pylist()  # (timestamps of year 1 overflow datetime)
    for record, row in zip(records_, rows):
        attributes = orjson.loads(row["attributes"]) if row["attributes"] else {}
        if record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            assert row["level"] == record["level"] and attributes == {}
        else:
            assert attributes == {"level_original": record["level"]}
            assert row["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@PROPERTY
@given(st.lists(records(), min_size=1, max_size=6))
def test_verdict_and_field_equal_jsonschema(records_):
    named, table, _ = verdicts(records_)
    for record, field in zip(records_, named):
        expected = reference_fields(record)
        if not expected:
            assert field is None, (record, field)
        else:
            assert field is not None and field in expected, (record, field, expected)
    assert table.num_rows == sum(1 for record in records_ if not reference_fields(record))


@PROPERTY
@given(st.lists(clean_records(), min_size=1, max_size=20))
def test_columnar_path_takes_clean_bodies_and_matches_the_per_record_rows(records_):
    assert all(not reference_fields(record) for record in records_)
    named, table, fast = verdicts(records_)
    assert fast and named == [None] * len(records_)
    body = b"".join(orjson.dumps(r) + b"\n" for r in records_)
    per_record = DECODER.records(list(split_ndjson(body, 1 << 22)))
    assert table.equals(per_record.table)


@PROPERTY
@given(st.lists(records(), min_size=1, max_size=6))
def test_whenever_the_columnar_path_accepts_every_record_is_valid(records_):
    body = b"".join(orjson.dumps(r) + b"\n" for r in records_)
    table = DECODER.columnar.decode(body, None, 1 << 22)
    if table is not None:
        assert all(not reference_fields(record) for record in records_)
        assert table.equals(DECODER.records(list(split_ndjson(body, 1 << 22))).table)


@settings(max_examples=600, deadline=None)
@given(timestamps())
def test_date_time_check_and_utc_value_match_jsonschema_and_arrow(text):
    checker = jsonschema.FormatChecker()
    assert is_rfc3339(text) == checker.conforms(text, "date-time")
    if is_rfc3339(text) and pc.match_substring_regex(pa.array([text]), ARROW_RFC3339)[0].as_py():
        assert to_epoch_us(text) == pc.cast(pa.array([text]), TIMESTAMP)[0].value
