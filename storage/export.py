"""Write search results as CSV, JSON lines or Parquet, streaming batch by batch."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("csv", "json", "parquet")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/x-ndjson",
                 "parquet": "application/vnd.apache.parquet"}


def json_lines(batch: pa.RecordBatch) -> bytes:
    """One JSON object per row (times as RFC 3339 UTC), each followed by a newline."""
    option = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_APPEND_NEWLINE
    return b"".join(orjson.dumps(row, option=option) for row in batch.to_pylist())


def write_stream(reader: pa.RecordBatchReader, fmt: str, sink: BinaryIO) -> int:
    """Write every batch of ``reader`` to the binary stream ``sink`` in ``fmt``; returns the rows written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    rows = 0
    if fmt == "json":
        for batch in reader:
            sink.write(json_lines(batch))
            rows += batch.num_rows
        return rows
    if fmt == "csv":
        with pacsv.CSVWriter(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        return rows
    with pq.ParquetWriter(sink, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def write_file(reader: pa.RecordBatchReader, fmt: str, path: Path) -> int:
    """Write the results to ``path`` atomically (a temporary name, then a rename); returns the rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            rows = write_stream(reader, fmt, handle)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def format_of(path: Path | None, default: str = "json") -> str:
    """The format a file name implies (``.csv``, ``.jsonl``/``.ndjson``/``.json``, ``.parquet``)."""
    suffix = path.suffix.lower() if path else ""
    return {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".ndjson": "json",
            ".json": "json"}.get(suffix, default)
