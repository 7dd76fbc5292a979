"""A small reader of the protobuf wire format, for the messages the ingest protocols receive.

Generated protobuf classes make a Python object per sub-message and per attribute, which costs more
than the decoding itself; this reader walks the bytes once and yields plain values. It checks every
length against its message (a truncated or corrupt body is a ``BodyError``), skips unknown fields, and
refuses groups (wire types 3 and 4). Field numbers below 16 have one-byte keys, which is the common case
it reads without a loop.
"""

from __future__ import annotations

import struct
from typing import Iterator

from logwarden.collector.decoding import BodyError

_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_FIXED32 = struct.Struct("<I")
VARINT, I64, LEN, I32 = 0, 1, 2, 5


def varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``buf[pos]`` and the position after it."""
    if pos < end:
        byte = buf[pos]
        if byte < 0x80:
            return byte, pos + 1
    result = shift = 0
    while True:
        if pos >= end:
            raise BodyError("truncated protobuf body (inside a varint)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BodyError("malformed protobuf body (a varint longer than 10 bytes)")


def fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Each field of ``buf[pos:end]`` as (number, wire type, a, b): a varint's value and -1; a LEN field's
    start and end; a fixed-size field's position and its end."""
    while pos < end:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = varint(buf, pos, end)
        wire = key & 7
        if wire == LEN:
            length = buf[pos] if pos < end else 0x80
            if length < 0x80:
                pos += 1
            else:
                length, pos = varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise BodyError("truncated protobuf body (a field runs past its message)")
            yield key >> 3, LEN, pos, stop
            pos = stop
        elif wire == VARINT:
            value, pos = varint(buf, pos, end)
            yield key >> 3, VARINT, value, -1
        elif wire == I64:
            if pos + 8 > end:
                raise BodyError("truncated protobuf body (a 64-bit field)")
            yield key >> 3, I64, pos, pos + 8
            pos += 8
        elif wire == I32:
            if pos + 4 > end:
                raise BodyError("truncated protobuf body (a 32-bit field)")
            yield key >> 3, I32, pos, pos + 4
            pos += 4
        else:
            raise BodyError(f"malformed protobuf body (wire type {wire})")


def fixed64(buf: bytes, pos: int) -> int:
    return _FIXED64.unpack_from(buf, pos)[0]


def double(buf: bytes, pos: int) -> float:
    return _DOUBLE.unpack_from(buf, pos)[0]


def fixed32(buf: bytes, pos: int) -> int:
    return _FIXED32.unpack_from(buf, pos)[0]


def signed64(value: int) -> int:
    """A varint read as int64 (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value
