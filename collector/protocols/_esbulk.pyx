# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled fast path of the Elasticsearch bulk decoder: ECS documents scanned once, straight into
the columns, attributes text and NDJSON lines that ``elasticsearch.ecs_record`` and ``orjson`` make.

Each document is rewritten in orjson's canonical form (compact, strings escaped as orjson escapes
them, numbers as orjson writes them back) into a scratch buffer while its top-level members and
their children are noted; the ECS mapping then works on those notes, and the record's line and
attributes are assembled from the canonical pieces. Anything this module does not vouch for makes
:func:`bulk_documents` return None (the Python decoder then decides): an action other than
``create``/``index``, a malformed pair, a document that is not an object or not valid JSON,
duplicate keys, objects of more than 64 members or nesting past ``max_depth``, a mapped field of a
type the mapping would convert (a number as ``service.name``, a non-text ``message``...), a field
the mapping would rename onto an existing key, ``duration_ms`` sent as a field, and any record that
the batch validation would send to its per-record path (too many fields, attributes that may nest
too deep).

Every read of the body is bounds-checked against the end of the line being scanned.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free
from libc.string cimport memchr, memcmp, strlen

import orjson
import pyarrow as pa

cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* ptype) except NULL
    int Py_DTSF_ADD_DOT_0

include "_textbuf.pxi"

DEF MAX_TOP = 256
DEF MAX_CHILDREN = 512
DEF MAX_OBJECT = 64
DEF FAIL = -1

cdef enum Kind:
    K_STRING = 1
    K_NUMBER = 2
    K_OBJECT = 3
    K_ARRAY = 4
    K_TRUE = 5
    K_FALSE = 6
    K_NULL = 7

cdef struct Member:
    Py_ssize_t key_start   # the key as a quoted JSON string, in the scratch buffer
    Py_ssize_t key_len
    Py_ssize_t val_start   # the value's canonical text, in the scratch buffer
    Py_ssize_t val_len
    int kind
    int alive
    int simple_int         # a number written as a non-negative integer of at most 18 digits
    Py_ssize_t first_child  # children of a top-level object, in ``Doc.children``
    Py_ssize_t child_count
    int children_alive

cdef struct Doc:
    Member top[MAX_TOP]
    Py_ssize_t ntop
    Member children[MAX_CHILDREN]
    Py_ssize_t nchildren
    int max_depth


cdef inline Py_ssize_t _skip_ws(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    while pos < end and (s[pos] == 32 or s[pos] == 9 or s[pos] == 13 or s[pos] == 10):
        pos += 1
    return pos


cdef inline int _hex(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef inline int _hex4(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """The code unit of ``XXXX`` at ``pos``, or -1."""
    cdef int value = 0, digit, i
    if pos + 4 > end:
        return -1
    for i in range(4):
        digit = _hex(s[pos + i])
        if digit < 0:
            return -1
        value = (value << 4) | digit
    return value


cdef inline int _utf8(TextBuf* out, unsigned int cp) except -1:
    cdef char b[4]
    if cp < 0x80:
        b[0] = <char>cp
        return tb_write(out, b, 1)
    if cp < 0x800:
        b[0] = <char>(0xC0 | (cp >> 6))
        b[1] = <char>(0x80 | (cp & 0x3F))
        return tb_write(out, b, 2)
    if cp < 0x10000:
        b[0] = <char>(0xE0 | (cp >> 12))
        b[1] = <char>(0x80 | ((cp >> 6) & 0x3F))
        b[2] = <char>(0x80 | (cp & 0x3F))
        return tb_write(out, b, 3)
    b[0] = <char>(0xF0 | (cp >> 18))
    b[1] = <char>(0x80 | ((cp >> 12) & 0x3F))
    b[2] = <char>(0x80 | ((cp >> 6) & 0x3F))
    b[3] = <char>(0x80 | (cp & 0x3F))
    return tb_write(out, b, 4)


cdef unsigned char _SPECIAL[256]  # the bytes that end a plain run of a JSON string: quote, backslash, controls
for _byte in range(256):
    _SPECIAL[_byte] = _byte < 32 or _byte == 34 or _byte == 92


cdef Py_ssize_t _string(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end, TextBuf* out,
                        TextBuf* tmp) except -2:
    """The JSON string at ``pos`` (its opening quote) written as orjson writes it; the position after
    it, or FAIL."""
    cdef Py_ssize_t i = pos + 1, start
    cdef unsigned char c, high = 0
    cdef int escaped = 0, unit, low
    while i < end:
        c = s[i]
        if not _SPECIAL[c]:
            high |= c
            i += 1
            continue
        if c == 34:
            break
        if c == 92:
            escaped = 1
            i += 2
            continue
        return FAIL
    if i >= end:
        return FAIL
    start = pos + 1
    if not escaped:
        if high >= 0x80 and utf8_valid(s + start, i - start) < 0:
            return FAIL
        tb_write(out, <const char*>(s + pos), i + 1 - pos)
        return i + 1
    tmp.size = 0
    i = start
    while True:
        c = s[i]
        if c == 34:
            break
        if c != 92:
            tb_char(tmp, <char>c)
            i += 1
            continue
        c = s[i + 1]
        i += 2
        if c == 34 or c == 92 or c == 47:
            tb_char(tmp, <char>c)
        elif c == 98:
            tb_char(tmp, 8)
        elif c == 102:
            tb_char(tmp, 12)
        elif c == 110:
            tb_char(tmp, 10)
        elif c == 114:
            tb_char(tmp, 13)
        elif c == 116:
            tb_char(tmp, 9)
        elif c == 117:
            unit = _hex4(s, i, end)
            if unit < 0:
                return FAIL
            i += 4
            if 0xD800 <= unit < 0xDC00:
                if i + 6 > end or s[i] != 92 or s[i + 1] != 117:
                    return FAIL
                low = _hex4(s, i + 2, end)
                if low < 0xDC00 or low > 0xDFFF:
                    return FAIL
                i += 6
                unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            elif 0xDC00 <= unit < 0xE000:
                return FAIL
            _utf8(tmp, <unsigned int>unit)
        else:
            return FAIL
    try:
        tb_json_string(out, tmp.data, tmp.size)
    except ValueError:
        return FAIL
    return i + 1


cdef Py_ssize_t _number(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end, TextBuf* out,
                        int* simple) except -2:
    """The JSON number at ``pos`` as orjson writes it back; the position after it, or FAIL."""
    cdef Py_ssize_t i = pos, j
    cdef unsigned char c
    cdef int plain = 1
    while i < end:
        c = s[i]
        if 48 <= c <= 57:
            pass
        elif c == 45 or c == 43 or c == 46 or c == 101 or c == 69:
            plain = 0
        else:
            break
        i += 1
    simple[0] = 0
    if plain and i - pos <= 18 and (s[pos] != 48 or i - pos == 1):
        simple[0] = 1
        tb_write(out, <const char*>(s + pos), i - pos)
        return i
    if s[pos] == 45 and i - pos <= 19 and i - pos >= 2 and s[pos + 1] != 48:
        plain = 1
        for j in range(pos + 1, i):
            if s[j] < 48 or s[j] > 57:
                plain = 0
                break
        if plain:
            tb_write(out, <const char*>(s + pos), i - pos)
            return i
    try:
        text = orjson.dumps(orjson.loads(bytes(s[pos:i])))
    except orjson.JSONDecodeError:
        return FAIL
    tb_write(out, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
    return i


cdef inline int _same_key(TextBuf* buf, Py_ssize_t a, Py_ssize_t alen, Py_ssize_t b, Py_ssize_t blen) noexcept:
    return alen == blen and memcmp(buf.data + a, buf.data + b, alen) == 0


cdef inline Py_ssize_t _literal(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end, TextBuf* out,
                                const char* word, Py_ssize_t length) except? -2:
    """``true``, ``false`` or ``null`` at ``pos``, copied to ``out``: the position after it, or FAIL."""
    if pos + length <= end and memcmp(s + pos, word, length) == 0:
        tb_write(out, word, length)
        return pos + length
    return FAIL


cdef Py_ssize_t _value(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end, TextBuf* out, TextBuf* tmp,
                       int depth, int max_depth, int* kind, int* simple) except -2:
    """Any JSON value at ``pos`` (whitespace skipped before it) written canonically; FAIL when not handled."""
    cdef unsigned char c
    pos = _skip_ws(s, pos, end)
    if pos >= end:
        return FAIL
    c = s[pos]
    simple[0] = 0
    if c == 34:
        kind[0] = K_STRING
        return _string(s, pos, end, out, tmp)
    if c == 123 or c == 91:
        if depth >= max_depth:
            return FAIL
        kind[0] = K_OBJECT if c == 123 else K_ARRAY
        return _container(s, pos, end, out, tmp, depth + 1, max_depth, NULL, NULL, NULL)
    if c == 116:
        kind[0] = K_TRUE
        return _literal(s, pos, end, out, b"true", 4)
    if c == 102:
        kind[0] = K_FALSE
        return _literal(s, pos, end, out, b"false", 5)
    if c == 110:
        kind[0] = K_NULL
        return _literal(s, pos, end, out, b"null", 4)
    if c == 45 or 48 <= c <= 57:
        kind[0] = K_NUMBER
        return _number(s, pos, end, out, simple)
    return FAIL


cdef Py_ssize_t _container(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end, TextBuf* out, TextBuf* tmp,
                           int depth, int max_depth, Member* members, Py_ssize_t* count, Doc* doc) except -2:
    """The object or array at ``pos`` written canonically; an object's members are noted in ``members``
    (up to ``count[0]`` of them, their number left in ``count``) when given, and with ``doc`` the members
    of the objects among them in ``doc.children``. FAIL when not handled."""
    cdef unsigned char close = 125 if s[pos] == 123 else 93
    cdef int is_object = close == 125
    cdef Py_ssize_t keys[MAX_OBJECT][2]
    cdef Py_ssize_t n = 0, limit = MAX_OBJECT, j, key_start, val_start
    cdef int kind = 0, simple = 0
    cdef Py_ssize_t room = 0
    cdef Member* children = NULL
    if members != NULL:
        limit = count[0]
    tb_char(out, <char>s[pos])
    pos = _skip_ws(s, pos + 1, end)
    if pos < end and s[pos] == close:
        tb_char(out, <char>close)
        if count != NULL:
            count[0] = 0
        return pos + 1
    while True:
        if n >= limit:
            return FAIL
        if n:
            tb_char(out, 44)
        if is_object:
            pos = _skip_ws(s, pos, end)
            if pos >= end or s[pos] != 34:
                return FAIL
            key_start = out.size
            pos = _string(s, pos, end, out, tmp)
            if pos < 0:
                return FAIL
            # a duplicate key: orjson keeps the last value at the first place
            if members != NULL:
                for j in range(n):
                    if _same_key(out, members[j].key_start, members[j].key_len, key_start, out.size - key_start):
                        return FAIL
            else:
                for j in range(n):
                    if _same_key(out, keys[j][0], keys[j][1], key_start, out.size - key_start):
                        return FAIL
                keys[n][0] = key_start
                keys[n][1] = out.size - key_start
            pos = _skip_ws(s, pos, end)
            if pos >= end or s[pos] != 58:
                return FAIL
            tb_char(out, 58)
            pos += 1
        val_start = out.size
        room = 0
        if doc != NULL:
            pos = _skip_ws(s, pos, end)
            if pos < end and s[pos] == 123:
                room = MAX_CHILDREN - doc.nchildren
                if room > MAX_OBJECT:
                    room = MAX_OBJECT
                if room <= 0 or depth >= max_depth:
                    return FAIL
                children = &doc.children[doc.nchildren]
                kind = K_OBJECT
                simple = 0
                pos = _container(s, pos, end, out, tmp, depth + 1, max_depth, children, &room, NULL)
                if pos >= 0:
                    doc.nchildren += room
            else:
                pos = _value(s, pos, end, out, tmp, depth, max_depth, &kind, &simple)
        else:
            pos = _value(s, pos, end, out, tmp, depth, max_depth, &kind, &simple)
        if pos < 0:
            return FAIL
        if members != NULL:
            members[n].key_start = key_start
            members[n].key_len = val_start - 1 - key_start
            members[n].val_start = val_start
            members[n].val_len = out.size - val_start
            members[n].kind = kind
            members[n].alive = 1
            members[n].simple_int = simple
            members[n].first_child = -1
            members[n].child_count = 0
            members[n].children_alive = 0
            if doc != NULL and kind == K_OBJECT:
                members[n].first_child = doc.nchildren - room
                members[n].child_count = room
                members[n].children_alive = room
        n += 1
        pos = _skip_ws(s, pos, end)
        if pos >= end:
            return FAIL
        if s[pos] == close:
            tb_char(out, <char>close)
            if count != NULL:
                count[0] = n
            return pos + 1
        if s[pos] != 44:
            return FAIL
        pos += 1


cdef int _document(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end, Doc* doc, TextBuf* out,
                   TextBuf* tmp) except -2:
    """The document line ``s[pos:end]`` noted in ``doc`` (its canonical text in ``out``); FAIL when not handled."""
    cdef Py_ssize_t count = MAX_TOP
    out.size = 0
    doc.ntop = 0
    doc.nchildren = 0
    pos = _skip_ws(s, pos, end)
    if pos >= end or s[pos] != 123:
        return FAIL
    pos = _container(s, pos, end, out, tmp, 1, doc.max_depth, doc.top, &count, doc)
    if pos < 0 or _skip_ws(s, pos, end) != end:
        return FAIL
    doc.ntop = count
    return 0


# ---- the ECS mapping of ``elasticsearch.ecs_record`` on the noted members ----------------------------

cdef inline int _is_key(TextBuf* b, Member* m, bytes key) noexcept:
    return m.key_len == PyBytes_GET_SIZE(key) and memcmp(b.data + m.key_start, PyBytes_AS_STRING(key), m.key_len) == 0


cdef Member* _top(Doc* d, TextBuf* b, bytes key) noexcept:
    """The live top-level member named ``key`` (a quoted JSON string), or NULL."""
    cdef Py_ssize_t i
    for i in range(d.ntop):
        if d.top[i].alive and _is_key(b, &d.top[i], key):
            return &d.top[i]
    return NULL


cdef inline bint _none(Member* m) noexcept:
    return m == NULL or m.kind == K_NULL


cdef inline bint _text_or_none(Member* m) noexcept:
    return m == NULL or m.kind == K_NULL or m.kind == K_STRING


cdef Member* _pop(Doc* d, TextBuf* b, bytes parent, bytes child, bytes dotted_key, bint dotted) noexcept:
    """``_pop`` of the Python decoder: ``parent.child`` of a nested object (the parent goes when left
    empty), else the dotted key when the document has dotted keys; the member removed, or NULL."""
    cdef Member* p = _top(d, b, parent)
    cdef Member* c
    cdef Py_ssize_t i
    if p != NULL and p.kind == K_OBJECT:
        for i in range(p.first_child, p.first_child + p.child_count):
            c = &d.children[i]
            if c.alive and _is_key(b, c, child):
                c.alive = 0
                p.children_alive -= 1
                if p.children_alive == 0:
                    p.alive = 0
                return c
    if dotted:
        c = _top(d, b, dotted_key)
        if c != NULL:
            c.alive = 0
        return c
    return NULL


cdef Member* _take(Doc* d, TextBuf* b, bytes key) noexcept:
    """The top-level member ``key`` removed (``doc.pop``), or NULL."""
    cdef Member* m = _top(d, b, key)
    if m != NULL:
        m.alive = 0
    return m


cdef Member* _take_text(Doc* d, TextBuf* b, bytes key) noexcept:
    """The top-level member ``key`` removed when it is text (``doc.get(key).__class__ is str``), else NULL."""
    cdef Member* m = _top(d, b, key)
    if m != NULL and m.kind == K_STRING:
        m.alive = 0
        return m
    return NULL


cdef int _append(Doc* d, TextBuf* b, Member* m, const char* prefix, Py_ssize_t plen, const char* suffix,
                 Py_ssize_t slen) except -2:
    """``m`` moved to the end under the name ``prefix + its name + suffix`` (FAIL when that name is taken:
    the Python decoder would then overwrite a member in place)."""
    cdef Py_ssize_t start = b.size, i
    if d.ntop >= MAX_TOP:
        return FAIL
    tb_reserve(b, plen + m.key_len + slen)  # the name is copied from this buffer: no moving it meanwhile
    tb_char(b, 34)
    tb_write(b, prefix, plen)
    tb_write(b, b.data + m.key_start + 1, m.key_len - 2)
    tb_write(b, suffix, slen)
    tb_char(b, 34)
    for i in range(d.ntop):
        if d.top[i].alive and _same_key(b, d.top[i].key_start, d.top[i].key_len, start, b.size - start):
            return FAIL
    d.top[d.ntop] = m[0]
    d.top[d.ntop].key_start = start
    d.top[d.ntop].key_len = b.size - start
    d.top[d.ntop].alive = 1
    d.ntop += 1
    m.alive = 0
    return 0


cdef int _write_value(Doc* d, TextBuf* b, TextBuf* out, Member* m) except -1:
    """A member's value, without the children the mapping took."""
    cdef Py_ssize_t i
    cdef bint first = True
    cdef Member* c
    if m.kind != K_OBJECT or m.first_child < 0 or m.children_alive == m.child_count:
        return tb_write(out, b.data + m.val_start, m.val_len)
    tb_char(out, 123)
    for i in range(m.first_child, m.first_child + m.child_count):
        c = &d.children[i]
        if not c.alive:
            continue
        if not first:
            tb_char(out, 44)
        first = False
        tb_write(out, b.data + c.key_start, c.key_len)
        tb_char(out, 58)
        tb_write(out, b.data + c.val_start, c.val_len)
    return tb_char(out, 125)


cdef int _flatten_service(Doc* d, TextBuf* b) except -2:
    """The rest of a nested ``service`` object as ``service.<key>`` members at the end."""
    cdef Member* p = _top(d, b, b'"service"')
    cdef Py_ssize_t i
    cdef Member child
    if p == NULL or p.kind != K_OBJECT:
        return 0
    p.alive = 0
    for i in range(p.first_child, p.first_child + p.child_count):
        if d.children[i].alive:
            child = d.children[i]
            child.first_child = -1
            if _append(d, b, &child, b"service.", 8, b"", 0) == FAIL:
                return FAIL
    return 0


DECLARED_KEYS = (b'"timestamp"', b'"level"', b'"service"', b'"message"', b'"user_id"', b'"request_id"',
                 b'"error_code"', b'"duration_ms"')


cdef struct StrColumn:
    TextBuf data      # the UTF-8 text of the values, one after the other
    TextBuf offsets   # int32 offsets into ``data``, one more than the rows
    TextBuf valid     # one byte per row: 1 for a value, 0 for null
    Py_ssize_t rows
    Py_ssize_t nulls


cdef int sc_init(StrColumn* c, Py_ssize_t cap) except -1:
    cdef int zero = 0
    tb_init(&c.data, cap)
    tb_init(&c.offsets, 4096)
    tb_init(&c.valid, 1024)
    c.rows = 0
    c.nulls = 0
    return tb_write(&c.offsets, <const char*>&zero, 4)


cdef void sc_free(StrColumn* c) noexcept:
    tb_free(&c.data)
    tb_free(&c.offsets)
    tb_free(&c.valid)


cdef int sc_end_row(StrColumn* c, char valid) except -1:
    cdef int offset
    if c.data.size > 0x7FFFFFFF:
        raise OverflowError("column too large")
    offset = <int>c.data.size
    tb_write(&c.offsets, <const char*>&offset, 4)
    tb_char(&c.valid, valid)
    c.rows += 1
    if not valid:
        c.nulls += 1
    return 0


cdef inline int sc_text(StrColumn* c, const char* text, Py_ssize_t length) except -1:
    tb_write(&c.data, text, length)
    return sc_end_row(c, 1)


cdef int sc_json(StrColumn* col, TextBuf* b, Member* m) except -1:
    """The text of the canonical JSON string of ``m`` (escapes as orjson writes them undone)."""
    cdef const unsigned char* s = <const unsigned char*>(b.data + m.val_start + 1)
    cdef Py_ssize_t n = m.val_len - 2, i = 0, start = 0
    cdef unsigned char c
    cdef int unit
    while i < n:
        if s[i] != 92:
            i += 1
            continue
        tb_write(&col.data, <const char*>(s + start), i - start)
        c = s[i + 1]
        if c == 110:
            tb_char(&col.data, 10)
        elif c == 114:
            tb_char(&col.data, 13)
        elif c == 116:
            tb_char(&col.data, 9)
        elif c == 98:
            tb_char(&col.data, 8)
        elif c == 102:
            tb_char(&col.data, 12)
        elif c == 117:
            unit = _hex4(s, i + 2, n)
            tb_char(&col.data, <char>unit)  # orjson escapes only code points below 0x20 this way
            i += 4
        else:
            tb_char(&col.data, <char>c)
        i += 2
        start = i
    tb_write(&col.data, <const char*>(s + start), n - start)
    return sc_end_row(col, 1)


cdef inline int sc_null(StrColumn* c) except -1:
    return sc_end_row(c, 0)


cdef object _validity(TextBuf* valid, Py_ssize_t rows):
    """The validity bitmap of one-byte flags (LSB first, as Arrow lays it out)."""
    cdef bytearray bits = bytearray((rows + 7) // 8)
    cdef Py_ssize_t i
    for i in range(rows):
        if valid.data[i]:
            bits[i >> 3] |= 1 << (i & 7)
    return pa.py_buffer(bytes(bits))


cdef object sc_array(StrColumn* c):
    """The column as an Arrow string array."""
    validity = _validity(&c.valid, c.rows) if c.nulls else None
    return pa.Array.from_buffers(
        pa.string(), c.rows,
        [validity, pa.py_buffer(tb_bytes(&c.offsets, 0, c.offsets.size)), pa.py_buffer(tb_bytes(&c.data, 0, c.data.size))],
        c.nulls,
    )


cdef class Columns:
    """The work space of one body (kept for the next one): the scanner's buffers, and the declared
    columns, attributes and lines of the records decoded so far, as Arrow buffers."""

    cdef StrColumn timestamp, level, service, message, user_id, request_id, error_code, attributes
    cdef TextBuf duration, duration_valid, scratch, tmp, attrs, out
    cdef Py_ssize_t duration_count
    cdef Doc* doc

    def __cinit__(self):
        self.doc = <Doc*>malloc(sizeof(Doc))
        if self.doc == NULL:
            raise MemoryError()
        for column in range(8):
            sc_init(self._column(column), 1024)
        tb_init(&self.duration, 1024)
        tb_init(&self.duration_valid, 1024)
        tb_init(&self.scratch, 4096)
        tb_init(&self.tmp, 256)
        tb_init(&self.attrs, 1024)
        tb_init(&self.out, 65536)
        self.duration_count = 0

    cdef StrColumn* _column(self, int number) noexcept:
        if number == 0:
            return &self.timestamp
        if number == 1:
            return &self.level
        if number == 2:
            return &self.service
        if number == 3:
            return &self.message
        if number == 4:
            return &self.user_id
        if number == 5:
            return &self.request_id
        if number == 6:
            return &self.error_code
        return &self.attributes

    cdef int reset(self) except -1:
        """Empty columns and lines, the buffers kept."""
        cdef StrColumn* column
        cdef int zero = 0
        for number in range(8):
            column = self._column(number)
            column.data.size = 0
            column.offsets.size = 0
            column.valid.size = 0
            column.rows = 0
            column.nulls = 0
            tb_write(&column.offsets, <const char*>&zero, 4)
        self.duration.size = 0
        self.duration_valid.size = 0
        self.duration_count = 0
        self.out.size = 0
        return 0

    cdef Py_ssize_t capacity(self) noexcept:
        """The bytes its buffers hold."""
        cdef Py_ssize_t total = self.out.cap + self.scratch.cap + self.duration.cap
        for number in range(8):
            total += self._column(number).data.cap + self._column(number).offsets.cap
        return total

    def __dealloc__(self):
        # the buffers start zeroed (NULL): freeing those never allocated is safe
        for number in range(8):
            sc_free(self._column(number))
        tb_free(&self.duration)
        tb_free(&self.duration_valid)
        tb_free(&self.scratch)
        tb_free(&self.tmp)
        tb_free(&self.attrs)
        tb_free(&self.out)
        free(self.doc)

    cdef int add_duration(self, object value) except -1:
        cdef double d = 0.0
        if value is not None:
            d = value
            self.duration_count += 1
        tb_write(&self.duration, <const char*>&d, 8)
        return tb_char(&self.duration_valid, 0 if value is None else 1)

    cdef dict arrays(self):
        """The declared columns by name (the optional ones only when some record has them)."""
        cdef Py_ssize_t rows = self.timestamp.rows
        columns = {"timestamp": sc_array(&self.timestamp), "level": sc_array(&self.level),
                   "service": sc_array(&self.service), "message": sc_array(&self.message)}
        if self.user_id.nulls < rows:
            columns["user_id"] = sc_array(&self.user_id)
        if self.request_id.nulls < rows:
            columns["request_id"] = sc_array(&self.request_id)
        if self.error_code.nulls < rows:
            columns["error_code"] = sc_array(&self.error_code)
        if self.duration_count:
            validity = _validity(&self.duration_valid, rows) if self.duration_count < rows else None
            columns["duration_ms"] = pa.Array.from_buffers(
                pa.float64(), rows, [validity, pa.py_buffer(tb_bytes(&self.duration, 0, self.duration.size))],
                rows - self.duration_count,
            )
        return columns


cdef inline int _field(TextBuf* out, const char* name, Py_ssize_t length, TextBuf* b, Member* m) except -1:
    tb_write(out, name, length)
    return tb_write(out, b.data + m.val_start, m.val_len)


cdef inline int _optional(TextBuf* out, const char* name, Py_ssize_t length, TextBuf* b, Member* m,
                          StrColumn* column) except -1:
    if _none(m):
        return sc_null(column)
    _field(out, name, length, b, m)
    return sc_json(column, b, m)


cdef Py_ssize_t _code_points(TextBuf* b, Member* m) noexcept:
    """The length of a canonical JSON string's text in code points (escapes count once)."""
    cdef const unsigned char* s = <const unsigned char*>(b.data + m.val_start + 1)
    cdef Py_ssize_t n = m.val_len - 2, i = 0, count = 0
    while i < n:
        if s[i] == 92:
            i += 6 if s[i + 1] == 117 else 2
        else:
            if (s[i] & 0xC0) != 0x80:
                count += 1
            i += 1
            continue
        count += 1
    return count


cdef int _duration_text(TextBuf* out, double value) except -1:
    """``value`` as orjson writes a float (Python's shortest repr agrees where it has no exponent)."""
    cdef char* text = PyOS_double_to_string(value, b"r", 0, Py_DTSF_ADD_DOT_0, NULL)
    cdef Py_ssize_t length
    if text == NULL:
        raise MemoryError()
    try:
        length = strlen(text)
        if memchr(text, 101, length) == NULL:
            return tb_write(out, text, length)
    finally:
        PyMem_Free(text)
    written = orjson.dumps(value)
    return tb_write(out, PyBytes_AS_STRING(written), PyBytes_GET_SIZE(written))


cdef inline bint _digits(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] < 48 or s[i] > 57:
            return False
    return True


cdef bint _rfc3339(TextBuf* b, Member* m) noexcept nogil:
    """Whether a string member is an RFC 3339 date-time the validator takes as is (``ARROW_RFC3339``:
    ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM)``, year 0001 at least)."""
    cdef const unsigned char* s = <const unsigned char*>(b.data + m.val_start + 1)
    cdef Py_ssize_t n = m.val_len - 2, i = 19, f
    if n < 20 or not (_digits(s, 4) and s[4] == 45 and _digits(s + 5, 2) and s[7] == 45 and _digits(s + 8, 2)
                      and s[10] == 84 and _digits(s + 11, 2) and s[13] == 58 and _digits(s + 14, 2)
                      and s[16] == 58 and _digits(s + 17, 2)):
        return False
    if s[0] == 48 and s[1] == 48 and s[2] == 48 and s[3] == 48:
        return False
    if not ((s[5] == 48 and s[6] != 48) or (s[5] == 49 and s[6] <= 50)):
        return False
    if s[11] > 50 or (s[11] == 50 and s[12] > 51) or s[14] > 53 or s[17] > 53:
        return False
    if s[i] == 46:
        f = i + 1
        while f < n and 48 <= s[f] <= 57:
            f += 1
        if f == i + 1 or f - i - 1 > 6:
            return False
        i = f
    if i == n - 1:
        return s[i] == 90
    if i != n - 6 or (s[i] != 43 and s[i] != 45) or not (_digits(s + i + 1, 2) and s[i + 3] == 58 and _digits(s + i + 4, 2)):
        return False
    return (s[i + 1] < 50 or (s[i + 1] == 50 and s[i + 2] <= 51)) and s[i + 4] <= 53


cdef Py_ssize_t _braces(const unsigned char* text, Py_ssize_t length) noexcept nogil:
    """How many ``{`` and ``[`` the text has (as ``text.count("{") + text.count("[")``)."""
    cdef Py_ssize_t i, count = 0
    for i in range(length):
        count += (text[i] == 123) + (text[i] == 91)
    return count


cdef int _record(Doc* d, TextBuf* b, TextBuf* out, TextBuf* attrs, Columns cols, bytes received,
                 bytes index_json, bytes index_text, int max_fields, int max_depth) except -2:
    """The record of the noted document appended to ``out`` (its line) and ``cols``; FAIL when not handled."""
    cdef Py_ssize_t i, fields = 4
    cdef bint dotted = False, first = True
    cdef Member* stamp
    cdef Member* level
    cdef Member* service
    cdef Member* user
    cdef Member* request
    cdef Member* error
    cdef Member* nanos
    cdef Member* message
    cdef Member* m
    cdef object duration = None
    cdef long long ns = 0
    cdef bytes key
    for i in range(d.ntop):
        if memchr(b.data + d.top[i].key_start, 46, d.top[i].key_len) != NULL:
            dotted = True
            break
    stamp = _take(d, b, b'"@timestamp"')
    if _none(stamp):
        stamp = _take(d, b, b'"timestamp"')
    level = _pop(d, b, b'"log"', b'"level"', b'"log.level"', dotted)
    if _none(level):
        level = _take(d, b, b'"level"')
    service = _pop(d, b, b'"service"', b'"name"', b'"service.name"', dotted)
    if not _none(service) and service.kind != K_STRING:
        return FAIL  # a number or flag as the service: the Python decoder writes it as text
    if _none(service) or service.val_len == 2:
        m = _take_text(d, b, b'"service"')
        if m != NULL:
            service = m
    user = _pop(d, b, b'"user"', b'"id"', b'"user.id"', dotted)
    if _none(user) or user.val_len == 2:
        if not _none(user) and user.kind != K_STRING:
            return FAIL
        user = _pop(d, b, b'"user"', b'"name"', b'"user.name"', dotted)
    if _none(user):
        user = _take_text(d, b, b'"user_id"')
    request = _pop(d, b, b'"trace"', b'"id"', b'"trace.id"', dotted)
    if _none(request):
        request = _take_text(d, b, b'"request_id"')
    error = _pop(d, b, b'"error"', b'"code"', b'"error.code"', dotted)
    if _none(error):
        error = _take_text(d, b, b'"error_code"')
    nanos = _pop(d, b, b'"event"', b'"duration"', b'"event.duration"', dotted)
    if not _none(nanos):
        if not nanos.simple_int:
            return FAIL
        for i in range(nanos.val_start, nanos.val_start + nanos.val_len):
            ns = ns * 10 + (b.data[i] - 48)
        duration = <double>ns * 1e-6
    elif _top(d, b, b'"duration_ms"') != NULL:
        return FAIL
    message = _take(d, b, b'"message"')
    if _none(message):
        message = _pop(d, b, b'"event"', b'"original"', b'"event.original"', dotted)
    if not (_text_or_none(stamp) and _text_or_none(level) and _text_or_none(user) and _text_or_none(request)
            and _text_or_none(error) and _text_or_none(message)):
        return FAIL
    if not _none(stamp) and not _rfc3339(b, stamp):
        return FAIL  # other timestamp text: ``timestamp_text`` reads it
    if not _none(message) and _code_points(b, message) > 65536:
        return FAIL  # cut by the Python decoder, the length kept
    if _flatten_service(d, b) == FAIL:
        return FAIL
    for key in DECLARED_KEYS:
        m = _top(d, b, key)
        if m != NULL and _append(d, b, m, b"", 0, b"_original", 9) == FAIL:
            return FAIL
    # the attributes first: a record the validation would check on its own is not taken
    attrs.size = 0
    for i in range(d.ntop):
        m = &d.top[i]
        if not m.alive:
            continue
        if _is_key(b, m, b'"level_original"'):
            return FAIL  # the batch merges a normalized level's original as a new member
        tb_char(attrs, 123 if first else 44)
        first = False
        tb_write(attrs, b.data + m.key_start, m.key_len)
        tb_char(attrs, 58)
        _write_value(d, b, attrs, m)
        fields += 1
    fields += (not _none(user)) + (not _none(request)) + (not _none(error)) + (duration is not None)
    if fields >= max_fields:
        return FAIL
    if not first:
        tb_char(attrs, 125)
        if _braces(<const unsigned char*>attrs.data, attrs.size) > max_depth:
            return FAIL
    # the line, the declared fields in the record's order, and the columns
    if _none(stamp):
        tb_write(out, b'{"timestamp":"', 14)
        tb_write(out, PyBytes_AS_STRING(received), PyBytes_GET_SIZE(received))
        tb_char(out, 34)
        sc_text(&cols.timestamp, PyBytes_AS_STRING(received), PyBytes_GET_SIZE(received))
    else:
        _field(out, b'{"timestamp":', 13, b, stamp)
        sc_json(&cols.timestamp, b, stamp)
    if _none(level):
        tb_write(out, b',"level":"INFO"', 15)
        sc_text(&cols.level, b"INFO", 4)
    else:
        _field(out, b',"level":', 9, b, level)
        sc_json(&cols.level, b, level)
    if _none(service) or service.val_len == 2:
        tb_write(out, b',"service":', 11)
        tb_write(out, PyBytes_AS_STRING(index_json), PyBytes_GET_SIZE(index_json))
        sc_text(&cols.service, PyBytes_AS_STRING(index_text), PyBytes_GET_SIZE(index_text))
    else:
        _field(out, b',"service":', 11, b, service)
        sc_json(&cols.service, b, service)
    if _none(message):
        tb_write(out, b',"message":""', 13)
        sc_text(&cols.message, b"", 0)
    else:
        _field(out, b',"message":', 11, b, message)
        sc_json(&cols.message, b, message)
    _optional(out, b',"user_id":', 11, b, user, &cols.user_id)
    _optional(out, b',"request_id":', 14, b, request, &cols.request_id)
    _optional(out, b',"error_code":', 14, b, error, &cols.error_code)
    if duration is not None:
        tb_write(out, b',"duration_ms":', 15)
        _duration_text(out, duration)
    cols.add_duration(duration)
    if first:
        tb_char(out, 125)
        sc_null(&cols.attributes)
    else:
        tb_char(out, 44)
        tb_write(out, attrs.data + 1, attrs.size - 1)
        sc_text(&cols.attributes, attrs.data, attrs.size)
    tb_char(out, 10)
    return 0


_POOL = []  # work spaces of finished bodies (one per decoding thread at most, in practice)
_POOL_SIZE = 4
_KEPT_CAPACITY = 64 << 20  # a work space grown past this by a huge body is let go


def bulk_documents(bytes body, object default_index, str received, int max_fields, int max_depth,
                   object action_of):
    """The records of a bulk body whose items are all ``create``/``index`` pairs of ECS documents:
    ``(columns, attributes, payload, items)`` where ``columns`` holds the declared fields by name
    (Arrow arrays), ``attributes`` each record's attributes as JSON text (an Arrow array, null for
    none), ``payload`` the records' NDJSON lines and ``items`` each item's ``(op, index, id)`` (``id``
    None when generated); None when any item needs the Python decoder. ``action_of(line, number)``
    reads an action line as ``(op, metadata)`` (raising for a malformed one)."""
    cdef Columns work
    try:
        work = _POOL.pop()
    except IndexError:
        work = Columns()
    work.reset()
    try:
        return _documents(work, body, default_index, received, max_fields, max_depth, action_of)
    finally:
        if len(_POOL) < _POOL_SIZE and work.capacity() <= _KEPT_CAPACITY:
            _POOL.append(work)


cdef object _documents(Columns cols, bytes body, object default_index, str received, int max_fields, int max_depth,
                       object action_of):
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(body), pos = 0, end, doc_end, line_number = 0
    cdef Py_ssize_t last_start = 0, last_length = -1
    cdef const unsigned char* newline
    cdef Doc* doc = cols.doc
    cdef dict actions = {}
    cdef list items = []
    cdef bytes received_text = received.encode()
    cdef tuple action = None
    cdef tuple known = None
    doc.max_depth = max_depth
    while pos < size:
        newline = <const unsigned char*>memchr(s + pos, 10, size - pos)
        end = size if newline == NULL else newline - s
        line_number += 1
        if end == pos:
            pos = end + 1
            continue
        if end - pos != last_length or memcmp(s + pos, s + last_start, last_length) != 0:
            line = body[pos:end]
            action = actions.get(line)
            if action is None:
                action = _action(line, line_number, default_index, action_of)
                if action is None:
                    return None
                if len(actions) < 256:
                    actions[line] = action
            last_start, last_length = pos, end - pos
            known = _index_texts(action[1])
        if end >= size:
            return None  # no document line
        pos = end + 1
        newline = <const unsigned char*>memchr(s + pos, 10, size - pos)
        doc_end = size if newline == NULL else newline - s
        line_number += 1
        if doc_end == pos:
            return None
        if _document(s, pos, doc_end, doc, &cols.scratch, &cols.tmp) == FAIL:
            return None
        if _record(doc, &cols.scratch, &cols.out, &cols.attrs, cols, received_text, known[0], known[1],
                   max_fields, max_depth) == FAIL:
            return None
        items.append(action)
        pos = doc_end + 1
    if not items:
        return None
    return cols.arrays(), sc_array(&cols.attributes), tb_bytes(&cols.out, 0, cols.out.size), items


cdef tuple _index_texts(str index):
    """The service named after an index (cut to the schema's length): its JSON text and UTF-8."""
    text = index[:128] if len(index) > 128 else index
    return orjson.dumps(text), text.encode()


def _action(bytes line, Py_ssize_t number, object default_index, object action_of):
    """``(op, index, id)`` of a ``create``/``index`` action line, or None for anything else."""
    try:
        op, meta = action_of(line, number)
    except Exception:  # a malformed line: the Python decoder refuses the body and says why
        return None
    if op != "index" and op != "create":
        return None
    es_index = meta.get("_index") or default_index
    if es_index.__class__ is not str or not es_index:
        return None
    es_id = meta.get("_id")
    return op, es_index, None if es_id is None else str(es_id)
