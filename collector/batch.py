"""Decode a body or a list of records into one batch: accepted rows as an Arrow table, the JSON text
of the accepted records (for the write-ahead log), and the rejections.

Clean NDJSON takes the columnar fast path; anything it cannot vouch for is decoded and checked
record by record, so that each rejection names the record and the field at fault.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from logwarden.collector.columnar import ColumnarValidator
from logwarden.collector.decoding import BodyError, RawRecord, decompress, is_json_array, split_json_array, split_ndjson
from logwarden.collector.validation import Rejection, RecordValidator
from logwarden.collector.wal import payload_crc
from logwarden.common.records import record_schema

# Python types a declared field of each JSON Schema type may hold on the fast path of ``mapped``.
_FAST_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset((str, type(None))),
    "number": frozenset((int, float, type(None))),
    "integer": frozenset((int, type(None))),
    "boolean": frozenset((bool, type(None))),
}
# The Arrow types the columnar validator checks, per JSON Schema type (as its JSON reader produces them).
_PARSE_TYPES = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}


def data_schema_of(log_schema: dict) -> pa.Schema:
    """The columns a batch carries before the system columns: the declared fields and ``attributes``."""
    full = record_schema(log_schema)
    names = list(log_schema.get("properties", {})) + ["attributes"]
    return pa.schema([full.field(name) for name in names])


@dataclass
class DecodedBatch:
    """The outcome of decoding one body or chunk."""

    table: pa.Table
    payload: bytes  # NDJSON of the accepted records, in table order
    rejected: list[tuple[RawRecord, Rejection]] = field(default_factory=list)
    fast: bool = False
    payload_crc: int | None = None  # the payload's part of its write-ahead CRC, computed with the batch

    def __post_init__(self) -> None:
        if self.payload_crc is None:
            self.payload_crc = payload_crc(self.payload)

    @property
    def accepted(self) -> int:
        """How many records were accepted."""
        return self.table.num_rows


class BatchDecoder:
    """Validation and normalization of whole batches, fast path first."""

    def __init__(
        self, validator: RecordValidator, max_line_bytes: int, max_body_bytes: int, columnar: bool = True
    ) -> None:
        self.validator = validator
        self.max_line_bytes = max_line_bytes
        self.max_body_bytes = max_body_bytes
        self.columnar = ColumnarValidator.compile(validator.schema, validator.skew) if columnar else None
        self.data_schema = data_schema_of(validator.schema)
        self._declared = frozenset(validator.declared)

    def body(self, body: bytes, content_encoding: str | None, content_type: str | None) -> DecodedBatch:
        """Decode an HTTP request body (raises BodyError, or OverflowError past the size limit)."""
        return self.decoded_body(decompress(body, content_encoding, self.max_body_bytes), content_type)

    def decoded_body(self, data: bytes, content_type: str | None) -> DecodedBatch:
        """Decode an uncompressed HTTP request body.

        ``application/x-ndjson`` is read line by line. Otherwise a body starting with ``[`` is read
        as a JSON array and one JSON object sent as ``application/json`` as one record; a body that
        is not one JSON document after all is read line by line too, so that no valid line is lost.
        """
        content_type = (content_type or "").lower()
        if "ndjson" in content_type:
            return self.ndjson(data)
        if is_json_array(data):
            try:
                return self.records(list(split_json_array(data)))
            except BodyError:
                return self.ndjson(data)
        if "application/json" in content_type and len(data) <= self.max_line_bytes:
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                value = None  # not one document: NDJSON labelled application/json, read it line by line
            if isinstance(value, dict):
                return self.records([RawRecord(0, orjson.dumps(value), value)])
        return self.ndjson(data)

    def ndjson(self, data: bytes, offset: int = 0, skew: bool = True) -> DecodedBatch:
        """Decode NDJSON, numbering records from ``offset``; ``skew=False`` skips the clock check."""
        if self.columnar is not None:
            now = self.validator.clock() if skew else None
            table = self.columnar.decode(data, now, self.max_line_bytes)
            if table is not None:
                return DecodedBatch(table, data if data.endswith(b"\n") else data + b"\n", fast=True)
        return self.records(list(split_ndjson(data, self.max_line_bytes, offset)), skew=skew)

    def records(self, records: list[RawRecord], skew: bool = True) -> DecodedBatch:
        """Check and normalize ``records`` one by one."""
        rows: list[dict] = []
        lines: list[bytes] = []
        rejected: list[tuple[RawRecord, Rejection]] = []
        now = self.validator.clock()
        for record in records:
            if record.error is not None:
                rejected.append((record, Rejection("", record.error, "malformed")))
                continue
            row, problem = self.validator.accept(record.value, now, skew=skew)
            if problem is not None:
                rejected.append((record, problem))
                continue
            rows.append(row)
            lines.append(record.json_line)
        try:
            table = pa.Table.from_pylist(rows, schema=self.data_schema)
        except (pa.ArrowInvalid, OverflowError):  # an integer a float column cannot hold exactly (> 2**53)
            table = pa.Table.from_pylist([self._as_floats(row) for row in rows], schema=self.data_schema)
        payload = b"\n".join(lines) + b"\n" if lines else b""
        return DecodedBatch(table, payload, rejected)

    def _as_floats(self, row: dict) -> dict:
        """``row`` with the integers of its float columns as floats (the nearest double, as JSON readers do)."""
        for name in self._float_fields:
            value = row.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                row[name] = float(value)
        return row

    @functools.cached_property
    def _float_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.data_schema if pa.types.is_floating(f.type))

    def mapped(self, records: list[RawRecord], skew: bool = True) -> DecodedBatch:
        """Check and normalize ``records`` whose values are decoded objects (what an ingest protocol
        builds), with the same outcome as :meth:`records` but the declared fields checked as Arrow
        columns at once by the columnar validator.

        A record may carry ``attributes_text``: the JSON text of its fields the schema does not declare,
        as ``orjson.dumps`` writes them in the record's order (a protocol that serialized them already
        saves doing it twice).

        Only the records the fast path can vouch for take it: a decoding error, too many fields,
        attributes that may nest too deep, a declared field of the wrong Python type or explicitly
        null send a record to :meth:`records`, which names the field at fault; when the columnar
        check is unsure of the rest, every record goes there. The accepted records of the fast
        path come first in the table, then those of the per-record path.
        """
        if self.columnar is None or not records:
            return self.records(records, skew)
        limits = self.validator.limits
        declared = self._declared
        fast: list[RawRecord] = []
        attributes: list[str | None] = []
        slow: list[RawRecord] = []
        unwritable: list[tuple[RawRecord, Rejection]] = []
        present = 0  # declared fields present in the fast records
        for record in records:
            value = record.value
            if record.error is not None or value.__class__ is not dict or len(value) >= limits.max_fields:
                slow.append(record)
                continue
            text = getattr(record, "attributes_text", None)
            if text is not None:  # serialized by the protocol already
                present += len(value.keys() & declared)
            else:
                extra = {key: item for key, item in value.items() if key not in declared}
                present += len(value) - len(extra)
                if extra:
                    try:
                        text = orjson.dumps(extra).decode()
                    except TypeError as exc:
                        present -= len(value) - len(extra)
                        why = Rejection("", f"record cannot be written as JSON: {exc}", "malformed")
                        unwritable.append((record, why))
                        continue
            if text is not None and text.count("{") + text.count("[") > limits.max_depth:
                present -= len(value.keys() & declared)
                slow.append(record)  # may nest too deep: the per-record path measures it
                continue
            fast.append(record)
            attributes.append(text)
        table = self._fast_table(fast, present, slow, attributes) if fast else None
        checked = None
        if table is not None:
            checked = self.columnar.check(table, self.validator.clock() if skew else None)
        if fast and checked is None:  # the columnar check is unsure: every record takes the per-record path
            unwritable_ids = {id(record) for record, _ in unwritable}
            batch = self.records([record for record in records if id(record) not in unwritable_ids], skew)
            return self._with_rejections(batch, unwritable)
        parts: list[DecodedBatch] = []
        if fast:
            column = checked.schema.get_field_index("attributes")
            extra_attributes = checked.column(column)
            if extra_attributes.null_count != len(extra_attributes):  # e.g. levels normalized: merge
                attributes = _merged(attributes, extra_attributes.to_pylist())
            checked = checked.set_column(column, checked.schema.field(column), pa.array(attributes, pa.string()))
            payload = b"\n".join([record.json_line for record in fast]) + b"\n"
            parts.append(DecodedBatch(checked, payload, fast=True))
        if slow:
            parts.append(self.records(slow, skew))
        batch = _concat(parts) if parts else self.records([], skew)
        return self._with_rejections(batch, unwritable)

    def _fast_table(
        self, fast: list[RawRecord], present: int, slow: list[RawRecord], attributes: list[str | None]
    ) -> pa.Table | None:
        """The declared columns of ``fast`` as parsed by the columnar validator (types as sent), moving
        the records with a field of the wrong type or an explicit null to ``slow``; None when Arrow
        cannot hold a value (the whole batch then takes the per-record path)."""
        while True:
            values = [record.value for record in fast]
            columns: dict[str, list[Any]] = {}
            bad: set[int] = set()
            for rule in self.columnar.rules:
                column = [value.get(rule.name) for value in values]
                allowed = _FAST_TYPES[rule.kind]
                if not set(map(type, column)) <= allowed:
                    bad.update(i for i, item in enumerate(column) if type(item) not in allowed)
                columns[rule.name] = column
            if not bad:
                try:
                    arrays = [
                        pa.array(columns[rule.name], _PARSE_TYPES[rule.kind]) for rule in self.columnar.rules
                    ]
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                    return None
                non_null = sum(len(array) - array.null_count for array in arrays)
                if non_null == present:
                    return pa.Table.from_arrays(arrays, names=[rule.name for rule in self.columnar.rules])
                # some declared field is an explicit null: the schema refuses it, the per-record path says so
                bad = {
                    i for i, value in enumerate(values) if any(value.get(name, 0) is None for name in self._declared)
                }
                if not bad:
                    return None
            keep = [i for i in range(len(fast)) if i not in bad]
            slow.extend(fast[i] for i in sorted(bad))
            fast[:] = [fast[i] for i in keep]
            attributes[:] = [attributes[i] for i in keep]
            present = sum(sum(1 for key in record.value if key in self._declared) for record in fast)

    @staticmethod
    def _with_rejections(batch: DecodedBatch, rejected: list[tuple[RawRecord, Rejection]]) -> DecodedBatch:
        if rejected:
            batch.rejected.extend(rejected)
        return batch


def _merged(mine: list[str | None], theirs: list[str | None]) -> list[str | None]:
    """Attributes of the records merged with those the columnar check added (its keys win, in place)."""
    out = list(mine)
    for i, added in enumerate(theirs):
        if added is None:
            continue
        text = out[i]
        if text is None:
            out[i] = added
        elif added.startswith('{"') and added[1:added.index('":') + 1] not in text and added.count('":') == 1:
            out[i] = f"{text[:-1]},{added[1:]}"  # one key the record does not have: appended, as a dict would
        else:
            merged = orjson.loads(text)
            merged.update(orjson.loads(added))
            out[i] = orjson.dumps(merged).decode()
    return out


def _concat(parts: list[DecodedBatch]) -> DecodedBatch:
    if len(parts) == 1:
        return parts[0]
    return DecodedBatch(
        pa.concat_tables([part.table for part in parts]),
        b"".join(part.payload for part in parts),
        [item for part in parts for item in part.rejected],
        fast=any(part.fast for part in parts),
    )
