"""Log format parsers, auto-detection and file reading.

Public surface::

    detect(record) -> Detection(format, confidence)
    detect_stream(records) -> Detection
    parse(record, format=None) -> ParsedRecord
    read_records(path) -> Iterator[RawRecord]
    FORMATS  # registered format names
"""
from __future__ import annotations

import logging
from typing import Any

import orjson

from logwarden.formats import registry
from logwarden.formats.common import error_record
from logwarden.formats.detect import Detection, detect, detect_stream
from logwarden.formats.files import RawRecord, read_records
from logwarden.formats.record import LEVELS, ParsedRecord

log = logging.getLogger(__name__)

FORMATS: list[str] = registry.names()

__all__ = ["FORMATS", "LEVELS", "Detection", "ParsedRecord", "RawRecord", "detect",
           "detect_stream", "parse", "read_records"]


def parse(record: bytes | str | dict[str, Any] | RawRecord, format: str | None = None) -> ParsedRecord:
    """Parse one record into a :class:`ParsedRecord`, detecting the format when not given.

    Never raises on bad input: malformed records come back as ``text`` records with
    ``parse_error`` set. An unknown ``format`` name raises ValueError.
    """
    fields = None
    if isinstance(record, RawRecord):
        fields = record.fields
        if format is None:
            format = detect(record).format
        record = record.data
    elif format is None:
        format = detect(record).format
    parser = registry.get(format)
    try:
        parsed = _dispatch(parser, record, fields)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not take the pipeline down
        log.warning("parser %s failed on a record: %r", format, exc)
        return error_record(record, f"{format}: internal error: {type(exc).__name__}")
    if isinstance(record, dict):
        parsed.attributes = jsonable(parsed.attributes)
    return parsed


def jsonable(value: Any) -> Any:
    """``value`` when JSON can hold it; otherwise a copy whose integers beyond 64 bits (which a decoded
    dict may hold) and other non-JSON values are strings."""
    try:
        orjson.dumps(value)
        return value
    except TypeError:
        return _strings_for_the_rest(value)


def _strings_for_the_rest(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _strings_for_the_rest(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strings_for_the_rest(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return value if -2**63 <= value < 2**64 else str(value)
    return str(value)


def _dispatch(parser: registry.Parser, record: bytes | str | dict[str, Any],
              fields: tuple[str, ...] | None) -> ParsedRecord:
    """Call the parser with the right input shape (unwrapping ``_raw`` envelopes)."""
    if isinstance(record, dict):
        raw = record.get("_raw")
        if isinstance(raw, str) and parser.name not in ("json", "cloudtrail", "windows-event"):
            parsed = parser.parse(raw)
            parsed.attributes["envelope"] = {k: v for k, v in record.items() if k != "_raw"}
            return parsed
        if parser.name not in ("json", "cloudtrail", "windows-event"):
            return parser.parse(orjson.dumps(record, default=str))
        return parser.parse(record)
    if fields is not None and parser.name == "access-log":
        return parser.parse(record, fields=fields)
    return parser.parse(record)
