"""Log lines of any format as records: the format detected per line by ``logwarden.formats``.

Used by the raw text protocol (one record per line) and by Loki push (one record per entry): a JSON
or logfmt line yields its fields (time, level, message, user, request id...), a CEF or syslog line
its header and extensions, free text its level word when it has one.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from logwarden.collector.protocols.records import Schema
from logwarden.formats import ParsedRecord, parse

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: The attribute naming the format a line was read as (``json``, ``logfmt``, ``cef``, ``text``...).
FORMAT_ATTRIBUTE = "log_format"
RESERVED = (FORMAT_ATTRIBUTE, "parse_error")
_OPTIONAL = ("user_id", "request_id", "error_code", "duration_ms")


def micros_of(stamp: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    delta = stamp - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_line(line: bytes) -> ParsedRecord:
    """The line parsed in its detected format (never raises)."""
    return parse(line)


def parsed_fields(
    parsed: ParsedRecord,
    schema: Schema,
    declared: dict[str, Any],
    extras: dict[str, Any],
    taken: frozenset[str] = frozenset(),
) -> None:
    """Add what a parsed line says beyond time, level, service and message: the optional declared
    fields (user, request id, error code, duration) to ``declared``, its other fields (under their
    names, ``attributes.<name>`` on a clash with a declared, reserved or ``taken`` name), its format and
    its parse error to ``extras``."""
    for name in _OPTIONAL:
        value = getattr(parsed, name)
        if value is None or name not in schema.fillable:
            continue
        if name == "duration_ms" and (not math.isfinite(value) or value < 0):
            extras["attributes.duration_ms"] = value if math.isfinite(value) else str(value)
            continue
        declared[name] = value
    for key, value in parsed.attributes.items():
        if key in schema.reserved or key in taken:
            schema.place(key, value, declared, extras, frozenset((key,)))
        else:
            extras[key] = value
    extras[FORMAT_ATTRIBUTE] = parsed.format
    if parsed.parse_error:
        extras["parse_error"] = parsed.parse_error
