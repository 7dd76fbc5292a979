"""Validate and normalize incoming records against ``schemas/log_schema.yaml``.

The schema is compiled once with fastjsonschema (the fast path); jsonschema stays
the reference implementation (see tests). A valid record is normalized into a row
of the record layout: timestamp in UTC microseconds, declared fields as columns,
everything else as a JSON ``attributes`` string.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import fastjsonschema
import orjson

from logwarden.common.records import load_log_schema

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Rejection:
    """Why one record was refused: the field at fault (``""`` for the whole record) and the problem."""

    field: str
    error: str
    reason: str  # a short machine-readable reason, used as a metrics label


@dataclass(frozen=True)
class SkewLimits:
    """How far from the collector's clock an event timestamp may be (seconds)."""

    max_future: float = 3600.0
    max_past: float = 30 * 86400.0


def _field_of(exc: fastjsonschema.JsonSchemaValueException, record: dict, required: tuple[str, ...]) -> str:
    if exc.rule == "required":
        return next((name for name in required if name not in record), "")
    path = [str(p) for p in (exc.path or [])[1:]]
    return ".".join(path)


class RecordValidator:
    """Checks records against the log schema and turns valid ones into normalized rows."""

    def __init__(self, log_schema: dict[str, Any] | None = None, skew: SkewLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.schema = log_schema or load_log_schema()
        self._check = fastjsonschema.compile(self.schema)
        self._required = tuple(self.schema.get("required", ()))
        self._declared = tuple(self.schema.get("properties", {}))
        self._timestamp_fields = tuple(
            name for name, spec in self.schema.get("properties", {}).items() if spec.get("format") == "date-time"
        )
        self.skew = skew or SkewLimits()
        self._clock = clock

    def check(self, record: Any) -> Rejection | None:
        """None when ``record`` is valid, else the first problem found."""
        if not isinstance(record, dict):
            return Rejection("", f"a record must be a JSON object, not {type(record).__name__}", "not_object")
        try:
            self._check(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            return Rejection(_field_of(exc, record, self._required), exc.message, f"schema_{exc.rule}")
        return self._check_timestamps(record)

    def _check_timestamps(self, record: dict) -> Rejection | None:
        now = self._clock()
        for name in self._timestamp_fields:
            value = record.get(name)
            if value is None:
                continue
            try:
                seconds = parse_rfc3339(value).timestamp()
            except ValueError as exc:
                return Rejection(name, f"data.{name} is not a valid RFC 3339 time: {exc}", "bad_timestamp")
            if seconds > now + self.skew.max_future:
                return Rejection(name, f"data.{name} is {seconds - now:.0f}s in the future", "timestamp_skew")
            if seconds < now - self.skew.max_past:
                return Rejection(name, f"data.{name} is {now - seconds:.0f}s in the past", "timestamp_skew")
        return None

    def normalize(self, record: dict, record_id: str, tenant: str, source: str, received_us: int) -> dict:
        """A valid record as a row of the record layout (timestamps as UTC microseconds)."""
        row: dict[str, Any] = {}
        for name in self._declared:
            value = record.get(name)
            if value is not None and name in self._timestamp_fields:
                value = to_epoch_us(parse_rfc3339(value))
            row[name] = value
        extra = {k: v for k, v in record.items() if k not in row}
        row.update(record_id=record_id, tenant=tenant, source=source, received_at=received_us,
                   attributes=orjson.dumps(extra).decode() if extra else None)
        return row


def parse_rfc3339(value: str) -> datetime:
    """An aware datetime from an RFC 3339 string (``Z`` or an offset required)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone offset")
    return parsed


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exact."""
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
