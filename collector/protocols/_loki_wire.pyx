# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled decoder of Loki's protobuf push (``logproto.PushRequest``, snappy already undone): the
streams and entries read straight from the bytes into the declared columns, each record's attributes
as JSON text and its NDJSON line, exactly as ``loki.py`` and ``NativeRecords.fast_batch`` make them.

A stream's labels are read once, by ``loki.py`` (``stream_of``). An entry's line is read here when it
is one of the two shapes shippers send most, recognized exactly as ``logwarden.formats`` detects them:

- **free text**: printable ASCII starting with a letter, which no sniffer takes (no ``key=value``
  pairs at its start, no syslog or access-log prefix, no ``|``, ``[``, ``CEF:``/``LEEF:``, not both
  ``,`` and ``/``), no level word at its start and no upper-case word among its first four: the line
  is the message, the level INFO (or the stream's);
- **logfmt**: printable ASCII ``key=value`` / ``key="quoted value"`` pairs (no bare words, no
  escapes in quotes, no key twice), at most 2048 bytes, whose known keys map like JSON logs (message,
  service, user, request, error code, duration; the level, from the level and status pairs, by
  ``level_of`` when the stream has no level label), the other pairs becoming attributes.

Any other line (JSON, syslog, CEF, text with a level word, a logfmt line without a message or whose
keys clash with reserved or label names...) is handed to ``entry_of``, which runs the
Python decoder for that one entry. ``push_columns`` returns None when a record needs the per-record
path (a timestamp out of range, a malformed message, too many fields): ``loki.py`` then decodes the
whole body in Python.
"""

from cpython.float cimport PyFloat_FromString
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp

include "_textbuf.pxi"
include "_protowire.pxi"
include "_rfc3339.pxi"

DEF MAX_PAIRS = 64
DEF LOGFMT_BYTES = 2048  # logfmt.sniff counts the pairs of the first 2048 bytes
DEF TEXT_BYTES = 16384
DEF LISTS = 9  # the key lists of formats.json_app.map_fields picked here
DEF L_TIME = 0
DEF L_LEVEL = 1
DEF L_MESSAGE = 2
DEF L_SERVICE = 3
DEF L_USER = 4
DEF L_REQUEST = 5
DEF L_ERROR = 6
DEF L_DURATION = 7
DEF L_STATUS = 8  # read for the level, the pair stays an attribute

import orjson

cdef object _dumps = orjson.dumps

# known logfmt keys: formats.json_app's lists, set by configure() ---------------------------------------
cdef struct Known:
    const char* name
    Py_ssize_t size
    int list    # L_*, or -1 for a name an attribute may not have here (reserved)
    int rank    # the key's place in its list

DEF KNOWN = 160
cdef Known _known[KNOWN]
cdef int _known_count = 0
cdef list _keep = []  # the bytes _known points into
cdef bint _configured = False
cdef list _LEVEL_WORDS = [b"TRACE", b"DEBUG", b"INFO", b"NOTICE", b"WARN", b"ERROR", b"ERR", b"CRITICAL",
                          b"FATAL", b"PANIC"]


DEF LONGEST = 48
cdef int _size_start[LONGEST + 2]  # the known keys of size n are _known[_size_start[n]:_size_start[n + 1]]


def configure(key_lists, reserved) -> None:
    """The key lists of ``map_fields`` (time, level, message, service, user, request, error code,
    duration, HTTP status, in that order) and the names an attribute may not take (declared and reserved fields)."""
    global _known_count, _configured
    cdef int size, k = 0
    rows = [(name.encode(), number, rank) for number, names in enumerate(key_lists) for rank, name in enumerate(names)]
    rows += [(name.encode(), -1, 0) for name in reserved]
    if any(len(row[0]) > LONGEST for row in rows):
        raise ValueError(f"a known key is longer than {LONGEST} bytes")
    rows.sort(key=lambda row: len(row[0]))
    _known_count = 0
    _keep.clear()
    for name, number, rank in rows:
        _learn(name, number, rank)
    for size in range(LONGEST + 2):
        while k < _known_count and _known[k].size < size:
            k += 1
        _size_start[size] = k
    _configured = True


cdef void _learn(bytes name, int number, int rank) except *:
    global _known_count
    if _known_count >= KNOWN:
        raise ValueError("too many known keys")
    _keep.append(name)
    _known[_known_count].name = <const char*>name
    _known[_known_count].size = len(name)
    _known[_known_count].list = number
    _known[_known_count].rank = rank
    _known_count += 1


# reading the line --------------------------------------------------------------------------------------
cdef struct Pair:
    const char* key
    Py_ssize_t key_size
    const char* value
    Py_ssize_t value_size


cdef inline bint is_letter(unsigned char c) noexcept nogil:
    return (c >= 65 and c <= 90) or (c >= 97 and c <= 122)


cdef inline bint is_word(unsigned char c) noexcept nogil:
    return is_letter(c) or (c >= 48 and c <= 57) or c == 95


cdef bint starts(const char* s, Py_ssize_t n, bytes prefix) noexcept:
    return n >= len(prefix) and memcmp(s, <const char*>prefix, len(prefix)) == 0


cdef bint other_format(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Whether the line is not printable ASCII starting with a letter, ``_`` or ``@``, or a sniffer before
    logfmt (syslog, access log, CEF, LEEF, PAN-OS, docker compose) may take it."""
    cdef Py_ssize_t k = 0, head = n if n < 300 else 300
    cdef bint comma = False, slash = False
    cdef unsigned char c
    for k in range(n):
        c = s[k]
        if c < 0x20 or c > 0x7E or c == b'|':
            return True
        if k < head:
            if c == b'[':
                return True
            if c == b',':
                comma = True
            elif c == b'/':
                slash = True
            elif c == b':' and k >= 3 and (memcmp(s + k - 3, b"CEF", 3) == 0 or (
                    k >= 4 and memcmp(s + k - 4, b"LEEF", 4) == 0)):
                return True
    if comma and slash:
        return True
    k = 0
    while k < n and is_letter(s[k]):
        k += 1
    if 3 <= k <= 4:  # syslog's "Mmm dd hh:mm:ss"
        if k < n and s[k] == b'.':
            k += 1
        if k < n and s[k] == b' ':
            return True
    if k <= 5 and k < n and s[k] == b' ':  # an ELB line's scheme
        return (k == 4 and memcmp(s, b"http", 4) == 0) or (k == 5 and memcmp(s, b"https", 5) == 0) or (
            k == 5 and memcmp(s, b"grpcs", 5) == 0) or (k == 2 and memcmp(s, b"ws", 2) == 0) or (
            k == 3 and memcmp(s, b"wss", 3) == 0)
    if k == 1 and n > 2 and s[0] == b'h' and s[1] == b'2' and s[2] == b' ':
        return True
    return False


cdef Py_ssize_t sniff_match(const unsigned char* s, Py_ssize_t p, Py_ssize_t n) noexcept nogil:
    """Where logfmt's ``_SNIFF`` (``[A-Za-z_@][\\w.@-]*=(?:"|[^\\s=]*(?:\\s|$))``) matching at ``p``
    ends, or -1 (the line is printable ASCII: the only space is ' ')."""
    cdef unsigned char c = s[p]
    if not (is_letter(c) or c == 95 or c == 64):
        return -1
    p += 1
    while p < n and (is_word(s[p]) or s[p] == 46 or s[p] == 64 or s[p] == 45):
        p += 1
    if p >= n or s[p] != 61:
        return -1
    p += 1
    if p < n and s[p] == 34:
        return p + 1
    while p < n and s[p] != 32 and s[p] != 61:
        p += 1
    if p == n:
        return n
    return p + 1 if s[p] == 32 else -1


cdef bint is_logfmt(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """``logfmt.sniff(line) > 0``: a pair at the start and two in the first 2048 bytes."""
    cdef Py_ssize_t p = 0, end, count = 0
    if sniff_match(s, 0, n) < 0:
        return False
    if n > LOGFMT_BYTES:
        n = LOGFMT_BYTES
    while p < n:
        end = sniff_match(s, p, n)
        if end < 0:
            p += 1
        else:
            count += 1
            if count >= 2:
                return True
            p = end
    return False


cdef int split_pairs(const char* s, Py_ssize_t n, Pair* pairs) noexcept nogil:
    """The pairs of a logfmt line as ``logfmt.split_pairs`` reads them, or -1 for a line with a bare
    word, an escape or a stray quote, more than MAX_PAIRS pairs or a key twice."""
    cdef Py_ssize_t p = 0, start
    cdef int count = 0, a
    while True:
        while p < n and s[p] == b' ':
            p += 1
        if p >= n:
            break
        if count >= MAX_PAIRS:
            return -1
        start = p
        while p < n and s[p] != b'=' and s[p] != b' ' and s[p] != b'"':
            p += 1
        if p >= n or s[p] != b'=' or p == start:
            return -1
        pairs[count].key = s + start
        pairs[count].key_size = p - start
        p += 1
        if p < n and s[p] == b'"':
            p += 1
            start = p
            while p < n and s[p] != b'"':
                if s[p] == b'\\':
                    return -1
                p += 1
            if p >= n:
                return -1
            pairs[count].value = s + start
            pairs[count].value_size = p - start
            p += 1
            if p < n and s[p] != b' ':
                return -1
        else:
            start = p
            while p < n and s[p] != b' ':
                if s[p] == b'"':
                    return -1
                p += 1
            pairs[count].value = s + start
            pairs[count].value_size = p - start
        for a in range(count):
            if pairs[a].key_size == pairs[count].key_size and memcmp(
                    pairs[a].key, pairs[count].key, pairs[a].key_size) == 0:
                return -1
        count += 1
    return count


cdef bint starts_level_word(const char* s, Py_ssize_t n) noexcept:
    cdef bytes word
    for word in _LEVEL_WORDS:
        if starts(s, n, word):
            return True
    return False


cdef bint guessed_info(const char* s, Py_ssize_t n) noexcept:
    """``text._guess_level`` gives INFO without looking a word up: none of the first four words of
    4-8 letters in the first 48 characters is upper case (and no header pattern takes the line)."""
    cdef Py_ssize_t p = 0, run, take, upper, k, end = n if n < 48 else 48
    cdef int words = 0
    if n and s[0] >= 65 and s[0] <= 90 and starts_level_word(s, n):
        return False
    while p < end and words < 4:
        if not is_letter(s[p]):
            p += 1
            continue
        run = 0
        while p + run < end and is_letter(s[p + run]):
            run += 1
        while run >= 4 and words < 4:
            take = run if run < 8 else 8
            upper = 0
            for k in range(take):
                if s[p + k] >= 65 and s[p + k] <= 90:
                    upper += 1
            if upper == take:
                return False
            words += 1
            p += take
            run -= take
        p += run
    return True


# the decoder ------------------------------------------------------------------------------------------
cdef class Stream:
    """What the records of one stream share (from ``stream_of``)."""

    cdef object context       # loki.py's stream tuple, for entry_of
    cdef object service       # the service label (str) or None
    cdef bytes service_json
    cdef object level         # the level label normalized (str) or None
    cdef bytes level_json
    cdef bytes original_json  # the level label as sent (JSON), when it differs from the level
    cdef bytes shared         # the shared attributes' JSON text
    cdef Py_ssize_t shared_count
    cdef list shared_names    # bytes
    cdef bint lines           # whether lines may be read here


cdef Stream stream_of_tuple(tuple found):
    cdef Stream stream = Stream()
    stream.context, stream.service, stream.level, original, stream.shared, names, stream.lines = found
    stream.service_json = None if stream.service is None else _dumps(stream.service)
    stream.level_json = None if stream.level is None else _dumps(stream.level)
    stream.original_json = None if original is None else _dumps(original)
    stream.shared_count = len(names)
    stream.shared_names = [name.encode() for name in names]
    return stream


cdef class Output:
    """The records read so far: their columns, attributes texts and NDJSON lines."""

    cdef list timestamp, level, service, message, user_id, request_id, error_code, duration_ms, attributes
    cdef bint optional[4]
    cdef TextBuf lines
    cdef TextBuf extras
    cdef Clock clock
    cdef Py_ssize_t count, max_fields
    cdef object level_of  # (level key, its value, status key, its value) -> the level of a logfmt line

    def __cinit__(self):
        self.lines.data = NULL
        self.extras.data = NULL
        tb_init(&self.lines, 1 << 16)
        tb_init(&self.extras, 1 << 10)
        self.clock.second = -1
        self.timestamp, self.level, self.service, self.message = [], [], [], []
        self.user_id, self.request_id, self.error_code, self.duration_ms = [], [], [], []
        self.attributes = []
        self.optional[:] = [False, False, False, False]
        self.count = 0

    def __dealloc__(self):
        tb_free(&self.lines)
        tb_free(&self.extras)

    def __init__(self, Py_ssize_t max_fields, object level_of):
        self.max_fields = max_fields
        self.level_of = level_of

    def batch_parts(self):
        """``(count, columns, attributes, payload)`` for ``columns_batch``, or None without a record."""
        return self.result() if self.count else None

    cdef int add_python(self, tuple made) except -1:
        """A record the Python decoder made: (declared fields, JSON line, attributes text)."""
        cdef dict declared = made[0]
        cdef bytes line = made[1]
        cdef int k
        cdef object value
        self.timestamp.append(declared["timestamp"])
        self.level.append(declared["level"])
        self.service.append(declared["service"])
        self.message.append(declared["message"])
        for k, name in enumerate(("user_id", "request_id", "error_code", "duration_ms")):
            value = declared.get(name)
            if value is not None or name in declared:
                self.optional[k] = True
            (<list>(self.user_id, self.request_id, self.error_code, self.duration_ms)[k]).append(value)
        self.attributes.append(made[2])
        tb_write(&self.lines, line, len(line))
        tb_char(&self.lines, b'\n')
        self.count += 1
        return 0

    cdef int add_line(self, Stream stream, const char* line, Py_ssize_t size) except -2:
        """A record of a text or logfmt line read here; 1 when the line is for the Python decoder."""
        cdef Pair pairs[MAX_PAIRS]
        cdef int count = 0, k, j
        cdef int chosen[LISTS]
        cdef int best[LISTS]
        cdef bint attribute[MAX_PAIRS]
        cdef bint reserved[MAX_PAIRS]
        cdef bytes shared_name
        cdef bint logfmt
        cdef Py_ssize_t fields, lines_mark = self.lines.size
        cdef object message, service, level, duration = None, number
        cdef list texts = [None, None, None]
        cdef const char* message_raw = line
        cdef Py_ssize_t message_size = size
        cdef Pair* text_pairs[3]
        cdef Pair* pair
        if not stream.lines or size == 0 or not is_letter(<unsigned char>line[0]) and line[0] != b'_' \
                and line[0] != b'@':
            return 1
        if other_format(<const unsigned char*>line, size):
            return 1
        logfmt = is_logfmt(<const unsigned char*>line, size)
        if logfmt:
            if size > LOGFMT_BYTES:
                return 1
            count = split_pairs(line, size, pairs)
            if count <= 0:
                return 1
        elif size > TEXT_BYTES or not is_letter(<unsigned char>line[0]) or not guessed_info(line, size):
            return 1
        service = None
        if logfmt:
            for j in range(LISTS):
                chosen[j] = -1
                best[j] = 1 << 20
            for k in range(count):
                pair = &pairs[k]
                attribute[k] = True
                reserved[k] = False
                if pair.key_size > LONGEST:
                    continue
                for j in range(_size_start[pair.key_size], _size_start[pair.key_size + 1]):
                    if memcmp(_known[j].name, pair.key, pair.key_size) == 0:
                        if _known[j].list < 0:
                            reserved[k] = True
                        elif pair.value_size and _known[j].rank < best[_known[j].list]:
                            chosen[_known[j].list] = k
                            best[_known[j].list] = _known[j].rank
                        if _known[j].list == L_TIME and _known[j].size == 20 and memcmp(
                                pair.key, b"__REALTIME_TIMESTAMP", 20) == 0:
                            return 1
            for j in range(L_STATUS):
                if chosen[j] >= 0:
                    attribute[chosen[j]] = False
            for k in range(count):
                if not attribute[k]:
                    continue
                if reserved[k]:
                    return 1  # an attribute named like a declared or reserved field: renamed in Python
                for shared_name in stream.shared_names:
                    if len(shared_name) == pairs[k].key_size and memcmp(
                            <const char*>shared_name, pairs[k].key, pairs[k].key_size) == 0:
                        return 1  # named like a label: renamed in Python
            if chosen[L_MESSAGE] < 0:
                return 1
            pair = &pairs[chosen[L_MESSAGE]]
            message_raw, message_size = pair.value, pair.value_size
            message = PyUnicode_DecodeUTF8(pair.value, pair.value_size, NULL)
            if chosen[L_SERVICE] >= 0:
                service = as_str(&pairs[chosen[L_SERVICE]])
            for j in range(3):
                if chosen[L_USER + j] >= 0:
                    texts[j] = as_str(&pairs[chosen[L_USER + j]])
                    text_pairs[j] = &pairs[chosen[L_USER + j]]
            if chosen[L_DURATION] >= 0:
                pair = &pairs[chosen[L_DURATION]]
                try:
                    number = PyFloat_FromString(PyUnicode_DecodeUTF8(pair.value, pair.value_size, NULL))
                except ValueError:
                    number = None
                if number is not None and <double>number >= 0 and isfinite(<double>number):
                    duration = number
            if stream.level is None:  # the line's level (its level and status pairs) is the record's
                level = self.level_of(pair_text(pairs, chosen[L_LEVEL], True), pair_text(pairs, chosen[L_LEVEL], False),
                                      pair_text(pairs, chosen[L_STATUS], True), pair_text(pairs, chosen[L_STATUS], False))
        else:
            message = PyUnicode_DecodeUTF8(line, size, NULL)
        if stream.level is not None:
            level = stream.level
        elif not logfmt:
            level = "INFO"
        if stream.service is not None:
            service = stream.service
        elif service is None:
            service = "unknown_service"
        # the attributes: the level as sent, the line's other pairs, its format, then the labels
        fields = 4
        self.extras.size = 0
        tb_char(&self.extras, b'{')
        if stream.original_json is not None:
            tb_write(&self.extras, b'"level_original":', 17)
            tb_write(&self.extras, stream.original_json, len(stream.original_json))
            tb_char(&self.extras, b',')
            fields += 1
        for k in range(count):
            if attribute[k]:
                tb_json_string(&self.extras, pairs[k].key, pairs[k].key_size)
                tb_char(&self.extras, b':')
                tb_json_string(&self.extras, pairs[k].value, pairs[k].value_size)
                tb_char(&self.extras, b',')
                fields += 1
        if logfmt:
            tb_write(&self.extras, b'"log_format":"logfmt"', 21)
        else:
            tb_write(&self.extras, b'"log_format":"text"', 19)
        fields += 1 + stream.shared_count
        if stream.shared_count:
            tb_char(&self.extras, b',')
            tb_write(&self.extras, <const char*>stream.shared + 1, len(stream.shared) - 1)
        else:
            tb_char(&self.extras, b'}')
        # the line: the declared fields, then the attributes
        tb_write(&self.lines, b'{"timestamp":"', 14)
        tb_write(&self.lines, self.clock.stamp, 27)
        tb_write(&self.lines, b'","level":', 10)
        if stream.level_json is not None:
            tb_write(&self.lines, stream.level_json, len(stream.level_json))
        else:
            write_text(&self.lines, level)
        tb_write(&self.lines, b',"service":', 11)
        if stream.service_json is not None:
            tb_write(&self.lines, stream.service_json, len(stream.service_json))
        else:
            write_text(&self.lines, service)
        tb_write(&self.lines, b',"message":', 11)
        tb_json_string(&self.lines, message_raw, message_size)
        for j in range(3):
            if texts[j] is not None:
                if j == 0:
                    tb_write(&self.lines, b',"user_id":', 11)
                elif j == 1:
                    tb_write(&self.lines, b',"request_id":', 14)
                else:
                    tb_write(&self.lines, b',"error_code":', 14)
                tb_json_string(&self.lines, text_pairs[j].value, text_pairs[j].value_size)
                fields += 1
        if duration is not None:
            tb_write(&self.lines, b',"duration_ms":', 15)
            text = _dumps(duration)
            tb_write(&self.lines, <bytes>text, len(<bytes>text))
            fields += 1
        if fields > self.max_fields:
            self.lines.size = lines_mark
            return -1
        tb_char(&self.lines, b',')
        tb_write(&self.lines, self.extras.data + 1, self.extras.size - 1)
        tb_char(&self.lines, b'\n')
        self.timestamp.append(PyUnicode_DecodeUTF8(self.clock.stamp, 27, NULL))
        self.level.append(level)
        self.service.append(service)
        self.message.append(message)
        for j in range(3):
            if texts[j] is not None:
                self.optional[j] = True
        if duration is not None:
            self.optional[3] = True
        self.user_id.append(texts[0])
        self.request_id.append(texts[1])
        self.error_code.append(texts[2])
        self.duration_ms.append(duration)
        self.attributes.append(PyUnicode_DecodeUTF8(self.extras.data, self.extras.size, NULL))
        self.count += 1
        return 0

    cdef tuple result(self):
        columns = {"timestamp": self.timestamp, "level": self.level, "service": self.service,
                   "message": self.message}
        for k, name in enumerate(("user_id", "request_id", "error_code", "duration_ms")):
            if self.optional[k]:
                columns[name] = (self.user_id, self.request_id, self.error_code, self.duration_ms)[k]
        return self.count, columns, self.attributes, tb_bytes(&self.lines, 0, self.lines.size)


cdef object pair_text(Pair* pairs, int chosen, bint key):
    """The key or value of a chosen pair as text, None when none was chosen."""
    if chosen < 0:
        return None
    if key:
        return PyUnicode_DecodeUTF8(pairs[chosen].key, pairs[chosen].key_size, NULL)
    return PyUnicode_DecodeUTF8(pairs[chosen].value, pairs[chosen].value_size, NULL)


cdef object as_str(Pair* pair):
    """``as_str`` of a logfmt value (never empty here): None for ``-``."""
    if pair.value_size == 1 and pair.value[0] == b'-':
        return None
    return PyUnicode_DecodeUTF8(pair.value, pair.value_size, NULL)


cdef int write_text(TextBuf* buf, str text) except -1:
    cdef bytes raw = text.encode()
    tb_json_string(buf, raw, len(raw))
    return 0


cdef dict read_metadata(Cursor* field):
    """An entry's structured metadata field (name 1, value 2; last one wins), decoded as loki.py does."""
    cdef Cursor part
    cdef uint64_t tag
    cdef object name = "", value = ""
    while not at_end(field):
        tag = read_varint(field)
        if (tag & 7) == 2 and (tag >> 3) in (1, 2):
            part = read_delimited(field)
            text = PyUnicode_DecodeUTF8(<const char*>part.pos, part.end - part.pos, "replace")
            if (tag >> 3) == 1:
                name = text
            else:
                value = text
        else:
            skip_field(field, tag)
    return {name: value}


def json_entries(Output out, tuple found, list values, object entry_of) -> bool:
    """Add the entries of a JSON push's stream (``values``; ``found`` as ``stream_of`` gives it); False
    when one needs the per-record path (the Python decoder then reads the body)."""
    cdef Stream stream
    cdef object value, stamp, text, nanos
    cdef const char* line
    cdef Py_ssize_t size
    cdef int64_t whole
    cdef int done
    if not _configured:
        raise RuntimeError("configure() first")
    stream = stream_of_tuple(found)
    for value in values:
        if type(value) is not list or len(<list>value) not in (2, 3):
            return False
        stamp, text = (<list>value)[0], (<list>value)[1]
        if type(stamp) is str:
            if not (<str>stamp).isdigit() or len(<str>stamp) >= 21:
                return False
            nanos = int(stamp)
        elif type(stamp) is int and stamp >= 0:
            nanos = stamp
        else:
            return False
        if type(text) is not str:
            return False
        if len(<list>value) == 3:
            metadata = (<list>value)[2]
            if type(metadata) is not dict or not all(type(item) is str for item in (<dict>metadata).values()):
                return False
            made = entry_of(stream.context, nanos, (<str>text).encode("utf-8", "surrogatepass"), metadata)
            if made is None:
                return False
            out.add_python(<tuple>made)
            continue
        done = 1
        if nanos <= 9223372036854775807:  # else (past 2262) in Python
            whole = nanos
            clock_set(&out.clock, whole // 1000000000, <int>((whole % 1000000000) // 1000))
            try:
                line = PyUnicode_AsUTF8AndSize(text, &size)
            except UnicodeEncodeError:  # lone surrogates: the Python decoder writes them as it does
                line = NULL
            if line != NULL:
                done = out.add_line(stream, line, size)
                if done < 0:
                    return False
        if done:
            made = entry_of(stream.context, nanos, (<str>text).encode("utf-8", "surrogatepass"), None)
            if made is None:
                return False
            out.add_python(<tuple>made)
    return True


cdef int read_entry(Output out, Stream stream, Cursor entry, object entry_of) except -2:
    """One entry: 0 added, 1 when the whole body is for the Python decoder."""
    cdef Cursor field, part
    cdef uint64_t tag, part_tag
    cdef int64_t seconds = 0, nanos = 0, micros
    cdef const char* line = b""
    cdef Py_ssize_t line_size = 0
    cdef dict metadata = None
    cdef object made
    cdef int done
    while not at_end(&entry):
        tag = read_varint(&entry)
        if (tag & 7) != 2:
            skip_field(&entry, tag)
            continue
        field = read_delimited(&entry)
        if (tag >> 3) == 1:
            while not at_end(&field):
                part_tag = read_varint(&field)
                if (part_tag & 7) == 0 and (part_tag >> 3) == 1:
                    seconds = <int64_t>read_varint(&field)
                elif (part_tag & 7) == 0 and (part_tag >> 3) == 2:
                    nanos = <int64_t>read_varint(&field)
                else:
                    skip_field(&field, part_tag)
        elif (tag >> 3) == 2:
            line = <const char*>field.pos
            line_size = field.end - field.pos
        elif (tag >> 3) == 3:
            if metadata is None:
                metadata = {}
            metadata.update(read_metadata(&field))
    if seconds < -10000000000 or seconds >= RFC3339_END:
        return 1  # out of range: the Python decoder says so
    micros = nanos // 1000
    if nanos % 1000 != 0 and nanos < 0:
        micros -= 1  # floor, as Python divides
    micros += seconds * 1000000
    if micros < 0 or micros // 1000000 >= RFC3339_END:
        return 1
    clock_set(&out.clock, micros // 1000000, <int>(micros % 1000000))
    if metadata is None:
        done = out.add_line(stream, line, line_size)
        if done == 0:
            return 0
        if done < 0:
            return 1
    made = entry_of(stream.context, <object>seconds * 1000000000 + <object>nanos, line[:line_size], metadata)
    if made is None:
        return 1
    out.add_python(<tuple>made)
    return 0


cdef struct Cursors:
    Cursor* items
    Py_ssize_t size
    Py_ssize_t cap


cdef int grow(Cursors* cursors) except -1:
    cdef Py_ssize_t cap = cursors.cap * 2 if cursors.cap else 256
    cdef Cursor* items = <Cursor*>realloc(cursors.items, cap * sizeof(Cursor))
    if items == NULL:
        raise MemoryError()
    cursors.items = items
    cursors.cap = cap
    return 0


def push_columns(const unsigned char[::1] body, object stream_of, object entry_of, Py_ssize_t max_fields,
                 object level_of):
    """The records of a PushRequest as ``(count, columns, attributes, payload)`` for ``columns_batch``,
    or None when the Python decoder must read the body.

    ``stream_of(labels: bytes)`` gives a stream's ``(context, service, level, level as sent or None,
    shared attributes' JSON text, shared names, lines readable here)``, or None; ``entry_of(context,
    nanoseconds, line, metadata)`` a record made by the Python decoder as ``(declared, JSON line,
    attributes text)``, or None; ``level_of(level key, value, status key, value)`` the level of a logfmt
    line on a stream without a level label.
    """
    cdef Cursor request, stream_bytes, field, labels, entry
    cdef uint64_t tag
    cdef dict streams = {}
    cdef Output out = Output(max_fields, level_of)
    cdef Stream stream
    cdef Cursors entries
    cdef Py_ssize_t k
    if not _configured:
        raise RuntimeError("configure() first")
    if body.shape[0] == 0:
        return None
    entries.items = NULL
    entries.size = entries.cap = 0
    request = cursor_of(&body[0], body.shape[0])
    try:
        while not at_end(&request):
            tag = read_varint(&request)
            if tag != ((1 << 3) | 2):
                skip_field(&request, tag)
                continue
            stream_bytes = read_delimited(&request)
            labels = cursor_of(stream_bytes.pos, 0)
            entries.size = 0
            field = stream_bytes
            while not at_end(&field):
                tag = read_varint(&field)
                if tag == ((1 << 3) | 2):
                    labels = read_delimited(&field)
                elif tag == ((2 << 3) | 2):
                    if entries.size == entries.cap:
                        grow(&entries)
                    entries.items[entries.size] = read_delimited(&field)
                    entries.size += 1
                else:
                    skip_field(&field, tag)
            if not entries.size:
                continue  # its labels are not read (by Python either)
            key = (<const char*>labels.pos)[:labels.end - labels.pos]
            stream = streams.get(key)
            if stream is None:
                found = stream_of(key)
                if found is None:
                    return None
                stream = stream_of_tuple(<tuple>found)
                streams[key] = stream
            for k in range(entries.size):
                if read_entry(out, stream, entries.items[k], entry_of):
                    return None
    except WireError:
        return None
    finally:
        free(entries.items)
    return out.batch_parts()
