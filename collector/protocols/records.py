"""Records in the native shape built by a protocol decoder, and the batch they make.

A protocol decoder hands each record over in three parts: the declared fields (``timestamp``,
``level``, ``service``, ``message`` and any optional field the schema declares), the record's own
attributes, and the attributes it shares with the other records of its group (an OTLP resource and
scope, a Loki stream), serialized once per group. :class:`NativeRecords` collects them and makes
the batch:

- **fast path** (:meth:`NativeRecords.batch`): when every record decoded cleanly, the declared
  fields become Arrow columns and go through the columnar validator's checks
  (:meth:`~logwarden.collector.columnar.ColumnarValidator.check`: enums, lengths, bounds,
  RFC 3339 timestamps, clock skew), the field-count and depth limits are checked, and the batch is
  made without a Python dict per row. The JSON line of each record (what the write-ahead log
  keeps) and its ``attributes`` text are the same bytes the per-record path makes from it, so a
  recovery from the write-ahead log gives the same rows;
- **per-record path**: any doubt (a record that did not decode, a value of the wrong type, a
  check that fails) and the whole body goes record by record through
  :meth:`~logwarden.collector.batch.BatchDecoder.records`, which names each rejected record and
  its field; the rejected ones keep their original bytes for the dead-letter store.

Attribute names are kept apart from the declared fields: an attribute named like an optional
declared field (``user_id``...) fills that field when its type fits, and any other clash with a
declared or reserved name is kept under ``attributes.<name>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import itemgetter
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.batch import _merged as merged_attributes
from logwarden.collector.decoding import RawRecord
from logwarden.collector.validation import _depth_exceeds
from logwarden.common.records import load_log_schema

#: The service of a record whose sender names none (as OpenTelemetry SDKs say).
UNKNOWN_SERVICE = "unknown_service"
#: Prefix of an attribute whose name clashes with a declared or reserved name.
CLASH_PREFIX = "attributes."
_ARROW_TYPES = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}
_EMPTY = b"{}"
#: The fields every record of a protocol decoder has.
_USUAL = frozenset(("timestamp", "level", "service", "message"))


def join_objects(first: bytes, second: bytes) -> bytes:
    """The JSON text of two objects' members in one object (``{"a":1}`` + ``{"b":2}``)."""
    if second == _EMPTY:
        return first
    if first == _EMPTY:
        return second
    return first[:-1] + b"," + second[1:]


@dataclass(frozen=True)
class Shared:
    """Attributes shared by a group of records, with their JSON text (serialized once)."""

    fields: dict[str, Any]
    text: bytes = _EMPTY
    nested: bool = False

    @classmethod
    def of(cls, fields: dict[str, Any]) -> "Shared":
        """The shared attributes ``fields`` (their JSON text computed here)."""
        return cls(fields, orjson.dumps(fields), any(isinstance(v, (dict, list)) for v in fields.values()))


NO_SHARED = Shared({}, _EMPTY)


class Schema:
    """What a decoder needs of the log schema: the declared fields and how attributes may fill them."""

    def __init__(self, log_schema: dict[str, Any] | None = None, reserved: Iterable[str] = ()) -> None:
        log_schema = log_schema or load_log_schema()
        properties = log_schema.get("properties", {})
        required = set(log_schema.get("required", ()))
        self.declared = tuple(properties)
        #: optional declared fields an attribute of the same name may fill: name -> JSON Schema type
        self.fillable = {
            name: spec.get("type") for name, spec in properties.items() if name not in required
        }
        self.reserved = frozenset(self.declared) | frozenset(reserved)

    def place(
        self, name: str, value: Any, declared: dict[str, Any], extras: dict[str, Any], taken: frozenset[str] = frozenset()
    ) -> None:
        """Put attribute ``name`` into ``declared`` (an optional declared field whose type fits) or ``extras``
        (under ``attributes.<name>`` when it clashes with a declared, reserved or ``taken`` name)."""
        if name in self.reserved or name in taken:
            kind = self.fillable.get(name)
            if kind is not None and name not in declared and _fits(kind, value):
                declared[name] = value
                return
            name = CLASH_PREFIX + name
        extras[name] = value


def _fits(kind: str | None, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return False


_SECOND_CACHE: dict[int, str] = {}


def rfc3339_of_us(micros: int) -> str:
    """``2026-11-22T10:00:00.123456Z`` for microseconds since the epoch (UTC)."""
    seconds, fraction = divmod(micros, 1_000_000)
    prefix = _SECOND_CACHE.get(seconds)
    if prefix is None:
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        prefix = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _SECOND_CACHE[seconds] = prefix
    return f"{prefix}.{fraction:06d}Z"


def now_us() -> int:
    """The current time in microseconds since the epoch."""
    return int(datetime.now(timezone.utc).timestamp() * 1_000_000)


@dataclass
class NativeRecords:
    """The records of one body, in the native shape, on their way to a batch."""

    declared: list[dict[str, Any]] = field(default_factory=list)
    extras: list[dict[str, Any]] = field(default_factory=list)
    shared: list[Shared] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)  # what ``raw_of`` turns into the original bytes
    errors: list[str | None] = field(default_factory=list)
    nested: list[bool] = field(default_factory=list)
    clean: bool = True
    #: the declared fields some record has beyond the usual four (their columns are not all null)
    optional: set[str] = field(default_factory=set)

    def add(
        self,
        declared: dict[str, Any],
        extras: dict[str, Any],
        shared: Shared,
        source: Any,
        nested: bool = False,
    ) -> None:
        """One decoded record: declared fields, own attributes, shared attributes, its source."""
        self.declared.append(declared)
        self.extras.append(extras)
        self.shared.append(shared)
        self.sources.append(source)
        self.errors.append(None)
        self.nested.append(nested or shared.nested)
        if len(declared) > 4:
            self.optional.update(declared)

    def add_error(self, error: str, source: Any) -> None:
        """A record that could not be decoded: it will be rejected, the others kept."""
        self.declared.append({})
        self.extras.append({})
        self.shared.append(NO_SHARED)
        self.sources.append(source)
        self.errors.append(error)
        self.nested.append(False)
        self.clean = False

    def __len__(self) -> int:
        return len(self.declared)

    # the per-record path ------------------------------------------------------------------------
    def raw_records(self, raw_of: Callable[[Any], bytes]) -> list[RawRecord]:
        """The records as :class:`RawRecord` objects: value, JSON line, original bytes, or the error."""
        records = []
        for index, (declared, extras, shared, source, error) in enumerate(
            zip(self.declared, self.extras, self.shared, self.sources, self.errors)
        ):
            raw = raw_of(source)
            if error is not None:
                records.append(RawRecord(index, raw, error=error))
                continue
            try:
                line, _ = _texts(declared, extras, shared)
            except (TypeError, orjson.JSONEncodeError) as exc:
                records.append(RawRecord(index, raw, error=f"cannot encode the record: {exc}"))
                continue
            records.append(RawRecord(index, raw, {**declared, **extras, **shared.fields}, line=line))
        return records

    # the batch ----------------------------------------------------------------------------------
    def batch(self, decoder: BatchDecoder, raw_of: Callable[[Any], bytes], skew: bool = True) -> DecodedBatch:
        """The validated batch: columnar when every record is clean and passes, else record by record."""
        fast = self.fast_batch(decoder, skew) if self.clean and self.declared else None
        if fast is not None:
            return fast
        return decoder.records(self.raw_records(raw_of), skew=skew)

    def fast_batch(self, decoder: BatchDecoder, skew: bool = True) -> DecodedBatch | None:
        """The batch built column by column, or None when any record needs the per-record path."""
        if decoder.columnar is None:
            return None
        validator = decoder.validator
        max_fields = validator.limits.max_fields
        max_depth = validator.limits.max_depth
        lines: list[bytes] = []
        attributes: list[str | None] = []
        try:
            for declared, extras, shared, nested in zip(self.declared, self.extras, self.shared, self.nested):
                if len(declared) + len(extras) + len(shared.fields) > max_fields:
                    return None
                if nested and _depth_exceeds(list(extras.values()) + list(shared.fields.values()), max_depth):
                    return None
                if shared.fields and extras and not extras.keys().isdisjoint(shared.fields):
                    return None  # one name twice in the line: the per-record path keeps the last
                line, extra_text = _texts(declared, extras, shared)
                lines.append(line)
                attributes.append(None if extra_text == _EMPTY else extra_text.decode())
            count = len(self.declared)
            columns: dict[str, list[Any]] = {}
            for name in _USUAL | self.optional:
                if name in _USUAL and name not in self.optional:
                    columns[name] = list(map(itemgetter(name), self.declared))
                else:
                    columns[name] = [declared.get(name) for declared in self.declared]
        except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError):
            return None
        return columns_batch(decoder, count, columns, attributes, b"\n".join(lines) + b"\n", skew)


def columns_batch(
    decoder: BatchDecoder,
    count: int,
    columns: dict[str, list[Any]],
    attributes: list[str | None],
    payload: bytes,
    skew: bool = True,
    merge: bool | str = False,
) -> DecodedBatch | None:
    """The validated batch of ``count`` records given column by column, or None when any record needs the
    per-record path (a value of the wrong type, a check that fails, a level the checks would normalize).

    ``columns`` holds the declared fields some record has (``None`` where a record lacks it; the usual four
    always), ``attributes`` each record's attributes as JSON text (None for none), ``payload`` the records'
    NDJSON lines, in order: what the write-ahead log keeps. The compiled decoders call this too.
    ``merge``: attributes the checks add (a normalized level's ``level_original``) are merged into
    ``attributes`` as :meth:`~logwarden.collector.batch.BatchDecoder.mapped` merges them, instead of
    giving None (``"absent"``: the attributes are objects as orjson writes them, none with a
    ``level_original`` member; see :func:`merged_column`).
    """
    columnar = decoder.columnar
    if columnar is None:
        return None
    arrays = []
    names = []
    try:
        for rule in columnar.rules:
            kind = _ARROW_TYPES[rule.kind]
            values = columns.get(rule.name)
            arrays.append(pa.nulls(count, kind) if values is None else pa.array(values, kind))
            names.append(rule.name)
    except (TypeError, ValueError, OverflowError, pa.ArrowException):
        return None
    table = columnar.check(pa.Table.from_arrays(arrays, names=names), decoder.validator.clock() if skew else None)
    if table is None:
        return None
    added = table.column("attributes")
    if added.null_count != table.num_rows:
        if not merge:
            return None  # the checks changed attributes (a level was normalized): let the per-record path say
        attributes = merged_column(attributes, added.combine_chunks(), absent=merge == "absent")
    table = table.set_column(
        table.num_columns - 1, columnar.data_schema.field("attributes"), pa.array(attributes, pa.string())
    )
    if table.schema != decoder.data_schema:
        table = table.cast(decoder.data_schema)
    return DecodedBatch(table, payload, fast=True)


def merged_column(mine: list[str | None] | pa.Array, added: pa.Array, absent: bool = False) -> pa.Array:
    """The attributes ``mine`` merged with those the columnar check ``added``, as ``BatchDecoder.mapped``
    merges them: column-wise where the added text is one key the record does not have (appended), the
    other rows as ``mapped`` does them. ``absent``: the caller vouches that ``mine`` are objects as orjson
    writes them, none with a top-level key the check adds (then a key found deeper is no clash)."""
    ours = mine if isinstance(mine, pa.Array) else pa.array(mine, pa.string())
    encoded = added.dictionary_encode()
    keys = []
    for text in encoded.dictionary.to_pylist():  # the few distinct texts the check adds
        one = text.startswith('{"') and text.count('":') == 1
        keys.append(text[1:text.index('":') + 1] if one else None)
    key = pc.take(pa.array(keys, pa.string()), encoded.indices)
    taken = pc.is_null(key)
    if not absent:
        for name in set(keys) - {None}:
            taken = pc.or_(taken, pc.and_(pc.equal(key, name), pc.match_substring(ours, name)))
    both = pc.and_(pc.is_valid(added), pc.is_valid(ours))
    simple = pc.fill_null(pc.and_(both, pc.invert(taken)), False)
    joined = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(ours, 0, -1), pc.utf8_slice_codeunits(added, 1), ","
    )
    merged = pc.if_else(pc.is_valid(added), pc.if_else(pc.is_valid(ours), joined, added), ours)
    hard = pc.fill_null(pc.and_(both, pc.invert(simple)), False)
    if pc.any(hard).as_py():
        rows = pc.indices_nonzero(hard)
        slow = merged_attributes(ours.take(rows).to_pylist(), added.take(rows).to_pylist())
        merged = pc.replace_with_mask(merged, hard, pa.array(slow, pa.string()))
    return merged


def _texts(declared: dict[str, Any], extras: dict[str, Any], shared: Shared) -> tuple[bytes, bytes]:
    """The JSON line of a record and the JSON text of its attributes (own, then shared)."""
    extra_text = join_objects(orjson.dumps(extras), shared.text) if extras else shared.text
    return join_objects(orjson.dumps(declared), extra_text), extra_text
