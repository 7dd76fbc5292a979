# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled decoder of Fluent forward PackedForward payloads: the concatenated msgpack
``[time, record]`` entries read straight from the bytes (no Python dict per record) into the declared
columns, each record's attributes as JSON text and its NDJSON line, exactly as ``forward.py``'s
``fluent_fields`` and ``orjson`` make them.

It covers the common records: text keys, values that are text, numbers, booleans, nulls, and maps and
arrays of them; a level field, or a message no format detection would look at. Anything else (a
message to parse, a record without a message, keys named like declared fields or ``tag``, duplicate
keys, binary or extension values, text that is not UTF-8, a long message, too many fields, an entry
that is not ``[time, map]``) makes :func:`packed_columns` return None: ``forward.py`` then decodes the
message with its Python code, which decides.
"""

from cpython.float cimport PyFloat_FromDouble
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport snprintf
from libc.string cimport memcmp, memcpy

include "protocols/_textbuf.pxi"
include "protocols/_rfc3339.pxi"

DEF MAX_KEYS = 128
DEF MAX_NESTING = 40
DEF MAX_MESSAGE_BYTES = 65536

cdef enum Kind:
    K_NIL, K_BOOL, K_INT, K_UINT, K_FLOAT, K_STR, K_BIN, K_ARRAY, K_MAP, K_EXT

cdef struct Reader:
    const unsigned char* pos
    const unsigned char* end

cdef struct Item:
    int kind
    bint flag             # K_BOOL
    int64_t i             # K_INT
    uint64_t u            # K_UINT
    double f              # K_FLOAT
    const char* text      # K_STR, K_BIN, K_EXT data
    Py_ssize_t size       # bytes (K_STR, K_BIN, K_EXT), items (K_ARRAY), pairs (K_MAP)
    int ext_type          # K_EXT


# reading msgpack -------------------------------------------------------------------------------------
cdef inline int need(Reader* r, Py_ssize_t n) noexcept nogil:
    return 0 if r.end - r.pos >= n else -1


cdef inline uint64_t be(const unsigned char* p, int n) noexcept nogil:
    cdef uint64_t value = 0
    cdef int k
    for k in range(n):
        value = (value << 8) | p[k]
    return value


cdef int read_item(Reader* r, Item* item) noexcept nogil:
    """The header of the next value (its payload for scalars); -1 when the bytes run out or are not
    msgpack."""
    cdef unsigned char c
    cdef int n
    cdef uint32_t f32
    cdef float as_float
    cdef uint64_t bits
    if r.pos >= r.end:
        return -1
    c = r.pos[0]
    r.pos += 1
    if c <= 0x7F:
        item.kind = K_INT
        item.i = c
        return 0
    if c >= 0xE0:
        item.kind = K_INT
        item.i = <int64_t>c - 256
        return 0
    if c <= 0x8F:
        item.kind = K_MAP
        item.size = c & 0x0F
        return 0
    if c <= 0x9F:
        item.kind = K_ARRAY
        item.size = c & 0x0F
        return 0
    if c <= 0xBF:
        item.kind = K_STR
        item.size = c & 0x1F
        return take_bytes(r, item)
    if c == 0xC0:
        item.kind = K_NIL
        return 0
    if c == 0xC2 or c == 0xC3:
        item.kind = K_BOOL
        item.flag = c == 0xC3
        return 0
    if c == 0xC4 or c == 0xC5 or c == 0xC6 or c == 0xD9 or c == 0xDA or c == 0xDB:
        n = 1 if (c == 0xC4 or c == 0xD9) else (2 if (c == 0xC5 or c == 0xDA) else 4)
        if need(r, n) < 0:
            return -1
        item.size = <Py_ssize_t>be(r.pos, n)
        r.pos += n
        item.kind = K_BIN if c <= 0xC6 else K_STR
        return take_bytes(r, item)
    if c == 0xC7 or c == 0xC8 or c == 0xC9:
        n = 1 if c == 0xC7 else (2 if c == 0xC8 else 4)
        if need(r, n + 1) < 0:
            return -1
        item.size = <Py_ssize_t>be(r.pos, n)
        item.ext_type = <signed char>r.pos[n]
        r.pos += n + 1
        item.kind = K_EXT
        return take_bytes(r, item)
    if c >= 0xD4 and c <= 0xD8:
        if need(r, 1) < 0:
            return -1
        item.size = 1 << (c - 0xD4)
        item.ext_type = <signed char>r.pos[0]
        r.pos += 1
        item.kind = K_EXT
        return take_bytes(r, item)
    if c == 0xCA:
        if need(r, 4) < 0:
            return -1
        f32 = <uint32_t>be(r.pos, 4)
        memcpy(&as_float, &f32, 4)
        r.pos += 4
        item.kind = K_FLOAT
        item.f = as_float
        return 0
    if c == 0xCB:
        if need(r, 8) < 0:
            return -1
        bits = be(r.pos, 8)
        memcpy(&item.f, &bits, 8)
        r.pos += 8
        item.kind = K_FLOAT
        return 0
    if c >= 0xCC and c <= 0xCF:
        n = 1 << (c - 0xCC)
        if need(r, n) < 0:
            return -1
        item.u = be(r.pos, n)
        r.pos += n
        if item.u <= <uint64_t>0x7FFFFFFFFFFFFFFF:
            item.kind = K_INT
            item.i = <int64_t>item.u
        else:
            item.kind = K_UINT
        return 0
    if c >= 0xD0 and c <= 0xD3:
        n = 1 << (c - 0xD0)
        if need(r, n) < 0:
            return -1
        bits = be(r.pos, n)
        r.pos += n
        item.kind = K_INT
        if n == 1:
            item.i = <signed char>bits
        elif n == 2:
            item.i = <short>(<uint16_t>bits)
        elif n == 4:
            item.i = <int>(<uint32_t>bits)
        else:
            item.i = <int64_t>bits
        return 0
    if c == 0xDC or c == 0xDD or c == 0xDE or c == 0xDF:
        n = 2 if (c == 0xDC or c == 0xDE) else 4
        if need(r, n) < 0:
            return -1
        item.size = <Py_ssize_t>be(r.pos, n)
        r.pos += n
        item.kind = K_ARRAY if c <= 0xDD else K_MAP
        return 0
    return -1  # 0xC1 is never used


cdef inline int take_bytes(Reader* r, Item* item) noexcept nogil:
    if item.size < 0 or need(r, item.size) < 0:
        return -1
    item.text = <const char*>r.pos
    r.pos += item.size
    return 0


cdef int skip_value(Reader* r, int depth) noexcept nogil:
    """Step over one value and what it holds; -1 when malformed or nested past MAX_NESTING."""
    cdef Item item
    cdef Py_ssize_t k, count
    if depth > MAX_NESTING or read_item(r, &item) < 0:
        return -1
    if item.kind == K_ARRAY or item.kind == K_MAP:
        count = item.size * 2 if item.kind == K_MAP else item.size
        if count > r.end - r.pos:  # each value takes one byte at least
            return -1
        for k in range(count):
            if skip_value(r, depth + 1) < 0:
                return -1
    return 0


# JSON of msgpack values ------------------------------------------------------------------------------
cdef object _dumps = None


cdef int write_float(TextBuf* buf, double value) except -1:
    """A float as orjson writes it (shortest round trip; NaN and infinities as null)."""
    cdef bytes text = _dumps(PyFloat_FromDouble(value))
    tb_write(buf, text, len(text))
    return 0


cdef int write_uint(TextBuf* buf, uint64_t value) except -1:
    cdef char digits[24]
    cdef int n = snprintf(digits, 24, b"%llu", <unsigned long long>value)
    tb_write(buf, digits, n)
    return 0


cdef bint contains(const char* text, Py_ssize_t size, const char* needle, Py_ssize_t length) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(size - length + 1):
        if text[k] == needle[0] and memcmp(text + k, needle, length) == 0:
            return True
    return False


cdef bint same_key_twice(const char** names, Py_ssize_t* sizes, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t a, b
    for a in range(1, count):
        for b in range(a):
            if sizes[a] == sizes[b] and memcmp(names[a], names[b], sizes[a]) == 0:
                return True
    return False


cdef int write_value(TextBuf* buf, Reader* r, int depth) except -2:
    """The next value as JSON text as orjson writes the object msgpack makes of it; 1 when that value is
    not one the fast path writes (binary, extension, a key that is not text or comes twice)."""
    cdef Item item
    cdef Py_ssize_t k
    cdef const char* names[MAX_KEYS]
    cdef Py_ssize_t sizes[MAX_KEYS]
    if depth > MAX_NESTING or read_item(r, &item) < 0:
        return 1
    if item.kind == K_STR:
        try:
            tb_json_string(buf, item.text, item.size)
        except ValueError:
            return 1
    elif item.kind == K_INT:
        tb_int(buf, item.i)
    elif item.kind == K_UINT:
        write_uint(buf, item.u)
    elif item.kind == K_FLOAT:
        write_float(buf, item.f)
    elif item.kind == K_BOOL:
        tb_write(buf, b"true", 4) if item.flag else tb_write(buf, b"false", 5)
    elif item.kind == K_NIL:
        tb_write(buf, b"null", 4)
    elif item.kind == K_ARRAY:
        if item.size > r.end - r.pos:
            return 1
        tb_char(buf, b'[')
        for k in range(item.size):
            if k:
                tb_char(buf, b',')
            if write_value(buf, r, depth + 1):
                return 1
        tb_char(buf, b']')
    elif item.kind == K_MAP:
        if item.size > MAX_KEYS:
            return 1
        count = item.size
        tb_char(buf, b'{')
        for k in range(count):
            if k:
                tb_char(buf, b',')
            if read_item(r, &item) < 0 or item.kind != K_STR:
                return 1
            names[k] = item.text
            sizes[k] = item.size
            try:
                tb_json_string(buf, item.text, item.size)
            except ValueError:
                return 1
            tb_char(buf, b':')
            if write_value(buf, r, depth + 1):
                return 1
        if same_key_twice(names, sizes, count):
            return 1
        tb_char(buf, b'}')
    else:
        return 1
    return 0


# the roles of a record's keys (forward.py's _ROLES) -------------------------------------------------
DEF ROLES = 7
DEF R_MESSAGE = 0
DEF R_LEVEL = 1
DEF R_SERVICE = 2
DEF R_DURATION = 6

cdef list _ROLE_NAMES = [
    [b"message", b"msg", b"log", b"MESSAGE"],
    [b"level", b"severity", b"lvl", b"levelname", b"loglevel", b"log_level"],
    [b"service", b"service_name", b"app", b"application"],
    [b"user_id", b"userId"],
    [b"request_id", b"requestId", b"trace_id", b"traceId"],
    [b"error_code"],
    [b"duration_ms"],
]
#: keys a record may not keep as attributes on the fast path (forward.py renames or replaces them)
cdef list _RESERVED = [b"timestamp", b"level", b"service", b"message", b"user_id", b"request_id",
                       b"error_code", b"duration_ms", b"tag"]
cdef list _OUT_NAMES = [b',"user_id":', b',"request_id":', b',"error_code":']

DEF KNOWN = 32
cdef struct Known:
    const char* name
    Py_ssize_t size
    int role      # -1: reserved, not a role
    int priority

cdef Known _known[KNOWN]
cdef int _known_count = 0


cdef void _learn(bytes name, int role, int priority):
    global _known_count
    _known[_known_count].name = <const char*>name
    _known[_known_count].size = len(name)
    _known[_known_count].role = role
    _known[_known_count].priority = priority
    _known_count += 1


for _role, _names in enumerate(_ROLE_NAMES):
    for _priority, _name in enumerate(_names):
        _learn(_name, _role, _priority)
for _name in _RESERVED:
    _learn(_name, -1, 0)  # the bytes live in the module's lists


cdef int role_of(const char* key, Py_ssize_t size, int* priority, bint* reserved) noexcept nogil:
    """The role of a key (-1: none), its priority in the role, whether forward.py would rename it."""
    cdef int k, role = -1
    reserved[0] = False
    for k in range(_known_count):
        if _known[k].size == size and memcmp(_known[k].name, key, size) == 0:
            if _known[k].role < 0:
                reserved[0] = True
            elif role < 0:
                role = _known[k].role
                priority[0] = _known[k].priority
    return role


cdef bint fits(int role, Item* value) noexcept:
    """forward.py's ``_fits``: a message is text, a duration a finite number >= 0, the rest not null or ""."""
    if role == R_MESSAGE:
        return value.kind == K_STR
    if role == R_DURATION:
        if value.kind == K_INT:
            return value.i >= 0
        if value.kind == K_FLOAT:
            return isfinite(value.f) and value.f >= 0
        return value.kind == K_UINT
    return value.kind != K_NIL and not (value.kind == K_STR and value.size == 0)


cdef object text_of(Item* value):
    """``as_text`` of a scalar as a Python str, or None for a value the fast path leaves alone."""
    if value.kind == K_STR:
        try:
            return PyUnicode_DecodeUTF8(value.text, value.size, NULL)
        except UnicodeDecodeError:
            return None
    if value.kind == K_BOOL:
        return "true" if value.flag else "false"
    if value.kind == K_INT:
        return str(value.i)
    if value.kind == K_UINT:
        return str(value.u)
    if value.kind == K_FLOAT and isfinite(value.f):
        return str(PyFloat_FromDouble(value.f))
    return None


# time ------------------------------------------------------------------------------------------------
cdef int time_of(Item* item, uint64_t* nanoseconds) noexcept:
    """forward.py's ``nanoseconds_of`` for EventTime, integer and float times; -1 for anything else."""
    cdef double scaled
    if item.kind == K_EXT:
        if item.ext_type != 0 or item.size != 8:
            return -1
        nanoseconds[0] = be(<const unsigned char*>item.text, 4) * 1000000000 + be(
            <const unsigned char*>item.text + 4, 4)
        return 0
    if item.kind == K_INT:
        if item.i < 0 or item.i >= RFC3339_END:
            return -1
        nanoseconds[0] = <uint64_t>item.i * 1000000000
        return 0
    if item.kind == K_FLOAT:
        if not isfinite(item.f) or item.f < 0 or item.f >= 9.0e9:  # past 2255: exact on the Python path
            return -1
        scaled = item.f * 1e9
        nanoseconds[0] = <uint64_t>scaled
        return 0
    return -1


# one record ------------------------------------------------------------------------------------------
cdef class Columns:
    """The columns of the records read so far (lists of Python values, None where a record lacks one)."""

    cdef public list timestamp, level, service, message, user_id, request_id, error_code, duration_ms
    cdef public list attributes
    cdef public object structured  # forward.py's _STRUCTURED.search
    cdef public object level_of    # a level as sent -> (the level word, its level_original text or None), or False
    cdef dict levels               # level_of's answers so far
    cdef list cached               # short texts seen (levels, services): (bytes, str)
    cdef public Py_ssize_t max_fields, max_depth
    cdef TextBuf lines
    cdef TextBuf extras
    cdef Clock clock

    def __cinit__(self):
        self.lines.data = NULL
        self.extras.data = NULL
        tb_init(&self.lines, 1 << 16)
        tb_init(&self.extras, 1 << 12)
        self.clock.second = -1

    def __dealloc__(self):
        tb_free(&self.lines)
        tb_free(&self.extras)

    def __init__(self, structured, level_of, Py_ssize_t max_fields, Py_ssize_t max_depth):
        self.timestamp, self.level, self.service, self.message = [], [], [], []
        self.user_id, self.request_id, self.error_code, self.duration_ms = [], [], [], []
        self.attributes = []
        self.structured = structured
        self.level_of = level_of
        self.levels = {}
        self.cached = []
        self.max_fields = max_fields
        self.max_depth = max_depth

    def payload(self) -> bytes:
        """The NDJSON lines of the records."""
        return tb_bytes(&self.lines, 0, self.lines.size)

    cdef int record(self, Reader* r, Clock* clock, object tag_json, object service) except -2:
        """Append one record (the map at ``r``); 1 when it needs the Python path (nothing appended)."""
        cdef Item item, value
        cdef Py_ssize_t count, k, lines_mark = self.lines.size, braces, fields
        cdef const char* names[MAX_KEYS]
        cdef Py_ssize_t sizes[MAX_KEYS]
        cdef const unsigned char* values[MAX_KEYS]
        cdef int roles[MAX_KEYS]
        cdef bint reserved[MAX_KEYS]
        cdef int chosen[ROLES]
        cdef int best[ROLES]
        cdef int role, priority
        cdef Reader at
        cdef object level, message, own_service = None, text, stamp, word, added
        cdef const char* level_raw = b"INFO"
        cdef Py_ssize_t level_size = 4
        cdef const char* message_raw
        cdef Py_ssize_t message_size
        cdef Item service_item
        cdef Item text_items[3]
        service_item.kind = K_NIL
        cdef object duration = None
        cdef list texts = [None, None, None]
        if read_item(r, &item) < 0 or item.kind != K_MAP or item.size > MAX_KEYS:
            return 1
        count = item.size
        for role in range(ROLES):
            chosen[role] = -1
            best[role] = 99
        for k in range(count):
            if read_item(r, &item) < 0 or item.kind != K_STR:
                return 1
            names[k], sizes[k] = item.text, item.size
            values[k] = r.pos
            at.pos, at.end = r.pos, r.end
            if skip_value(r, 1) < 0 or read_item(&at, &value) < 0:
                return 1
            role = role_of(item.text, item.size, &priority, &reserved[k])
            roles[k] = role
            if role >= 0 and priority < best[role] and fits(role, &value):
                chosen[role] = k
                best[role] = priority
        if same_key_twice(names, sizes, count):
            return 1
        for k in range(count):
            if roles[k] >= 0 and chosen[roles[k]] == k:
                continue
            roles[k] = -1  # stays an attribute
            if reserved[k]:
                return 1  # renamed by forward.py (``<name>_original``, ``fluent_tag``)
        # the message: a record without one gets its JSON text as message, in Python
        if chosen[R_MESSAGE] < 0:
            return 1
        at.pos, at.end = values[chosen[R_MESSAGE]], r.end
        read_item(&at, &value)
        if value.size > MAX_MESSAGE_BYTES:
            return 1
        message_raw, message_size = value.text, value.size
        try:
            message = PyUnicode_DecodeUTF8(value.text, value.size, NULL)
        except UnicodeDecodeError:
            return 1
        if chosen[R_LEVEL] >= 0:
            at.pos, at.end = values[chosen[R_LEVEL]], r.end
            read_item(&at, &value)
            if value.kind != K_STR:
                return 1
            level = self.cached_text(&value)
            if level is None:
                return 1
            level_raw, level_size = value.text, value.size
        elif self.structured(message, 0, 300) is not None:
            return 1  # a line to parse by format detection
        else:
            level = "INFO"
        for role in range(2, ROLES):
            if chosen[role] < 0:
                continue
            at.pos, at.end = values[chosen[role]], r.end
            read_item(&at, &value)
            if role == R_DURATION:
                if value.kind == K_FLOAT:
                    duration = PyFloat_FromDouble(value.f)
                elif value.kind == K_INT:
                    duration = value.i
                else:
                    duration = value.u
                continue
            text = self.cached_text(&value) if role == R_SERVICE else text_of(&value)
            if text is None:
                return 1
            if role == R_SERVICE:
                own_service = text
                service_item = value
            else:
                texts[role - 3] = text
                text_items[role - 3] = value
        # the attributes: the other keys in their order, then the tag
        fields = 4
        self.extras.size = 0
        tb_char(&self.extras, b'{')
        for k in range(count):
            if roles[k] >= 0:
                continue
            fields += 1
            try:
                tb_json_string(&self.extras, names[k], sizes[k])
            except ValueError:
                return 1
            tb_char(&self.extras, b':')
            at.pos, at.end = values[k], r.end
            if write_value(&self.extras, &at, 1):
                return 1
            tb_char(&self.extras, b',')
        tb_write(&self.extras, b'"tag":', 6)
        tb_write(&self.extras, <bytes>tag_json, len(<bytes>tag_json))
        tb_char(&self.extras, b'}')
        fields += 1
        braces = 0
        for k in range(self.extras.size):
            if self.extras.data[k] == b'{' or self.extras.data[k] == b'[':
                braces += 1
        # the level as the columnar check normalizes it, the level as sent then added to the attributes
        entry = self.levels.get(level)
        if entry is None:
            entry = self.level_of(level)
            self.levels[level] = entry
        if entry is False:
            return 1
        word, added = entry
        if added is not None and contains(self.extras.data, self.extras.size, b'"level_original"', 16):
            return 1  # merged as objects by the batch decoder: the Python path
        # the line: the declared fields, then the attributes
        if own_service is None:
            own_service = service
        stamp = PyUnicode_DecodeUTF8(clock.stamp, 27, NULL)
        tb_write(&self.lines, b'{"timestamp":"', 14)
        tb_write(&self.lines, clock.stamp, 27)
        tb_char(&self.lines, b'"')
        tb_write(&self.lines, b',"level":', 9)
        tb_json_string(&self.lines, level_raw, level_size)
        if own_service is service or service_item.kind != K_STR:
            self.json_text(b',"service":', 11, own_service)
        else:
            tb_write(&self.lines, b',"service":', 11)
            tb_json_string(&self.lines, service_item.text, service_item.size)
        tb_write(&self.lines, b',"message":', 11)
        tb_json_string(&self.lines, message_raw, message_size)
        for k in range(3):
            if texts[k] is not None:
                fields += 1
                if text_items[k].kind == K_STR:
                    tb_write(&self.lines, <bytes>_OUT_NAMES[k], len(<bytes>_OUT_NAMES[k]))
                    tb_json_string(&self.lines, text_items[k].text, text_items[k].size)
                else:
                    self.json_text(<bytes>_OUT_NAMES[k], len(<bytes>_OUT_NAMES[k]), texts[k])
        if duration is not None:
            fields += 1
            tb_write(&self.lines, b',"duration_ms":', 15)
            if isinstance(duration, float):
                write_float(&self.lines, duration)
            elif duration > 0x7FFFFFFFFFFFFFFF:
                write_uint(&self.lines, duration)
            else:
                tb_int(&self.lines, duration)
        if fields >= self.max_fields or braces > self.max_depth:
            self.lines.size = lines_mark
            return 1
        tb_char(&self.lines, b',')
        tb_write(&self.lines, self.extras.data + 1, self.extras.size - 1)
        tb_char(&self.lines, b'\n')
        self.timestamp.append(stamp)
        self.level.append(word)
        self.service.append(own_service)
        self.message.append(message)
        self.user_id.append(texts[0])
        self.request_id.append(texts[1])
        self.error_code.append(texts[2])
        self.duration_ms.append(duration)
        if added is not None:
            self.extras.size -= 1
            tb_char(&self.extras, b',')
            tb_write(&self.extras, (<const char*><bytes>added) + 1, len(<bytes>added) - 1)
        self.attributes.append(PyUnicode_DecodeUTF8(self.extras.data, self.extras.size, NULL))
        return 0

    cdef object cached_text(self, Item* value):
        """``text_of`` of a level or service, the same str object for the same bytes (they repeat)."""
        cdef tuple pair
        cdef bytes raw
        cdef object text
        if value.kind != K_STR or value.size > 64:
            return text_of(value)
        for pair in self.cached:
            raw = <bytes>pair[0]
            if len(raw) == value.size and memcmp(<const char*>raw, value.text, value.size) == 0:
                return pair[1]
        text = text_of(value)
        if text is not None and len(self.cached) < 32:
            self.cached.append((value.text[:value.size], text))
        return text

    cdef int json_text(self, const char* name, Py_ssize_t size, str value) except -1:
        cdef bytes raw = value.encode()
        tb_write(&self.lines, name, size)
        tb_json_string(&self.lines, raw, len(raw))
        return 0


def packed_columns(const unsigned char[::1] payload, Columns columns, bytes tag_json, str service) -> int:
    """Append the records of a PackedForward ``payload`` (decompressed) to ``columns``: how many, or -1
    when some entry needs the Python path (``columns`` is then to be thrown away).

    ``tag_json`` is the tag as JSON text (``orjson.dumps(tag)``), ``service`` the service of a record
    naming none (from the tag).
    """
    global _dumps
    cdef Reader r
    cdef Item item
    cdef uint64_t nanoseconds
    cdef Py_ssize_t count = 0
    if _dumps is None:
        import orjson
        _dumps = orjson.dumps
    if payload.shape[0] == 0:
        return 0
    r.pos = &payload[0]
    r.end = r.pos + payload.shape[0]
    while r.pos < r.end:
        if read_item(&r, &item) < 0 or item.kind != K_ARRAY or item.size != 2:
            return -1
        if read_item(&r, &item) < 0 or time_of(&item, &nanoseconds) < 0:
            return -1
        clock_set(&columns.clock, <int64_t>(nanoseconds // 1000000000), <int>((nanoseconds % 1000000000) // 1000))
        if columns.record(&r, &columns.clock, tag_json, service):
            return -1
        count += 1
    return count
