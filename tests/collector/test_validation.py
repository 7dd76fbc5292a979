"""The fast validator agrees with the log schema and normalizes valid records."""

from __future__ import annotations


import jsonschema
import orjson
import pytest

from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.records import load_log_schema

NOW = 1795334500.0  # a little after VALID's timestamp
VALID = {
    "timestamp": "2026-11-22T10:00:00.5+02:00",
    "level": "ERROR",
    "service": "payment-service",
    "message": "boom",
    "user_id": "u-1",
    "duration_ms": 12.5,
    "region": "eu-west-1",
}


@pytest.fixture
def validator() -> RecordValidator:
    return RecordValidator(skew=SkewLimits(max_future=3600, max_past=10 * 365 * 86400), clock=lambda: NOW)


def test_valid_record_passes_and_matches_jsonschema(validator):
    assert validator.check(VALID) is None
    jsonschema.validate(VALID, load_log_schema(), format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(
    "change, field, reason",
    [
        ({"level": "LOUD"}, "level", "schema_enum"),
        ({"level": 17}, "level", "schema_type"),  # not a syslog severity nor a pino level
        ({"level": True}, "level", "schema_type"),
        ({"duration_ms": -1}, "duration_ms", "schema_minimum"),
        ({"duration_ms": "12"}, "duration_ms", "schema_type"),
        ({"timestamp": "2026-11-22T10:00:00"}, "timestamp", "schema_format"),
        ({"timestamp": "yesterday"}, "timestamp", "schema_format"),
        ({"service": ""}, "service", "schema_minLength"),
        ({"message": None}, "message", "schema_type"),
    ],
)
def test_invalid_field_is_named(validator, change, field, reason):
    rejection = validator.check({**VALID, **change})
    assert rejection is not None
    assert (rejection.field, rejection.reason) == (field, reason)
    assert field in rejection.error


@pytest.mark.parametrize(
    "sent, stored",
    [
        ("warn", "WARNING"),
        ("Error", "ERROR"),
        ("err", "ERROR"),
        ("crit", "CRITICAL"),
        ("fatal", "CRITICAL"),
        ("FATAL", "CRITICAL"),
        ("trace", "DEBUG"),
        ("notice", "INFO"),
        ("info", "INFO"),
        ("WARN2", "WARNING"),  # OpenTelemetry severity text
        ("SEVERITY_NUMBER_ERROR", "ERROR"),
        (0, "CRITICAL"),  # syslog severities
        (3, "ERROR"),
        (4, "WARNING"),
        (6, "INFO"),
        (7, "DEBUG"),
        ("4", "WARNING"),
        (30, "INFO"),  # pino
        (50, "ERROR"),
    ],
)
def test_levels_are_normalized_and_the_value_as_sent_kept(validator, sent, stored):
    row, rejection = validator.accept({**VALID, "level": sent}, NOW)
    assert rejection is None
    assert row["level"] == stored
    assert orjson.loads(row["attributes"]) == {"region": "eu-west-1", "level_original": sent}


def test_canonical_levels_add_nothing_and_otel_fields_give_a_missing_level(validator):
    row, _ = validator.accept(VALID, NOW)
    assert orjson.loads(row["attributes"]) == {"region": "eu-west-1"}
    record = {key: value for key, value in VALID.items() if key != "level"}
    row, _ = validator.accept({**record, "severity_number": 13}, NOW)
    assert row["level"] == "WARNING"
    assert orjson.loads(row["attributes"]) == {"region": "eu-west-1", "severity_number": 13}
    row, _ = validator.accept({**record, "severity_text": "Fatal"}, NOW)
    assert row["level"] == "CRITICAL"
    assert validator.check({**record, "severity_number": 99}).field == "level"


def test_missing_required_field_is_named(validator):
    record = dict(VALID)
    del record["service"]
    rejection = validator.check(record)
    assert (rejection.field, rejection.reason) == ("service", "schema_required")


def test_non_object_is_rejected(validator):
    assert validator.check([1, 2]).reason == "not_object"
    assert validator.check("text").reason == "not_object"


def test_timestamp_skew_is_enforced():
    validator = RecordValidator(skew=SkewLimits(max_future=60, max_past=3600), clock=lambda: 1_800_000_000.0)
    future = {**VALID, "timestamp": "2027-01-15T08:02:00Z"}  # 1_800_000_120 + ~0
    assert validator.check(future).reason == "timestamp_skew"
    past = {**VALID, "timestamp": "2027-01-15T06:00:00Z"}
    assert validator.check(past).reason == "timestamp_skew"


def test_normalize_converts_to_utc_and_keeps_extras_as_attributes(validator):
    row = validator.normalize(VALID, "b-000001", "acme", "http:127.0.0.1", 1)
    # 10:00:00.5+02:00 is 08:00:00.5 UTC
    assert row["timestamp"] == 1795334400_500000
    assert row["attributes"] == '{"region":"eu-west-1"}'
    assert (row["record_id"], row["tenant"], row["source"]) == ("b-000001", "acme", "http:127.0.0.1")
    assert row["user_id"] == "u-1" and row["request_id"] is None
