"""Per-record validation and normalization against ``schemas/log_schema.yaml``.

This is the path every record can take: the schema is compiled once with fastjsonschema,
with a ``date-time`` format check that accepts exactly what jsonschema's reference check
accepts (see ``collector.timestamps``). The columnar fast path (``collector.columnar``)
handles clean NDJSON batches without per-record Python work; any batch it is unsure of
comes here, which names the record and the field at fault.

Before the schema is checked, the level is normalized (``normalized_level``): the schema's five
words are the stored form, and a level sent as ``warn``, ``Error``, a syslog severity number and
so on is mapped to one of them by :func:`logwarden.formats.levels.normalize`, the value as sent
kept in the ``level_original`` attribute. The columnar fast path applies the same mapping.

Beyond the schema, a record must respect the collector's limits (number of fields, nesting
depth) and its timestamps must lie within the configured clock skew. A valid record is
normalized into a row of the record layout: timestamps in UTC microseconds, declared fields
as columns, everything else as a JSON ``attributes`` string.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import fastjsonschema
import orjson

from logwarden.collector.timestamps import is_rfc3339, to_epoch_us
from logwarden.common.records import load_log_schema
from logwarden.formats.levels import CANONICAL, LEVEL_ORIGINAL, from_otel, normalize

LEVEL = "level"
_MISSING = object()


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

    @classmethod
    def unlimited(cls) -> "SkewLimits":
        """No skew check (used when recovering records that were already accepted)."""
        return cls(max_future=float("inf"), max_past=float("inf"))


@dataclass(frozen=True)
class RecordLimits:
    """Structural limits of one record, on top of the schema."""

    max_fields: int = 1000
    max_depth: int = 32


def _field_of(exc: fastjsonschema.JsonSchemaValueException, record: dict, required: tuple[str, ...]) -> str:
    if exc.rule == "required":
        return next((name for name in required if name not in record), "")
    path = [str(p) for p in (exc.path or [])[1:]]
    return ".".join(path)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` containers (iterative, stops early)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def normalized_level(record: Any) -> Any:
    """``record`` with its level as one of the five stored words, or ``record`` itself when there is
    nothing to change (the level is already one of them, names no level, or the record is no object).

    The value as sent is kept as the ``level_original`` attribute (replacing one the record had).
    A record without ``level`` takes it from OpenTelemetry's ``severity_number`` (1..24) or
    ``severity_text``, which stay as attributes.
    """
    if record.__class__ is not dict:
        return record
    level = record.get(LEVEL, _MISSING)
    if level.__class__ is str and level in CANONICAL:
        return record
    if level is _MISSING:
        number = record.get("severity_number", record.get("severityNumber"))
        if number.__class__ is int and 1 <= number <= 24:
            return {**record, LEVEL: from_otel(number)}
        text = record.get("severity_text", record.get("severityText"))
        word = normalize(text) if isinstance(text, str) else None
        return record if word is None else {**record, LEVEL: word}
    word = normalize(level)
    if word is None:
        return record
    changed = dict(record)
    changed[LEVEL] = word
    changed[LEVEL_ORIGINAL] = level
    return changed


class RecordValidator:
    """Checks records against the log schema and turns valid ones into normalized rows."""

    def __init__(
        self,
        log_schema: dict[str, Any] | None = None,
        skew: SkewLimits | None = None,
        clock: Callable[[], float] = time.time,
        limits: RecordLimits | None = None,
    ) -> None:
        self.schema = log_schema or load_log_schema()
        self._check = fastjsonschema.compile(self.schema, formats={"date-time": is_rfc3339})
        self._required = tuple(self.schema.get("required", ()))
        self.declared = tuple(self.schema.get("properties", {}))
        self._declared_set = frozenset(self.declared)
        self.timestamp_fields = tuple(
            name
            for name, spec in self.schema.get("properties", {}).items()
            if spec.get("format") == "date-time"
        )
        self.skew = skew or SkewLimits()
        self.limits = limits or RecordLimits()
        self.clock = clock

    def check_schema(self, record: Any) -> Rejection | None:
        """None when ``record`` satisfies the log schema, else the first problem found."""
        if not isinstance(record, dict):
            return Rejection("", f"a record must be a JSON object, not {type(record).__name__}", "not_object")
        try:
            self._check(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            return Rejection(_field_of(exc, record, self._required), exc.message, f"schema_{exc.rule}")
        return None

    def check(self, record: Any, now: float | None = None, skew: bool = True) -> Rejection | None:
        """None when ``record`` is acceptable (schema, limits, clock skew if ``skew``), else the problem."""
        return self.accept(record, now, skew)[1]

    def accept(
        self, record: Any, now: float | None = None, skew: bool = True
    ) -> tuple[dict[str, Any] | None, Rejection | None]:
        """The data row of ``record`` (declared columns, timestamps in UTC microseconds, ``attributes``)
        and None, or None and the first problem found. The level is normalized first
        (``normalized_level``)."""
        record = normalized_level(record)
        rejection = self.check_schema(record)
        if rejection is not None:
            return None, rejection
        if len(record) > self.limits.max_fields:
            return None, Rejection(
                "",
                f"record has {len(record)} fields, more than the limit of " f"{self.limits.max_fields}",
                "too_many_fields",
            )
        declared = self._declared_set
        extra = {key: value for key, value in record.items() if key not in declared}
        if extra and _depth_exceeds(list(extra.values()), self.limits.max_depth):
            return None, Rejection("", f"record nests deeper than {self.limits.max_depth} levels", "too_deep")
        row = {name: record.get(name) for name in self.declared}
        now = self.clock() if now is None else now
        for name in self.timestamp_fields:
            value = row[name]
            if value is None:
                continue
            micros = row[name] = to_epoch_us(value)
            if skew:
                seconds = micros / 1_000_000
                if seconds > now + self.skew.max_future:
                    return None, Rejection(
                        name,
                        f"data.{name} is {seconds - now:.0f}s in the future "
                        f"(limit {self.skew.max_future:.0f}s)",
                        "timestamp_skew",
                    )
                if seconds < now - self.skew.max_past:
                    return None, Rejection(
                        name,
                        f"data.{name} is {now - seconds:.0f}s in the past "
                        f"(limit {self.skew.max_past:.0f}s)",
                        "timestamp_skew",
                    )
        row["attributes"] = orjson.dumps(extra).decode() if extra else None
        return row, None

    def data_row(self, record: dict) -> dict[str, Any]:
        """The declared columns (timestamps as UTC microseconds) and ``attributes`` of a valid record."""
        row, rejection = self.accept(record, skew=False)
        if rejection is not None:
            raise ValueError(f"not a valid record: {rejection.error}")
        return row

    def normalize(self, record: dict, record_id: str, tenant: str, source: str, received_us: int) -> dict:
        """A valid record as a full row of the record layout, system columns included."""
        row = self.data_row(record)
        row.update(record_id=record_id, tenant=tenant, source=source, received_at=received_us)
        return row
