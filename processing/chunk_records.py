"""A chunk of a log file as validated rows, in one call: the task ``replay`` runs on a Dask worker.

The same validation as the collector (``BatchDecoder``, no clock-skew limit: the point is old data):
native JSON lines take its columnar path, OpenTelemetry JSON its OTLP protocol, plain BSD syslog lines
are parsed as columns (``formats.syslog3164_columns``), and any other line is detected and parsed
record by record (``logwarden.formats``); all of them then checked as a whole.

A record without a time of its own takes the time of the record before it. For records at the start
of a chunk that record is in the previous chunk, which another worker reads: they carry
``UNTIMED`` and the caller, which sees the chunks in order, gives them the time the previous chunk
ended with (:func:`fill_untimed`).
"""
from __future__ import annotations

import functools
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BodyError
from logwarden.collector.decoding import RawRecord as CollectorRecord
from logwarden.collector.protocols.base import ProtocolRequest
from logwarden.collector.protocols.otlp import OtlpLogs
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from logwarden.common.records import TIMESTAMP
from logwarden.formats import detect, parse, syslog3164, syslog3164_columns
from logwarden.formats.files import folded_lines, json_lines
from logwarden.processing.chunks import Chunk, FileKind
from logwarden.processing.sources import file_records, raw_bytes, to_log_record

#: Past this many alternations of plain syslog lines and others, a chunk is read record by record.
MAX_RUNS = 2000
#: The time of a record that has none and no earlier record in its chunk (see the module docstring).
UNTIMED = datetime(1, 1, 1, tzinfo=timezone.utc)
UNTIMED_US = int((UNTIMED - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 1_000_000


@dataclass(frozen=True)
class ChunkOptions:
    """How to read chunks: the format asked for, the collector's limits, the names of unnamed things."""

    format_name: str = "auto"
    default_service: str = "replay"
    max_line_bytes: int = 1 << 20
    limits: RecordLimits = field(default_factory=RecordLimits)
    columnar_text: bool = True  # plain BSD syslog lines as columns (False: every line one by one)


@dataclass(frozen=True)
class RejectedRecord:
    """A record the schema refused, with its original bytes and where it was."""

    raw: bytes
    reason: str
    error: str
    field: str
    number: int  # line (or record ordinal) in the file


@dataclass
class ParsedChunk:
    """The outcome of one chunk: accepted rows (declared columns and ``attributes``) and the rest."""

    table: pa.Table
    rejected: list[RejectedRecord]
    records: int
    formats: Counter
    last_time_us: int | None  # the event time of the chunk's last record with a time of its own
    chunk_number: int = 0
    chunk_bytes: int = 0


@functools.lru_cache(maxsize=4)
def _decoder(max_line_bytes: int, limits: RecordLimits) -> BatchDecoder:
    validator = RecordValidator(skew=SkewLimits.unlimited(), limits=limits)
    return BatchDecoder(validator, max_line_bytes, max_body_bytes=1 << 40)


def parse_chunk(chunk: Chunk, options: ChunkOptions) -> ParsedChunk:
    """Every record of ``chunk`` validated: the rows accepted and the records refused."""
    decoder = _decoder(options.max_line_bytes, options.limits)
    if chunk.kind is FileKind.NATIVE:
        batch = decoder.ndjson(chunk.data, offset=chunk.first_line - 1, skew=False)
        parsed = _outcome(batch, Counter(native=batch.accepted + len(batch.rejected)), number_base=1)
    elif chunk.kind is FileKind.OTLP:
        parsed = _otlp(chunk, decoder)
    elif chunk.kind is FileKind.DOCUMENT:
        parsed = _records(decoder, file_records(Path(chunk.path), options.format_name))
    else:
        parsed = _lines(chunk, options, decoder)
    parsed.chunk_number, parsed.chunk_bytes = chunk.number, len(chunk.data)
    return parsed


def _outcome(batch: DecodedBatch, formats: Counter, number_base: int = 0) -> ParsedChunk:
    rejected = [RejectedRecord(record.raw, why.reason, why.error, why.field, record.index + number_base)
                for record, why in batch.rejected]
    return ParsedChunk(batch.table, rejected, batch.accepted + len(rejected), formats, _last_time(batch.table))


def _otlp(chunk: Chunk, decoder: BatchDecoder) -> ParsedChunk:
    """OTLP JSON: the whole chunk as one body; a chunk with a bad line is read line by line."""
    protocol = OtlpLogs()
    try:
        batch = protocol.decode_batch(_request(chunk.data), decoder)
        return _outcome(batch, Counter(otlp=batch.accepted + len(batch.rejected)))
    except BodyError:
        pass
    parts, letters = [], []
    for offset, line in enumerate(chunk.data.split(b"\n")):
        if not line.strip():
            continue
        try:
            parts.append(protocol.decode_batch(_request(line), decoder))
        except BodyError as exc:
            letters.append(RejectedRecord(line, "malformed", str(exc), "", chunk.first_line + offset))
    tables = [part.table for part in parts] or [decoder.data_schema.empty_table()]
    rejected = [RejectedRecord(record.raw, why.reason, why.error, why.field, chunk.first_line)
                for part in parts for record, why in part.rejected] + letters
    accepted = sum(part.accepted for part in parts)
    table = pa.concat_tables(tables)
    return ParsedChunk(table, rejected, accepted + len(rejected), Counter(otlp=accepted + len(rejected)),
                       _last_time(table))


def _request(body: bytes) -> ProtocolRequest:
    return ProtocolRequest("POST", "/v1/logs", {}, {}, {}, body, "application/json")


def _line_records(data: bytes, first_line: int, options: ChunkOptions, previous: datetime = UNTIMED,
                  json: bool = False):
    """(number, bytes, record, format) of every line record of ``data`` (JSON lines: ``json``), detected and
    parsed one by one; a record without a time takes ``previous``, then the time of the record before it."""
    for raw in (json_lines if json else folded_lines)(io.BytesIO(data)):
        raw = raw._replace(number=raw.number + first_line - 1)
        name = raw.hint or (detect(raw).format if options.format_name == "auto" else options.format_name)
        parsed = parse(raw, name)
        if parsed.timestamp is not None:
            previous = parsed.timestamp
        record = to_log_record(parsed, options.default_service, previous)
        yield raw.number, raw_bytes(raw), record, parsed.format


def _lines(chunk: Chunk, options: ChunkOptions, decoder: BatchDecoder) -> ParsedChunk:
    """Line records: runs of plain BSD syslog lines parsed as columns, the other lines one by one."""
    wanted = chunk.kind is FileKind.LINES and options.columnar_text and options.format_name in ("auto", syslog3164.NAME)
    text = _plain_text(chunk.data) if wanted else None
    if text is None or decoder.columnar is None:
        json = chunk.kind is FileKind.JSON_LINES
        return _records(decoder, _line_records(chunk.data, chunk.first_line, options, json=json))
    lines = pc.utf8_rtrim(pc.split_pattern(pa.array([text.removesuffix("\n")]), "\n").values, "\r")
    columns, taken = syslog3164_columns.parse_lines(lines)
    checked = decoder.columnar.check(_declared(columns, decoder), None) if columns.num_rows else None
    runs = _runs(taken.to_numpy(zero_copy_only=False))
    if checked is None or len(runs) > MAX_RUNS:
        return _records(decoder, _line_records(chunk.data, chunk.first_line, options))
    index = checked.schema.get_field_index("attributes")
    checked = checked.set_column(index, checked.schema.field(index), columns.column("attributes"))
    return _merge_runs(chunk, options, decoder, checked, runs)


def _plain_text(data: bytes) -> str | None:
    """``data`` as text when it is lines without continuation lines, BOM or invalid UTF-8, else None."""
    if data[:1] in (b" ", b"\t", b"\xef") or b"\n " in data or b"\n\t" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _declared(columns: pa.Table, decoder: BatchDecoder) -> pa.Table:
    """The parsed columns as the columnar validator takes them: every declared field, absent ones null."""
    schema = decoder.columnar.parse_schema
    arrays = [columns.column(name) if name in columns.column_names else pa.nulls(columns.num_rows, field.type)
              for name, field in zip(schema.names, schema)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _runs(taken: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, end, taken) of each run of equal values of the mask."""
    if not len(taken):
        return []
    edges = np.flatnonzero(np.diff(taken.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(taken)]
    return [(start, end, bool(taken[start])) for start, end in zip(bounds, bounds[1:])]


def _merge_runs(chunk: Chunk, options: ChunkOptions, decoder: BatchDecoder, fast: pa.Table,
                runs: list[tuple[int, int, bool]]) -> ParsedChunk:
    """The chunk's records in line order: slices of ``fast`` for the taken runs, the others parsed one by
    one (a record without a time takes the time of the line before it, as in a whole-file read)."""
    byte_lines = chunk.data.split(b"\n") if any(not taken for _, _, taken in runs) else []
    tables, rejected, formats = [], [], Counter()
    records, position, previous = 0, 0, UNTIMED
    for start, end, taken in runs:
        if taken:
            piece = fast.slice(position, end - start)
            position += end - start
            formats[syslog3164.NAME] += piece.num_rows
            records += piece.num_rows
            previous = piece.column("timestamp")[-1].as_py()
            tables.append(piece)
            continue
        data = b"\n".join(byte_lines[start:end]) + b"\n"
        part = _records(decoder, _line_records(data, chunk.first_line + start, options, previous))
        tables.append(part.table)
        rejected += part.rejected
        formats.update(part.formats)
        records += part.records
        if part.last_time_us is not None:
            previous = UNTIMED + timedelta(microseconds=part.last_time_us - UNTIMED_US)
    table = pa.concat_tables(tables) if tables else decoder.data_schema.empty_table()
    return ParsedChunk(table, rejected, records, formats, _last_time(table))


def _records(decoder: BatchDecoder, items) -> ParsedChunk:
    formats: Counter = Counter()
    records: list[CollectorRecord] = []
    for item in items:
        if isinstance(item, tuple):
            number, raw, record, name = item
        else:  # a SourceRecord of a whole document
            number, raw, record, name = item.number, item.raw, item.record, item.format
        formats[name] += 1
        records.append(CollectorRecord(number, raw, record))
    batch = decoder.mapped(records, skew=False)
    return _outcome(batch, formats)


def _last_time(table: pa.Table) -> int | None:
    """The latest event time of ``table`` other than UNTIMED (rows of a chunk are near time order)."""
    if not table.num_rows:
        return None
    micros = table.column("timestamp").cast(pa.int64())
    timed = pc.filter(micros, pc.not_equal(micros, UNTIMED_US))
    return pc.max(timed).as_py() if len(timed) else None


def fill_untimed(table: pa.Table, previous_us: int) -> pa.Table:
    """``table`` with the UNTIMED event times replaced by ``previous_us``."""
    index = table.schema.get_field_index("timestamp")
    column = table.column(index)
    micros = column.cast(pa.int64())
    untimed = pc.equal(micros, UNTIMED_US)
    if not pc.any(untimed).as_py():
        return table
    filled = pc.if_else(untimed, pa.scalar(previous_us, pa.int64()), micros).cast(TIMESTAMP)
    return table.set_column(index, table.schema.field(index), filled)
