"""Decode a body or a list of records into one batch: accepted rows as an Arrow table, the JSON text
of the accepted records (for the write-ahead log), and the rejections.

Clean NDJSON takes the columnar fast path; anything it cannot vouch for is decoded and checked
record by record, so that each rejection names the record and the field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from logwarden.collector.columnar import ColumnarValidator
from logwarden.collector.decoding import BodyError, RawRecord, decompress, is_json_array, split_json_array, split_ndjson
from logwarden.collector.validation import Rejection, RecordValidator
from logwarden.collector.wal import payload_crc
from logwarden.common.records import record_schema


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
        table = pa.Table.from_pylist(rows, schema=self.data_schema)
        payload = b"\n".join(lines) + b"\n" if lines else b""
        return DecodedBatch(table, payload, rejected)
