"""``read_records(path)``: the records of any log file, whatever its container.

Handles gzip/zstd/zip compression, EVTX binaries (records as evtx JSON dicts), JSON arrays and single
JSON documents, concatenated JSON objects (Firehose's S3 delivery writes no separator), Event XML files
with many ``<Event>`` elements, W3C extended logs (``#Fields:`` carried to each line) and plain line
files where indented continuation lines are folded into the record before them.

Documents that hold a list of records yield each as its own record, whole or as one line of JSON lines:

- a CloudTrail trail file, ``{"Records": [...]}``;
- ``aws cloudtrail lookup-events`` output, ``{"Events": [{"EventId", ..., "CloudTrailEvent": "..."}]}``;
- CloudTrail Lake ``get-query-results`` output, ``{"QueryResultRows": [[{"column": "value"}, ...]]}``:
  each row's single-column objects merged into one object;
- CloudWatch Logs subscription data (what a subscription filter sends to Firehose, Kinesis or Lambda),
  ``{"messageType": "DATA_MESSAGE", "logGroup", "logStream", "logEvents": [{"id", "timestamp",
  "message"}]}``: each ``message`` as the application wrote it (``CONTROL_MESSAGE`` has none).
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from logwarden.formats.common import MAX_RECORD_BYTES

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZIP_MAGIC = b"PK\x03\x04"
EVTX_MAGIC = b"ElfFile\x00"
#: Whole-document JSON/XML files larger than this are read line by line instead.
MAX_DOCUMENT_BYTES = 256 << 20
W3C_DIRECTIVE = re.compile(rb"#(Software|Version|Date|Fields|Start-Date|End-Date|Remark|GMT-Offset):")
#: A JSON line that may be a whole document of records (decoded to make sure).
_CONTAINER_DOC = re.compile(rb'\{\s*"(?:Records|Events|QueryStatus|QueryResultRows|messageType)"\s*:')
JSON_ARRAY_START = re.compile(rb"\[\s*[\[{\"\]]")
_XML_EVENT = re.compile(rb"<Event[\s>].*?</Event>", re.S)


class RawRecord(NamedTuple):
    """One record of a file: bytes (a line or element) or an already-decoded dict.

    ``number`` is the 1-based line of the record's first line (element/record ordinal for
    documents), ``source`` the archive member, ``hint`` a format the container implies and
    ``fields`` the W3C ``#Fields:`` names in force.
    """

    data: bytes | dict[str, Any]
    number: int
    source: str = ""
    hint: str | None = None
    fields: tuple[str, ...] | None = None


def read_records(path: str | Path) -> Iterator[RawRecord]:
    """Yield the records of ``path`` (see the module docstring for the supported layouts)."""
    path = Path(path)
    with path.open("rb") as fh:
        magic = fh.read(8)
        fh.seek(0)
        if magic.startswith(EVTX_MAGIC):
            yield from _evtx(path)
        elif magic.startswith(ZIP_MAGIC):
            yield from _zip(fh)
        else:
            yield from _stream(decompressed(fh, magic), "")


def decompressed(fh: IO[bytes], magic: bytes) -> IO[bytes]:
    """Wrap gzip/zstd streams; others are returned as they are."""
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=fh)  # type: ignore[return-value]
    if magic.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(fh)  # type: ignore[return-value]
    return fh


def _zip(fh: IO[bytes]) -> Iterator[RawRecord]:
    """Each member of a zip archive, in name order, as its own file."""
    with zipfile.ZipFile(fh) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith("/"):
                continue
            with archive.open(name) as member:
                data = member.read(MAX_DOCUMENT_BYTES + 1)
            if len(data) > MAX_DOCUMENT_BYTES:
                log.warning("zip member %s is over %d bytes: only its start is read", name,
                            MAX_DOCUMENT_BYTES)
            inner = io.BytesIO(data)
            yield from (r._replace(source=name) for r in _stream(decompressed(inner, data[:8]), name))


def _evtx(path: Path) -> Iterator[RawRecord]:
    """EVTX records rendered as evtx JSON by the Rust-backed ``evtx`` package."""
    try:
        from evtx import PyEvtxParser
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("reading EVTX files needs the 'evtx' package (pip install evtx)") from exc
    for ordinal, record in enumerate(PyEvtxParser(str(path)).records_json(), start=1):
        try:
            data = orjson.loads(record["data"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("%s: EVTX record %d unreadable: %s", path, ordinal, exc)
            continue
        yield RawRecord(data, ordinal)


def _stream(fh: IO[bytes], source: str) -> Iterator[RawRecord]:
    """Dispatch on the first bytes of a (decompressed) stream."""
    if not fh.seekable():
        fh = io.BufferedReader(fh, buffer_size=1 << 16)  # type: ignore[arg-type]
    head = _peek(fh)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64]
    if JSON_ARRAY_START.match(start) or (start[:1] == b"{" and not _first_line_is_json(head)):
        yield from _document(fh, source)
    elif start.startswith((b"<?xml", b"<Events", b"<Event ", b"<Event>")):
        yield from _xml_events(fh)
    elif W3C_DIRECTIVE.match(start):
        yield from _w3c(fh)
    elif start[:1] == b"{":
        yield from json_lines(fh)
    else:
        yield from folded_lines(fh)


def _peek(fh: IO[bytes]) -> bytes:
    """Read the start of the stream without consuming it."""
    if isinstance(fh, io.BufferedReader) and not fh.seekable():
        return fh.peek(1 << 16)[: 1 << 16]
    pos = fh.tell()
    head = fh.read(1 << 16)
    fh.seek(pos)
    return head


def _first_line_is_json(head: bytes) -> bool:
    """True when the first line is a complete JSON value (a JSON-lines file)."""
    line = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line without EOL); lines over the size cap are cut and the rest skipped."""
    number = 0
    while True:
        line = fh.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while (more := fh.readline(MAX_RECORD_BYTES)) and not more.endswith(b"\n"):
                pass
        yield number, line.rstrip(b"\r\n")


def folded_lines(fh: IO[bytes]) -> Iterator[RawRecord]:
    """Plain lines; indented continuation lines join the record before them."""
    pending: list[bytes] = []
    first = 0
    for number, line in _lines(fh):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if pending and line[:1] in (b" ", b"\t") and line.strip():
            pending.append(line)
            continue
        if pending:
            yield RawRecord(b"\n".join(pending), first)
        pending, first = ([line], number) if line.strip() else ([], 0)
    if pending:
        yield RawRecord(b"\n".join(pending), first)


def json_lines(fh: IO[bytes]) -> Iterator[RawRecord]:
    """JSON lines; a line holding a whole document of records (see the module docstring) is exploded."""
    for record in folded_lines(fh):
        data = record.data
        items = None
        if isinstance(data, bytes) and _CONTAINER_DOC.match(data):
            try:
                items = _contained(orjson.loads(data))
            except orjson.JSONDecodeError:
                items = None
        if items is None:
            yield record
        else:
            yield from (RawRecord(item, record.number) for item in items)


def _w3c(fh: IO[bytes]) -> Iterator[RawRecord]:
    """W3C extended log: directives and data lines, each data line with the fields in force."""
    fields: tuple[str, ...] | None = None
    for number, line in _lines(fh):
        if not line.strip():
            continue
        if line.startswith(b"#Fields:"):
            fields = tuple(line[8:].decode("utf-8", "replace").split())
        yield RawRecord(line, number, hint="access-log",
                        fields=None if line.startswith(b"#") else fields)


def _xml_events(fh: IO[bytes]) -> Iterator[RawRecord]:
    """Each ``<Event>...</Event>`` element of an XML export."""
    data = fh.read(MAX_DOCUMENT_BYTES)
    for ordinal, m in enumerate(_XML_EVENT.finditer(data), start=1):
        yield RawRecord(m.group(), ordinal)


def _document(fh: IO[bytes], source: str) -> Iterator[RawRecord]:
    """A whole JSON document: CloudTrail ``Records``, an array, or one object."""
    data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        log.warning("%s: JSON document over %d bytes, read as lines", source, MAX_DOCUMENT_BYTES)
        yield from folded_lines(io.BytesIO(data))
        return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        log.warning("%s: invalid JSON document (%s), salvaging records", source or "stream", exc)
        yield from _salvage(data)
        return
    yield from _elements(doc)


def _elements(doc: Any) -> Iterator[RawRecord]:
    """Records of a decoded document."""
    items = _contained(doc)
    if items is None:
        items = [_item(item) for item in (doc if isinstance(doc, list) else [doc])]
    for ordinal, item in enumerate(items, start=1):
        yield RawRecord(item, ordinal)


def _contained(doc: Any) -> list[bytes | dict[str, Any]] | None:
    """The records of a document of records (see the module docstring), or None when ``doc`` is none."""
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("Records"), list):
        return [_item(item) for item in doc["Records"]]
    events = doc.get("Events")
    if isinstance(events, list) and events and all(
            isinstance(e, dict) and ("CloudTrailEvent" in e or "EventId" in e) for e in events):
        return events
    rows = doc.get("QueryResultRows")
    if isinstance(rows, list) and all(isinstance(row, list) for row in rows):
        return [_lake_row(row) for row in rows]
    if doc.get("messageType") in ("DATA_MESSAGE", "CONTROL_MESSAGE") and isinstance(doc.get("logEvents"), list):
        return [_log_event(e) for e in doc["logEvents"] if doc["messageType"] == "DATA_MESSAGE"]
    return None


def _item(item: Any) -> bytes | dict[str, Any]:
    """A list element as a record: objects as they are, anything else as its JSON."""
    return item if isinstance(item, dict) else orjson.dumps(item)


def _lake_row(row: list[Any]) -> dict[str, Any]:
    """A CloudTrail Lake result row, a list of single-column objects, as one object."""
    merged: dict[str, Any] = {}
    for column in row:
        if isinstance(column, dict):
            merged.update(column)
    return merged


def _log_event(event: Any) -> bytes | dict[str, Any]:
    """A CloudWatch Logs event's ``message`` as the application wrote it."""
    if isinstance(event, dict) and isinstance(event.get("message"), str):
        return event["message"].encode("utf-8", "surrogatepass")
    return _item(event)


def _salvage(data: bytes) -> Iterator[RawRecord]:
    """Decode array elements one by one (tolerating missing commas); yield the rest as raw bytes."""
    text = data.decode("utf-8", "replace")
    m = re.match(r'\s*(?:\{\s*"Records"\s*:\s*)?\[', text)
    if not m:
        yield from _concatenated(text) if text.lstrip()[:1] == "{" else folded_lines(io.BytesIO(data))
        return
    decoder, pos, ordinal = json.JSONDecoder(), m.end(), 0
    while True:
        pos = _skip_separators(text, pos)
        if pos >= len(text) or text[pos] == "]":
            return
        ordinal += 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except ValueError:
            yield RawRecord(text[pos:].encode("utf-8"), ordinal)
            return
        yield RawRecord(item if isinstance(item, dict) else orjson.dumps(item), ordinal)


def _concatenated(text: str) -> Iterator[RawRecord]:
    """JSON objects one after the other, with or without separators (Firehose's S3 objects), each a
    document of its own; text that does not start with a whole object is read as lines."""
    decoder, pos, ordinal = json.JSONDecoder(), 0, 0
    while True:
        pos = _skip_separators(text, pos)
        if pos >= len(text):
            return
        try:
            doc, end = decoder.raw_decode(text, pos)
        except ValueError:
            rest = text[pos:].encode("utf-8")
            yield from folded_lines(io.BytesIO(rest)) if ordinal == 0 else [RawRecord(rest, ordinal + 1)]
            return
        for record in _elements(doc):
            ordinal += 1
            yield record._replace(number=ordinal)
        pos = end


def _skip_separators(text: str, pos: int) -> int:
    """Skip whitespace and commas between array elements."""
    while pos < len(text) and text[pos] in " \t\r\n,":
        pos += 1
    return pos
