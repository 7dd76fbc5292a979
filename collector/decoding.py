"""Split request bodies and streams into records, keeping each record's original bytes."""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

import orjson
import zstandard


class BodyError(ValueError):
    """The body as a whole could not be read (bad compression, not JSON at all)."""


@dataclass
class RawRecord:
    """One record as received: its position, its original bytes, and the decoded value or the decode error."""

    index: int
    raw: bytes
    value: Any = None
    error: str | None = None


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
            out = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        else:
            raise BodyError(f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or zstd)")
    except (zlib.error, zstandard.ZstdError, gzip.BadGzipFile) as exc:
        raise BodyError(f"cannot decompress {encoding} body: {exc}") from None
    if len(out) > max_size:
        raise OverflowError(f"decompressed body exceeds {max_size} bytes")
    return out


def decode_line(index: int, line: bytes) -> RawRecord:
    """One NDJSON line decoded (an error is kept on the record, never raised)."""
    try:
        return RawRecord(index, line, orjson.loads(line))
    except orjson.JSONDecodeError as exc:
        return RawRecord(index, line, error=f"invalid JSON: {exc}")


def split_ndjson(data: bytes, max_line: int) -> Iterator[RawRecord]:
    """Records of newline-delimited JSON; blank lines are skipped but keep their index out of the count."""
    index = 0
    for line in data.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        if len(line) > max_line:
            yield RawRecord(index, line[:1024], error=f"line of {len(line)} bytes exceeds the {max_line}-byte limit")
        else:
            yield decode_line(index, line)
        index += 1


def split_json_array(data: bytes) -> Iterator[RawRecord]:
    """Records of a JSON array body; each element's bytes are its compact re-serialization."""
    try:
        values = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"invalid JSON array body: {exc}") from None
    if not isinstance(values, list):
        values = [values]
    for index, value in enumerate(values):
        yield RawRecord(index, orjson.dumps(value), value)


def split_body(data: bytes, content_type: str | None, max_line: int) -> list[RawRecord]:
    """Records of an HTTP body: a JSON array when it starts with ``[``, else NDJSON."""
    content_type = (content_type or "").lower()
    head = data.lstrip()[:1]
    if head == b"[":
        return list(split_json_array(data))
    if "application/json" in content_type:
        try:
            return [RawRecord(0, data.strip(), orjson.loads(data))]
        except orjson.JSONDecodeError:
            pass  # not one JSON document: read it as NDJSON, line by line
    return list(split_ndjson(data, max_line))
