# cython: language_level=3
"""Reading the protobuf wire format in the compiled decoders (OTLP, Loki): a cursor over a byte range,
varints, fixed-width numbers, length-delimited fields and skipping unknown fields.

Include with ``include "_protowire.pxi"``. A malformed message (a varint running past its range, a
length past the end, wire types 3/4/6/7) raises ``WireError``: the caller then takes the Python
decoder, which names the problem in its answer.
"""

from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


cdef struct Cursor:
    const unsigned char* pos
    const unsigned char* end


cdef inline Cursor cursor_of(const unsigned char* start, Py_ssize_t length) noexcept nogil:
    """A cursor over ``length`` bytes from ``start``."""
    cdef Cursor cursor
    cursor.pos = start
    cursor.end = start + length
    return cursor


cdef inline bint at_end(Cursor* cursor) noexcept nogil:
    return cursor.pos >= cursor.end


cdef inline uint64_t read_varint(Cursor* cursor) except? 0xFFFFFFFFFFFFFFFF:
    """The next varint (at most 10 bytes)."""
    cdef uint64_t value = 0
    cdef int shift = 0
    cdef unsigned char byte
    while True:
        if cursor.pos >= cursor.end or shift > 63:
            raise WireError("a varint runs past its message")
        byte = cursor.pos[0]
        cursor.pos += 1
        value |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            return value
        shift += 7


cdef inline uint64_t read_fixed64(Cursor* cursor) except? 0xFFFFFFFFFFFFFFFF:
    """The next little-endian 64-bit value."""
    cdef uint64_t value
    if cursor.end - cursor.pos < 8:
        raise WireError("a 64-bit field runs past its message")
    memcpy(&value, cursor.pos, 8)  # the wire and x86/ARM are both little-endian
    cursor.pos += 8
    return value


cdef inline uint32_t read_fixed32(Cursor* cursor) except? 0xFFFFFFFF:
    """The next little-endian 32-bit value."""
    cdef uint32_t value
    if cursor.end - cursor.pos < 4:
        raise WireError("a 32-bit field runs past its message")
    memcpy(&value, cursor.pos, 4)
    cursor.pos += 4
    return value


cdef inline Cursor read_delimited(Cursor* cursor) except *:
    """A cursor over the next length-delimited field (a string, bytes or a nested message)."""
    cdef uint64_t length = read_varint(cursor)
    cdef Cursor inner
    if length > <uint64_t>(cursor.end - cursor.pos):
        raise WireError("a length-delimited field runs past its message")
    inner.pos = cursor.pos
    inner.end = cursor.pos + length
    cursor.pos = inner.end
    return inner


cdef inline int skip_field(Cursor* cursor, uint64_t tag) except -1:
    """Step over the value of a field not read (``tag`` already read)."""
    cdef int wire_type = tag & 7
    if wire_type == 0:
        read_varint(cursor)
    elif wire_type == 1:
        read_fixed64(cursor)
    elif wire_type == 2:
        read_delimited(cursor)
    elif wire_type == 5:
        read_fixed32(cursor)
    else:
        raise WireError(f"wire type {wire_type} is not supported")
    return 0
