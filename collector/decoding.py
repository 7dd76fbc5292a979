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
    """Undo a ``Content-Encoding`` of gzip, deflate or zstd, refusing output past ``max_size``."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            out = zlib.decompressobj(wbits=31).decompress(body, max_size + 1)
        elif encoding == "deflate":
            out = zlib.decompressobj().decompress(body, max_size + 1)
        elif encoding == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)) as reader:
                out = reader.read(max_size + 1)
        else:
            raise BodyError(f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or zstd)")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise BodyError(f"cannot decompress {encoding} body: {exc}") from None
    if len(out) > max_size:
        raise OverflowError(f"decompressed body exceeds the {max_size}-byte limit")
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
