"""Turn request bodies and streams into records, keeping each record's original bytes."""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

import orjson
import zstandard

BOM = b"\xef\xbb\xbf"
_ARRAY_START = re.compile(rb"[ \t\r\n]*\[")
KEPT_BYTES_OF_LONG_LINE = 64 * 1024


class BodyError(ValueError):
    """The body as a whole could not be read (bad compression, not JSON at all)."""


@dataclass
class RawRecord:
    """One record as received: its position, its original bytes, and the decoded value or the decode error.

    ``line`` is the JSON text written ahead for an accepted record; it defaults to ``raw``
    (it differs for syslog messages, whose record is built from the parsed message).
    """

    index: int
    raw: bytes
    value: Any = None
    error: str | None = None
    line: bytes | None = None

    @property
    def json_line(self) -> bytes:
        """The JSON text of the record (one line, no newline)."""
        return self.raw if self.line is None else self.line


def decompress(body: bytes, encoding: str | None, max_size: int) -> bytes:
    """Undo a ``Content-Encoding`` of gzip, deflate or zstd, refusing output past ``max_size``
    (OverflowError, raised before more than ``max_size + 1`` bytes are made, so a bomb costs nothing).

    A body that ends before its compressed stream does (a truncated upload) is a BodyError, never a
    shorter body; so are bytes after the stream. Concatenated gzip members and zstd frames are read whole.
    """
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            out = _inflate(body, 31, max_size, members=True)
        elif encoding == "deflate":
            out = _inflate(body, 15, max_size, members=False)
        elif encoding == "zstd":
            out = _unzstd(body, max_size)
        else:
            raise BodyError(f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or zstd)")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise BodyError(f"cannot decompress {encoding} body: {exc}") from None
    if len(out) > max_size:
        raise OverflowError(f"decompressed body exceeds the {max_size}-byte limit")
    return out


def _inflate(body: bytes, wbits: int, max_size: int, members: bool) -> bytes:
    """zlib/gzip data, complete (every gzip member when ``members``), at most ``max_size + 1`` bytes."""
    parts: list[bytes] = []
    size = 0
    data = body
    while True:
        inflater = zlib.decompressobj(wbits=wbits)
        part = inflater.decompress(data, max_size + 1 - size)
        parts.append(part)
        size += len(part)
        if size > max_size:
            break
        if not inflater.eof:
            raise BodyError("truncated compressed body (the stream ends early)")
        data = inflater.unused_data
        if not data:
            break
        if not members:
            raise BodyError("bytes after the end of the compressed stream")
    return b"".join(parts)


def _unzstd(body: bytes, max_size: int) -> bytes:
    """zstd data, every frame complete, at most ``max_size + 1`` bytes."""
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True) as reader:
        out = reader.read(max_size + 1)
    if len(out) > max_size:
        return out
    data = body  # the output is small enough: check that every frame is whole
    while data:
        frame = zstandard.ZstdDecompressor().decompressobj()
        frame.decompress(data)
        if not frame.eof:
            raise BodyError("truncated zstd body (a frame ends early)")
        data = frame.unused_data
    if not body:
        raise BodyError("empty zstd body")
    return out


def decode_line(index: int, line: bytes) -> RawRecord:
    """One NDJSON line decoded (an error is kept on the record, never raised); a leading BOM is ignored."""
    text = line[3:] if line.startswith(BOM) else line
    try:
        return RawRecord(index, line, orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        return RawRecord(index, line, error=f"invalid JSON: {exc}")


def split_ndjson(data: bytes, max_line: int, offset: int = 0) -> Iterator[RawRecord]:
    """Records of newline-delimited JSON, numbered from ``offset``; blank lines are skipped, uncounted."""
    index = offset
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        if len(line) > max_line:
            yield RawRecord(
                index,
                line[:KEPT_BYTES_OF_LONG_LINE],
                error=f"line of {len(line)} bytes exceeds the {max_line}-byte limit "
                f"(first {KEPT_BYTES_OF_LONG_LINE} bytes kept)",
            )
        else:
            yield decode_line(index, line)
        index += 1


def split_json_array(data: bytes) -> Iterator[RawRecord]:
    """Records of a JSON array body; each element's bytes are its compact re-serialization."""
    try:
        values = orjson.loads(data[3:] if data.startswith(BOM) else data)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"invalid JSON array body: {exc}") from None
    if not isinstance(values, list):
        values = [values]
    for index, value in enumerate(values):
        yield RawRecord(index, orjson.dumps(value), value)


def is_json_array(data: bytes) -> bool:
    """Whether the body is a JSON array (its first non-blank byte is ``[``)."""
    return _ARRAY_START.match(data, 3 if data.startswith(BOM) else 0) is not None


def split_body(data: bytes, content_type: str | None, max_line: int) -> list[RawRecord]:
    """Records of an HTTP body: one JSON document (array or object) for ``application/json`` or when it
    starts with ``[``, else NDJSON."""
    if is_json_array(data) or "application/json" in (content_type or "").lower():
        return list(split_json_array(data))
    return list(split_ndjson(data, max_line))
