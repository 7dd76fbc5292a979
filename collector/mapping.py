"""Helpers the ingest protocols share to turn a foreign record into the native shape.

A protocol builds, per record, a dict with the declared fields (``timestamp``, ``level``,
``service``, ``message`` and the optional ones) and keeps every other field of the record as is
(they become the record's attributes). The level is handed over as sent: the validator
normalizes it (``warn`` -> ``WARNING``) and keeps the value as sent in ``level_original``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

import orjson

from logwarden.collector.timestamps import ARROW_RFC3339
from logwarden.formats import ParsedRecord
from logwarden.formats import timestamps as format_timestamps

#: The schema's longest message and service (longer foreign values are cut, and the cut is said).
MAX_MESSAGE = 65536
MAX_SERVICE = 128
TRUNCATED = "message_truncated_from"
_RFC3339 = re.compile(ARROW_RFC3339)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The last second formatted (records of one request mostly share it): (seconds, "YYYY-MM-DDTHH:MM:SS").
_last_second: tuple[int, str] = (-1, "")


def rfc3339_from_ns(nanoseconds: int) -> str:
    """An RFC 3339 UTC date-time (microseconds, ``Z``) for nanoseconds since the epoch."""
    global _last_second
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    cached = _last_second
    if cached[0] == seconds:
        prefix = cached[1]
    else:
        prefix = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, prefix)
    return f"{prefix}.{rest // 1000:06d}Z"


def rfc3339_from_seconds(seconds: float) -> str:
    """An RFC 3339 UTC date-time for (fractional) seconds since the epoch."""
    return rfc3339_from_ns(round(seconds * 1_000_000) * 1000)


def rfc3339_from_datetime(stamp: datetime) -> str:
    """An RFC 3339 UTC date-time of an aware datetime (naive ones are taken as UTC)."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def now_rfc3339() -> str:
    """The current time as an RFC 3339 UTC date-time."""
    return rfc3339_from_datetime(datetime.now(timezone.utc))


def timestamp_text(value: Any, numbers: str = "ms") -> Any:
    """A timestamp as the native shape wants it (RFC 3339 text), from what a client sent.

    RFC 3339 text passes as is; a number is read as epoch milliseconds (``numbers="ms"``, as
    Elasticsearch does) or seconds (``"s"``, as Splunk does); other text is read by the formats'
    timestamp parser (``2026-11-22 10:00:01``, ``2026-11-22``, epoch digits...), UTC when it has
    no zone. A value none of these can read is returned unchanged: the validator then refuses the
    record and says why.
    """
    if value.__class__ is str:
        if _RFC3339.match(value):
            return value
        stripped = value.strip()
        if stripped.replace(".", "", 1).isdigit():
            try:
                return timestamp_text(float(stripped), numbers)
            except (OverflowError, ValueError):
                return value
        parsed = format_timestamps.parse_any(value) if len(value) < 64 else None
        return rfc3339_from_datetime(parsed) if parsed is not None else value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            return value
        seconds = value / 1000 if numbers == "ms" else value
        if seconds >= 253402300800:  # year 10000
            return value
        return rfc3339_from_seconds(seconds)
    return value


def as_text(value: Any) -> str | None:
    """A scalar as the text a string field wants (numbers and booleans as JSON writes them), else None."""
    if value.__class__ is str:
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    return None


def message_text(record: dict[str, Any], value: Any) -> str:
    """The message field: text as is (cut at the schema's limit, the length kept as an attribute),
    anything else as its JSON text."""
    if value.__class__ is not str:
        value = "" if value is None else orjson.dumps(value, default=str).decode()
    if len(value) > MAX_MESSAGE:
        record[TRUNCATED] = len(value)
        value = value[:MAX_MESSAGE]
    return value


def service_text(value: str) -> str:
    """A service name derived by the collector (an index, a tag, a host), cut to the schema's limit."""
    return value[:MAX_SERVICE] if len(value) > MAX_SERVICE else value


def duration_ms(value: Any, scale: float = 1.0) -> float | None:
    """A non-negative finite duration times ``scale``, else None."""
    if value.__class__ in (int, float) and math.isfinite(value) and value >= 0:
        return value * scale
    return None


def take(doc: dict[str, Any], parent: str, child: str) -> Any:
    """Remove and return ``parent.child`` from ``doc``: a dotted key, or ``child`` of a nested object
    (the parent goes when it is left empty); None when absent or null."""
    dotted = f"{parent}.{child}"
    if dotted in doc:
        return doc.pop(dotted)
    nested = doc.get(parent)
    if nested.__class__ is dict and child in nested:
        value = nested.pop(child)
        if not nested:
            del doc[parent]
        return value
    return None


def native_from_parsed(parsed: ParsedRecord, fallback_time: str) -> dict[str, Any]:
    """The native record of a record parsed by :mod:`logwarden.formats` (its attributes kept)."""
    record: dict[str, Any] = {
        "timestamp": rfc3339_from_datetime(parsed.timestamp) if parsed.timestamp else fallback_time,
        "level": parsed.level,
        "service": parsed.service or "",
        "message": parsed.message,
    }
    for name in ("user_id", "request_id", "error_code"):
        value = getattr(parsed, name)
        if value is not None:
            record[name] = value
    if parsed.duration_ms is not None and math.isfinite(parsed.duration_ms):
        record["duration_ms"] = parsed.duration_ms
    return record


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` with what JSON cannot hold made JSON: bytes as UTF-8 text (invalid bytes replaced),
    keys as text, integers beyond 64 bits and other objects as their text; nesting past 200 levels
    cut (the validator refuses such a record for its depth anyway)."""
    if depth > 200:
        return None
    kind = value.__class__
    if kind is dict:
        return {
            (key if key.__class__ is str else _key_text(key)): jsonable(item, depth + 1)
            for key, item in value.items()
        }
    if kind in (list, tuple):
        return [jsonable(item, depth + 1) for item in value]
    if kind in (str, float, bool) or value is None:
        return value
    if kind is int:
        return value if -(2**63) <= value < 2**64 else str(value)
    if kind in (bytes, bytearray, memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _key_text(key: Any) -> str:
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", "replace")
    return str(key)
