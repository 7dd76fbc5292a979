"""Log files cut into large chunks that can be parsed apart: how ``replay`` reads big files.

A file's kind is sniffed from its first bytes (after gzip/zstd):

- ``native``: JSON lines in the log schema's own shape (every sampled line an object holding the
  required fields); decoded by the collector's columnar path, as the native API would;
- ``otlp``: OpenTelemetry JSON, one ``ExportLogsServiceRequest`` per line (the Collector's file
  exporter) or one whole document; decoded by the collector's OTLP protocol, every log record a record;
- ``lines`` and ``json-lines``: text lines, or JSON lines of other shapes; detected and parsed
  (``logwarden.formats``) and validated, on a worker;
- ``document``: anything that cannot be cut at line ends (EVTX, zip, JSON arrays and ``Records``
  documents, Event XML, W3C logs with their ``#Fields`` directives): read whole, record by record.

Chunks of ``lines`` files end only where a line starts with a non-blank byte, so a continuation
line (an indented stack frame) is never split from its record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Iterator

import orjson

from logwarden.formats.files import EVTX_MAGIC, JSON_ARRAY_START, W3C_DIRECTIVE, ZIP_MAGIC, decompressed

CHUNK_BYTES = 16 << 20
#: A "line" longer than this many chunks is handed on as it is (the parser cuts over-long records).
MAX_CARRY_CHUNKS = 4
SNIFF_BYTES = 1 << 16
SNIFF_LINES = 200
_OTLP_START = re.compile(rb'\s*\{\s*"resource_?[lL]ogs"\s*:')
_CONTINUATION = re.compile(rb"\n(?=[^ \t\r\n])")


class FileKind(str, Enum):
    """How a file is read (see the module docstring)."""

    NATIVE = "native"
    OTLP = "otlp"
    LINES = "lines"
    JSON_LINES = "json-lines"
    DOCUMENT = "document"


@dataclass(frozen=True)
class Chunk:
    """A piece of a file that parses on its own: whole lines (or a whole document)."""

    path: str
    kind: FileKind
    data: bytes
    first_line: int  # 1-based number of the chunk's first line in the file
    number: int  # 0-based ordinal of the chunk in the file


def open_file(path: Path) -> IO[bytes]:
    """``path`` opened for reading, decompressed when it is gzip or zstd."""
    handle = path.open("rb")
    magic = handle.read(8)
    handle.seek(0)
    return decompressed(handle, magic)


def _head(path: Path) -> bytes:
    with open_file(path) as handle:
        return handle.read(SNIFF_BYTES)


def sniff_kind(path: Path, format_name: str, required: tuple[str, ...]) -> FileKind:
    """The kind of ``path`` when it is read as ``format_name`` (``auto`` or a parser name)."""
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic.startswith((EVTX_MAGIC, ZIP_MAGIC)):
        return FileKind.DOCUMENT
    head = _head(path)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if _OTLP_START.match(start) and format_name in ("auto", "otlp"):
        return FileKind.OTLP
    # the same dispatch as formats.files reading a whole file
    if JSON_ARRAY_START.match(start[:64]) or W3C_DIRECTIVE.match(start[:64]):
        return FileKind.DOCUMENT
    if start.startswith((b"<?xml", b"<Events", b"<Event ", b"<Event>")):
        return FileKind.DOCUMENT
    if start[:1] != b"{":
        return FileKind.LINES
    if not _is_json(start.split(b"\n", 1)[0]):
        return FileKind.DOCUMENT  # one multi-line JSON document, or objects one after the other
    if format_name in ("auto", "json") and _native_lines(start, required):
        return FileKind.NATIVE
    return FileKind.JSON_LINES


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _native_lines(head: bytes, required: tuple[str, ...]) -> bool:
    """Whether the sampled lines are JSON objects in the log schema's shape."""
    lines = [line for line in head.split(b"\n")[:SNIFF_LINES] if line.strip()]
    if len(head) >= SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of the sample may be cut
    if not lines:
        return False
    for line in lines:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(value, dict) or "Records" in value or not all(key in value for key in required):
            return False
    return True


def read_chunks(path: Path, kind: FileKind, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The chunks of ``path`` read as ``kind`` (a document is one chunk)."""
    name = str(path)
    if kind is FileKind.DOCUMENT:
        yield Chunk(name, kind, b"", 1, 0)  # read by its path: containers need the file itself
        return
    with open_file(path) as handle:
        if kind is FileKind.OTLP and not _first_line_complete(path):
            yield Chunk(name, kind, handle.read(), 1, 0)
            return
        boundary = _CONTINUATION if kind in (FileKind.LINES, FileKind.JSON_LINES) else re.compile(rb"\n")
        yield from _line_chunks(name, kind, handle, boundary, chunk_bytes)


def _first_line_complete(path: Path) -> bool:
    head = _head(path).lstrip(b"\xef\xbb\xbf \t\r\n")
    return _is_json(head.split(b"\n", 1)[0])


def _line_chunks(name: str, kind: FileKind, handle: IO[bytes], boundary: re.Pattern[bytes],
                 chunk_bytes: int) -> Iterator[Chunk]:
    carry = b""
    line, number = 1, 0
    while True:
        block = handle.read(chunk_bytes)
        data = carry + block
        if not block:
            if data:
                yield Chunk(name, kind, data, line, number)
            return
        cut = _last_boundary(data, boundary)
        if cut is None:
            if len(data) < MAX_CARRY_CHUNKS * chunk_bytes:
                carry = data
                continue
            cut = len(data)
        piece, carry = data[:cut], data[cut:]
        yield Chunk(name, kind, piece, line, number)
        line += piece.count(b"\n")
        number += 1


def _last_boundary(data: bytes, boundary: re.Pattern[bytes]) -> int | None:
    """The end (after its newline) of the last whole record in ``data``, or None."""
    position = len(data)
    while True:
        newline = data.rfind(b"\n", 0, position)
        if newline < 0:
            return None
        if newline + 1 < len(data) and boundary.match(data, newline):
            return newline + 1
        if newline + 1 == len(data):
            position = newline  # the next line is not here yet: it may be a continuation
            continue
        position = newline

