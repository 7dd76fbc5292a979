"""Snappy block format (as Loki and Prometheus remote write use it), with the output size bounded.

The block starts with the uncompressed length as a varint: a body announcing more than the limit
is refused before anything is decompressed (a bomb costs nothing), and a truncated or corrupt body
is an error, never a shorter result.
"""

from __future__ import annotations

import cramjam

from logwarden.collector.decoding import BodyError


def snappy_length(data: bytes) -> int:
    """The uncompressed length a snappy block announces (BodyError when the header is unreadable)."""
    length = shift = 0
    for position, byte in enumerate(data[:5]):
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    raise BodyError("not a snappy block: unreadable length header" if data else "empty snappy body")


def decompress_snappy(data: bytes, max_size: int) -> bytes:
    """Undo snappy block compression, refusing output past ``max_size`` (OverflowError)."""
    length = snappy_length(data)
    if length > max_size:
        raise OverflowError(f"decompressed body of {length} bytes exceeds the {max_size}-byte limit")
    try:
        out = bytes(cramjam.snappy.decompress_raw(data))
    except cramjam.DecompressionError as exc:
        raise BodyError(f"cannot decompress snappy body: {exc}") from None
    if len(out) != length:
        raise BodyError(f"snappy body decompressed to {len(out)} bytes, not the {length} it announces")
    return out
