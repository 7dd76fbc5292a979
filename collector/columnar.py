"""The columnar fast path: validate and normalize a whole NDJSON body with Arrow, no per-record Python.

``ColumnarValidator.compile(schema)`` turns the log schema into vectorized checks over the
columns that ``pyarrow.json.read_json`` produces (types, ``required``, ``enum``, string
lengths, numeric bounds, RFC 3339 date-times, clock skew). It is deliberately conservative:
it either accepts every record of the body, with values equal to what the per-record path
would produce, or answers None and the body goes to the per-record path, which names the
record and the field at fault. A body is refused here when anything is unusual:

- a field the schema does not declare (extra attributes, duplicate keys, deep nesting all fail
  fast in Arrow's "unexpected field" mode, so hostile records cost nothing here);
- a JSON ``null`` literal (Arrow cannot tell it from an absent field, and a top-level ``null``
  crashes pyarrow 26's reader);
- invalid UTF-8, blank lines or several objects on one line (the row count must equal the line count);
- a value failing any check, NaN or infinite numbers, timestamps outside the fast RFC 3339 subset.

Levels are normalized as on the per-record path (``validation.normalized_level``): a level column
holding only the five stored words costs one ``is_in``; otherwise its distinct values are mapped
through :func:`logwarden.formats.levels.normalize` (dictionary-encoded, so a body of a million
``warn`` costs one lookup) and the rows whose level changed get ``{"level_original": ...}`` as their
attributes. A value that names no level sends the body to the per-record path.

The property test in ``tests/collector`` shows the two paths and jsonschema agree.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from logwarden.collector.timestamps import ARROW_RFC3339
from logwarden.collector.validation import LEVEL, SkewLimits
from logwarden.common.records import TIMESTAMP, record_schema
from logwarden.formats.levels import LEVEL_ORIGINAL, normalize

log = logging.getLogger(__name__)

_ANNOTATIONS = {"description", "title", "examples", "default", "$comment", "deprecated"}
_FIELD_KEYWORDS = _ANNOTATIONS | {
    "type",
    "enum",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "format",
}
_TOP_KEYWORDS = _ANNOTATIONS | {"$schema", "$id", "type", "required", "properties", "additionalProperties"}
_ARROW_TYPES = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}
# A null literal anywhere a value may start (Arrow also crashes on a top-level null).
_NULL_LITERAL = re.compile(rb"(?:^|[:\[,\n])[ \t\r\n]*null")


@dataclass(frozen=True)
class FieldRule:
    """The checks of one declared property."""

    name: str
    kind: str  # JSON Schema type
    required: bool
    spec: dict[str, Any]

    @property
    def is_datetime(self) -> bool:
        """Whether the property is an RFC 3339 date-time string."""
        return self.kind == "string" and self.spec.get("format") == "date-time"


class ColumnarValidator:
    """Vectorized validation and normalization of clean NDJSON bodies."""

    def __init__(self, rules: tuple[FieldRule, ...], skew: SkewLimits) -> None:
        self.rules = rules
        self.skew = skew
        self._parse_schema = pa.schema([(rule.name, _ARROW_TYPES[rule.kind]) for rule in rules])
        self._parse_options = pj.ParseOptions(
            explicit_schema=self._parse_schema, unexpected_field_behavior="error"
        )
        self._enums = {
            rule.name: pa.array(rule.spec["enum"], pa.string()) for rule in rules if "enum" in rule.spec
        }
        full = record_schema(
            {
                "properties": {rule.name: rule.spec for rule in rules},
                "required": [rule.name for rule in rules if rule.required],
            }
        )
        self.data_schema = pa.schema([full.field(rule.name) for rule in rules] + [full.field("attributes")])

    @property
    def parse_schema(self) -> pa.Schema:
        """The declared fields with the Arrow types ``parse`` gives them (what ``check`` takes)."""
        return self._parse_schema

    @classmethod
    def compile(cls, schema: dict[str, Any], skew: SkewLimits | None = None) -> "ColumnarValidator | None":
        """The fast path for ``schema``, or None when it uses keywords the fast path does not handle."""
        unsupported = set(schema) - _TOP_KEYWORDS
        if schema.get("type") != "object" or unsupported:
            log.warning("columnar validation disabled: schema keywords %s not supported", sorted(unsupported))
            return None
        if schema.get("additionalProperties", True) not in (True, False):
            return None
        required = set(schema.get("required", ()))
        properties = schema.get("properties", {})
        if not required <= set(properties):
            return None
        rules = []
        for name, spec in properties.items():
            kind = spec.get("type")
            if (
                not isinstance(spec, dict)
                or set(spec) - _FIELD_KEYWORDS
                or kind not in _ARROW_TYPES
                or ("format" in spec and (kind, spec["format"]) != ("string", "date-time"))
                or (
                    "enum" in spec and (kind != "string" or not all(isinstance(v, str) for v in spec["enum"]))
                )
            ):
                log.warning("columnar validation disabled: property %r uses unsupported keywords", name)
                return None
            rules.append(FieldRule(name, kind, name in required, spec))
        return cls(tuple(rules), skew or SkewLimits())

    def decode(self, body: bytes, now: float | None, max_line_bytes: int) -> pa.Table | None:
        """The normalized data table (declared columns and ``attributes``) of ``body``, or None.

        ``now`` is the clock for the skew check (None: no skew check).
        """
        parsed = self.parse(body, max_line_bytes)
        return None if parsed is None else self.check(parsed, now)

    def parse(self, body: bytes, max_line_bytes: int) -> pa.Table | None:
        """The declared fields of ``body`` as Arrow columns, or None when the body is not plain."""
        if not body or b"null" in body and _NULL_LITERAL.search(body):
            return None
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        lines = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
        if len(body) > max_line_bytes and max(map(len, body.split(b"\n"))) > max_line_bytes:
            return None
        try:
            table = pj.read_json(
                io.BytesIO(body),
                read_options=pj.ReadOptions(use_threads=False, block_size=len(body) + 1),
                parse_options=self._parse_options,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return table if table.num_rows == lines else None

    def check(self, table: pa.Table, now: float | None) -> pa.Table | None:
        """``table`` (from ``parse``) validated and normalized, or None when any record may be invalid."""
        attributes = None
        try:
            columns = []
            for rule in self.rules:
                column = table.column(rule.name).combine_chunks()
                if rule.name == LEVEL and rule.name in self._enums and rule.kind == "string":
                    column, attributes = self._levels(column)
                columns.append(self._column(rule, column, now))
        except _Unsure:
            return None
        columns.append(pa.nulls(table.num_rows, pa.string()) if attributes is None else attributes)
        return pa.Table.from_arrays(columns, schema=self.data_schema)

    def _levels(self, column: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        """The level column normalized, and the attributes keeping the levels as sent (None: no change)."""
        values = column.drop_null() if column.null_count else column
        if len(values) == 0 or pc.all(pc.is_in(values, value_set=self._enums[LEVEL])).as_py():
            return column, None
        encoded = column.dictionary_encode()
        sent = encoded.dictionary.to_pylist()
        words = [normalize(value) for value in sent]
        if None in words:
            raise _Unsure()  # names no level: the per-record path says which record
        originals = [
            None if word == value else orjson.dumps({LEVEL_ORIGINAL: value}).decode()
            for value, word in zip(sent, words)
        ]
        indices = encoded.indices
        return (
            pc.take(pa.array(words, pa.string()), indices),
            pc.take(pa.array(originals, pa.string()), indices),
        )

    def _column(self, rule: FieldRule, column: pa.Array, now: float | None) -> pa.Array:
        spec = rule.spec
        present = len(column) - column.null_count
        if rule.required and column.null_count:
            raise _Unsure()
        if present == 0:
            return column.cast(self.data_schema.field(rule.name).type)
        values = column.drop_null() if column.null_count else column
        if rule.kind == "string":
            _require(
                pc.all(pc.is_in(values, value_set=self._enums[rule.name]))
                if rule.name in self._enums
                else None
            )
            if "minLength" in spec or "maxLength" in spec:
                _check_lengths(values, spec.get("minLength"), spec.get("maxLength"))
            if rule.is_datetime:
                return self._timestamps(column, values, now)
            return column
        if rule.kind in ("number", "integer"):
            if rule.kind == "number":
                _require(pc.all(pc.is_finite(values)))
            bounds = pc.min_max(values)
            _require_bounds(bounds, spec.get("minimum"), spec.get("maximum"))
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if "exclusiveMinimum" in spec and not low > spec["exclusiveMinimum"]:
                raise _Unsure()
            if "exclusiveMaximum" in spec and not high < spec["exclusiveMaximum"]:
                raise _Unsure()
        return column

    def _timestamps(self, column: pa.Array, values: pa.Array, now: float | None) -> pa.Array:
        _require(pc.all(pc.match_substring_regex(values, ARROW_RFC3339)))
        try:
            stamps = pc.cast(column, TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _Unsure() from None
        if now is not None:
            bounds = pc.min_max(stamps.cast(pa.int64()))
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if high / 1e6 > now + self.skew.max_future or low / 1e6 < now - self.skew.max_past:
                raise _Unsure()
        return stamps


class _Unsure(Exception):
    """The fast path cannot vouch for this body."""


def _require(condition: pa.Scalar | None) -> None:
    if condition is not None and condition.as_py() is not True:
        raise _Unsure()


def _check_lengths(values: pa.Array, low: int | None, high: int | None) -> None:
    """String lengths in code points within bounds; byte lengths (cheap) settle most cases.

    A string of ``b`` bytes has between ``ceil(b / 4)`` and ``b`` code points.
    """
    byte_bounds = pc.min_max(pc.binary_length(values))
    shortest, longest = byte_bounds["min"].as_py(), byte_bounds["max"].as_py()
    sure_high = high is None or longest <= high
    sure_low = low is None or (shortest + 3) // 4 >= low
    if sure_high and sure_low:
        return
    _require_bounds(pc.min_max(pc.utf8_length(values)), low, high)


def _require_bounds(bounds: pa.StructScalar, low: float | None, high: float | None) -> None:
    if low is not None and bounds["min"].as_py() < low:
        raise _Unsure()
    if high is not None and bounds["max"].as_py() > high:
        raise _Unsure()
