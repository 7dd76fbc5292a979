"""Hypothesis strategies: log records that are valid, nearly valid, or wrong in one or more ways."""

from __future__ import annotations

from hypothesis import strategies as st

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# Levels as clients send them: normalized to the five words before validation.
LEVEL_WORDS = ["warn", "Error", "err", "crit", "fatal", "trace", "info", "Warning", "WARN2", "notice", "3", "7"]
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def timestamps(draw) -> str:
    """RFC 3339 date-times and near misses (case, offsets, fractions, impossible dates, leap seconds...)."""
    year = draw(st.sampled_from(["2026", "1970", "0000", "0001", "9999", "1999", "2024"]))
    month = draw(st.sampled_from(["01", "02", "06", "11", "12", "13", "00"]))
    day = draw(st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]))
    sep = draw(st.sampled_from(["T", "T", "T", "t", " ", "_"]))
    hour = draw(st.sampled_from(["00", "10", "23", "24", "29"]))
    minute = draw(st.sampled_from(["00", "59", "60"]))
    second = draw(st.sampled_from(["00", "30", "59", "60"]))
    fraction = draw(st.sampled_from(["", "", ".5", ".123456", ".1234567", ".", ".123456789012"]))
    zone = draw(
        st.sampled_from(["Z", "Z", "z", "+02:00", "-05:30", "+0200", "", "+24:00", "-00:00", "+23:59"])
    )
    tail = draw(st.sampled_from(["", "", "", "\n", " ", "x"]))
    text = f"{year}-{month}-{day}{sep}{hour}:{minute}:{second}{fraction}{zone}{tail}"
    return draw(st.sampled_from([text, text, text, "yesterday", "", "2026-11-22"]))


GOOD_TIMESTAMPS = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}",
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["", ".1", ".25", ".123456"]),
    st.sampled_from(["Z", "+01:00", "-08:00"]),
)


def _string_or_wrong(max_size: int) -> st.SearchStrategy:
    return (
        st.text(max_size=max_size)
        | st.text(min_size=max_size - 1, max_size=max_size + 2)
        | INT64
        | st.booleans()
        | st.none()
        | st.lists(INT64, max_size=2)
    )


@st.composite
def records(draw) -> dict:
    """A record: mostly plausible, each field sometimes wrong, sometimes missing, sometimes extra fields."""
    record = {
        "timestamp": draw(timestamps() | GOOD_TIMESTAMPS | INT64 | st.none()),
        "level": draw(
            st.sampled_from(LEVELS)
            | st.sampled_from(["info", "FATAL", "", "LOUD", " warn", "Error ", "SEVERITY_NUMBER_WARN"])
            | st.sampled_from(LEVEL_WORDS)
            | INT64
            | st.integers(-2, 70)
            | st.floats(0, 8)
        ),
        "service": draw(st.text(min_size=1, max_size=10) | _string_or_wrong(128)),
        "message": draw(st.text(max_size=30) | st.none() | INT64),
    }
    for name, size in (("user_id", 256), ("request_id", 256), ("error_code", 128)):
        if draw(st.booleans()):
            record[name] = draw(st.text(max_size=12) | _string_or_wrong(size))
    if draw(st.booleans()):
        record["duration_ms"] = draw(
            st.floats(allow_nan=False, allow_infinity=False)
            | INT64
            | st.booleans()
            | st.none()
            | st.text(max_size=3)
            | st.just(-0.0)
            | st.just(0)
        )
    if draw(st.integers(0, 3)) == 0:
        record.update(draw(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=3)))
    if draw(st.integers(0, 5)) == 0:  # OpenTelemetry's fields, which give the level of a record without one
        record[draw(st.sampled_from(["severity_number", "severity_text"]))] = draw(
            st.integers(-1, 30) | st.sampled_from(["WARN", "error", "x"])
        )
    for name in draw(st.lists(st.sampled_from(["timestamp", "level", "service", "message"]), max_size=2)):
        record.pop(name, None)
    return record


@st.composite
def clean_records(draw) -> dict:
    """Valid records of the common shape: declared fields only, canonical timestamps, no nulls."""
    record = {
        "timestamp": draw(GOOD_TIMESTAMPS),
        "level": draw(st.sampled_from(LEVELS) | st.sampled_from(LEVEL_WORDS)),
        "service": draw(st.text(min_size=1, max_size=128)),
        "message": draw(st.text(max_size=64)),
    }
    for name in ("user_id", "request_id", "error_code"):
        if draw(st.booleans()):
            record[name] = draw(st.text(max_size=20))
    if draw(st.booleans()):
        record["duration_ms"] = draw(st.floats(min_value=0, allow_infinity=False) | st.integers(0, 2**53))
    return record


@st.composite
def mutated(draw, body: bytes) -> bytes:
    """``body`` cut, with a byte flipped, bytes inserted, spliced with itself, or replaced by random bytes."""
    kind = draw(st.sampled_from(["cut", "flip", "insert", "random", "splice"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    position = draw(st.integers(0, max(0, len(body) - 1)))
    if kind == "cut":
        return body[:position]
    if kind == "flip":
        return body[:position] + bytes([draw(st.integers(0, 255))]) + body[position + 1:]
    if kind == "insert":
        return body[:position] + draw(st.binary(min_size=1, max_size=20)) + body[position:]
    return body[:position] + body[draw(st.integers(0, len(body))):]
