# cython: language_level=3
"""A growing byte buffer for the compiled decoders, and JSON text written into it exactly as orjson
writes it (so a record's line and attributes text are the bytes the Python decoders make).

Include with ``include "_textbuf.pxi"`` (a textual include: the folders are not laid out as installed,
so a cimport by package name would not resolve). Every function that can fail returns -1 with a
Python exception set (MemoryError, or ValueError for text that is not UTF-8).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

cdef struct TextBuf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef inline int tb_init(TextBuf* buf, Py_ssize_t cap) except -1:
    """Start an empty buffer of ``cap`` bytes."""
    if cap < 64:
        cap = 64
    buf.data = <char*>malloc(cap)
    if buf.data == NULL:
        raise MemoryError()
    buf.size = 0
    buf.cap = cap
    return 0


cdef inline void tb_free(TextBuf* buf):
    """Release the buffer (safe to call twice)."""
    if buf.data != NULL:
        free(buf.data)
        buf.data = NULL
    buf.size = 0
    buf.cap = 0


cdef inline int tb_reserve(TextBuf* buf, Py_ssize_t extra) except -1:
    """Room for ``extra`` more bytes."""
    cdef Py_ssize_t need = buf.size + extra
    cdef Py_ssize_t cap = buf.cap
    cdef char* grown
    if need <= cap:
        return 0
    while cap < need:
        cap *= 2
    grown = <char*>realloc(buf.data, cap)
    if grown == NULL:
        raise MemoryError()
    buf.data = grown
    buf.cap = cap
    return 0


cdef inline int tb_write(TextBuf* buf, const char* text, Py_ssize_t length) except -1:
    """Append ``length`` bytes as they are."""
    tb_reserve(buf, length)
    memcpy(buf.data + buf.size, text, length)
    buf.size += length
    return 0


cdef inline int tb_char(TextBuf* buf, char c) except -1:
    """Append one byte."""
    tb_reserve(buf, 1)
    buf.data[buf.size] = c
    buf.size += 1
    return 0


cdef inline int tb_int(TextBuf* buf, long long value) except -1:
    """Append a decimal integer."""
    cdef char digits[24]
    cdef int n = 0
    cdef unsigned long long magnitude
    if value < 0:
        tb_char(buf, b'-')
        magnitude = <unsigned long long>(-(value + 1)) + 1
    else:
        magnitude = <unsigned long long>value
    while True:
        digits[n] = <char>(48 + magnitude % 10)
        n += 1
        magnitude //= 10
        if magnitude == 0:
            break
    tb_reserve(buf, n)
    while n > 0:
        n -= 1
        buf.data[buf.size] = digits[n]
        buf.size += 1
    return 0


cdef inline Py_ssize_t utf8_valid(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """The length of ``s`` when it is well-formed UTF-8 (as Python's decoder demands: no surrogates,
    no overlong forms, nothing past U+10FFFF), else -1."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c, c1
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
        elif c < 0xC2:
            return -1
        elif c < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return -1
            i += 2
        elif c < 0xF0:
            if i + 2 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return -1
            c1 = s[i + 1]
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return -1
            i += 3
        elif c < 0xF5:
            if (i + 3 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (s[i + 3] & 0xC0) != 0x80):
                return -1
            c1 = s[i + 1]
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
                return -1
            i += 4
        else:
            return -1
    return n


cdef inline int tb_json_string(TextBuf* buf, const char* text, Py_ssize_t length) except -1:
    """Append UTF-8 ``text`` as a quoted JSON string, escaped as orjson escapes it; ValueError when
    ``text`` is not well-formed UTF-8."""
    cdef const unsigned char* s = <const unsigned char*>text
    cdef Py_ssize_t i, start = 0
    cdef unsigned char c
    cdef char* hexdigits = b"0123456789abcdef"
    if utf8_valid(s, length) < 0:
        raise ValueError("text is not UTF-8")
    tb_reserve(buf, length + 2)
    buf.data[buf.size] = b'"'
    buf.size += 1
    for i in range(length):
        c = s[i]
        if c >= 0x20 and c != 0x22 and c != 0x5C:
            continue
        if i > start:
            tb_write(buf, text + start, i - start)
        start = i + 1
        if c == 0x22:
            tb_write(buf, b'\\"', 2)
        elif c == 0x5C:
            tb_write(buf, b'\\\\', 2)
        elif c == 0x0A:
            tb_write(buf, b'\\n', 2)
        elif c == 0x0D:
            tb_write(buf, b'\\r', 2)
        elif c == 0x09:
            tb_write(buf, b'\\t', 2)
        elif c == 0x08:
            tb_write(buf, b'\\b', 2)
        elif c == 0x0C:
            tb_write(buf, b'\\f', 2)
        else:
            tb_write(buf, b'\\u00', 4)
            tb_char(buf, hexdigits[c >> 4])
            tb_char(buf, hexdigits[c & 15])
    if length > start:
        tb_write(buf, text + start, length - start)
    tb_char(buf, b'"')
    return 0


cdef inline bytes tb_bytes(TextBuf* buf, Py_ssize_t start, Py_ssize_t end):
    """The bytes from ``start`` to ``end`` as a Python bytes object."""
    return PyBytes_FromStringAndSize(buf.data + start, end - start)
