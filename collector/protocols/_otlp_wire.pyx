# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled OTLP/HTTP log decoder: :func:`decode_logs` walks a protobuf ``ExportLogsServiceRequest``
on the wire, :class:`JsonLogs` the log records of an OTLP JSON one as orjson parsed them, and both make
the columns, the attributes JSON text and the NDJSON lines that
:class:`~logwarden.collector.protocols.otlp.OtlpLogs`' Python fast path makes, byte for byte.

Resource and scope attributes are converted once per group by the Python callbacks the caller gives
(the Python decoder's own helpers); only the per-record work is done here. Anything the Python path
would treat specially makes :func:`decode_logs` return None, and the caller takes the Python path:
a malformed message, a field sent twice or with an unexpected wire type, a string that is not UTF-8,
an array or key/value-list value or body, string-table references (``*_strindex``), an attribute
named ``attributes.*``, the same attribute name twice, a record over the field limit, no records at
all; in JSON also a value of another type than its kind's, an integer past 64 bits or written other than
in ASCII digits, a trace or span id neither hex nor base64 of its size.
Every protobuf read is bounds-checked by the wire cursor (``_protowire.pxi``): no bytes make it read
past the body.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_GET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memmove

import base64

import orjson

include "_textbuf.pxi"
include "_protowire.pxi"
include "_rfc3339.pxi"


class Unusual(Exception):
    """The request holds something the compiled decoder leaves to the Python path."""


cdef enum:  # kinds of an AnyValue
    V_NONE = 0
    V_STRING = 1
    V_BOOL = 2
    V_INT = 3
    V_DOUBLE = 4
    V_BYTES = 5

cdef enum:  # how an attribute name may fill a declared field (the caller's ``reserved`` mapping)
    K_PLAIN = -1
    K_CLASH = 0
    K_STRING = 1
    K_NUMBER = 2
    K_INTEGER = 3
    K_FILL = 100

cdef enum:
    MAX_ATTRIBUTES = 256
    LEVEL_SLOTS = 16

cdef struct Value:
    int kind
    const unsigned char* text
    Py_ssize_t size
    int64_t integer
    double number


cdef struct Record:
    uint64_t time
    uint64_t observed
    int32_t severity
    Cursor severity_text
    bint has_body
    Value body
    Cursor attributes[MAX_ATTRIBUTES]
    int attribute_count
    bint attributes_read  # the JSON reader put them in the batch's keys and values
    uint32_t flags
    Cursor trace_id
    Cursor span_id
    Cursor event_name


cdef inline int unusual() except -1:
    raise Unusual()


cdef inline int expect(uint64_t tag, int wire_type) except -1:
    """Refuse a known field sent with another wire type (the protobuf runtime would keep it aside)."""
    if <int>(tag & 7) != wire_type:
        raise Unusual()
    return 0


cdef inline uint64_t next_tag(Cursor* cursor) except 0:
    """The next field's tag (field number 0 and numbers past 2**29 are malformed)."""
    cdef uint64_t tag
    if cursor.pos < cursor.end and 8 <= cursor.pos[0] < 0x80:  # the usual one-byte tag
        tag = cursor.pos[0]
        cursor.pos += 1
        return tag
    tag = read_varint(cursor)
    if (tag >> 3) == 0 or (tag >> 32) != 0:
        raise Unusual()
    return tag


cdef inline Cursor delimited(Cursor* cursor) except *:
    """``read_delimited``, inline for a length under 128."""
    cdef Cursor inner
    cdef Py_ssize_t length
    if cursor.pos < cursor.end and cursor.pos[0] < 0x80:
        length = cursor.pos[0]
        if length < cursor.end - cursor.pos:
            inner.pos = cursor.pos + 1
            inner.end = inner.pos + length
            cursor.pos = inner.end
            return inner
    return read_delimited(cursor)


cdef inline uint64_t once(uint64_t seen, uint64_t field) except 0:
    """``seen`` with ``field`` added; a singular field sent twice is left to the Python path (it merges)."""
    cdef uint64_t bit = (<uint64_t>1) << field
    if seen & bit:
        raise Unusual()
    return seen | bit


cdef inline int check_utf8(Cursor text) except -1:
    if utf8_valid(text.pos, text.end - text.pos) < 0:
        raise Unusual()
    return 0


cdef inline bytes bytes_of(Cursor text):
    return PyBytes_FromStringAndSize(<const char*>text.pos, text.end - text.pos)


cdef inline str str_of(Cursor text):
    return PyUnicode_DecodeUTF8(<const char*>text.pos, text.end - text.pos, "strict")


cdef int read_value(Cursor cursor, Value* value) except -1:
    """An ``AnyValue`` holding a scalar (an empty one is null)."""
    cdef uint64_t tag, raw, seen = 0
    cdef int field
    cdef Cursor inner
    value.kind = V_NONE
    while not at_end(&cursor):
        tag = next_tag(&cursor)
        field = <int>(tag >> 3)
        if field == 1:
            expect(tag, 2)
            inner = delimited(&cursor)  # not UTF-8: refused when written (json_text)
            value.kind = V_STRING
            value.text = inner.pos
            value.size = inner.end - inner.pos
        elif field == 2:
            expect(tag, 0)
            value.kind = V_BOOL
            value.integer = read_varint(&cursor) != 0
        elif field == 3:
            expect(tag, 0)
            value.kind = V_INT
            value.integer = <int64_t>read_varint(&cursor)
        elif field == 4:
            expect(tag, 1)
            value.kind = V_DOUBLE
            raw = read_fixed64(&cursor)
            memcpy(&value.number, &raw, 8)
        elif field == 7:
            expect(tag, 2)
            inner = delimited(&cursor)
            value.kind = V_BYTES
            value.text = inner.pos
            value.size = inner.end - inner.pos
        elif field == 5 or field == 6 or field == 8:
            unusual()  # structured values and string-table references: the Python path
        else:
            skip_field(&cursor, tag)
            continue
        if seen:
            unusual()  # two members of the oneof: the runtime keeps the last
        seen = 1
    return 0


cdef int read_record(Cursor cursor, Record* record) except -1:
    """The fields of one ``LogRecord`` (attributes as cursors over their ``KeyValue``s)."""
    cdef uint64_t tag, seen = 0
    cdef int field
    record.time = record.observed = 0
    record.severity = 0
    record.severity_text = cursor_of(NULL, 0)
    record.has_body = False
    record.attribute_count = 0
    record.attributes_read = False
    record.flags = 0
    record.trace_id = record.span_id = record.event_name = cursor_of(NULL, 0)
    while not at_end(&cursor):
        tag = next_tag(&cursor)
        field = <int>(tag >> 3)
        if field == 6:
            expect(tag, 2)
            if record.attribute_count == MAX_ATTRIBUTES:
                unusual()
            record.attributes[record.attribute_count] = delimited(&cursor)
            record.attribute_count += 1
            continue
        if field > 12:
            skip_field(&cursor, tag)
            continue
        seen = once(seen, field)
        if field == 1:
            expect(tag, 1)
            record.time = read_fixed64(&cursor)
        elif field == 11:
            expect(tag, 1)
            record.observed = read_fixed64(&cursor)
        elif field == 2:
            expect(tag, 0)
            record.severity = <int32_t>read_varint(&cursor)
        elif field == 3:
            expect(tag, 2)
            record.severity_text = delimited(&cursor)
            check_utf8(record.severity_text)
        elif field == 5:
            expect(tag, 2)
            record.has_body = True
            read_value(delimited(&cursor), &record.body)
        elif field == 7:
            expect(tag, 0)
            read_varint(&cursor)
        elif field == 8:
            expect(tag, 5)
            record.flags = read_fixed32(&cursor)
        elif field == 9:
            expect(tag, 2)
            record.trace_id = delimited(&cursor)
        elif field == 10:
            expect(tag, 2)
            record.span_id = delimited(&cursor)
        elif field == 12:
            expect(tag, 2)
            record.event_name = delimited(&cursor)
            check_utf8(record.event_name)
        else:
            skip_field(&cursor, tag)
    return 0


cdef int read_pair(Cursor cursor, Cursor* key, Value* value) except -1:
    """The key and scalar value of one ``KeyValue``."""
    cdef uint64_t tag, seen = 0
    cdef int field
    key[0] = cursor_of(NULL, 0)
    value.kind = V_NONE
    while not at_end(&cursor):
        tag = next_tag(&cursor)
        field = <int>(tag >> 3)
        if field == 1:
            seen = once(seen, 1)
            expect(tag, 2)
            key[0] = delimited(&cursor)  # not UTF-8: refused when written (json_text)
        elif field == 2:
            seen = once(seen, 2)
            expect(tag, 2)
            read_value(delimited(&cursor), value)
        elif field == 3:
            unusual()  # key_strindex
        else:
            skip_field(&cursor, tag)
    return 0


cdef int write_hex(TextBuf* buf, Cursor raw) except -1:
    cdef const char* digits = b"0123456789abcdef"
    cdef const unsigned char* p = raw.pos
    tb_reserve(buf, 2 * (raw.end - raw.pos) + 2)
    buf.data[buf.size] = b'"'
    buf.size += 1
    while p < raw.end:
        buf.data[buf.size] = digits[p[0] >> 4]
        buf.data[buf.size + 1] = digits[p[0] & 15]
        buf.size += 2
        p += 1
    buf.data[buf.size] = b'"'
    buf.size += 1
    return 0


cdef inline int write_name(TextBuf* buf, Cursor name) except -1:
    """``,"name":``."""
    tb_char(buf, b',')
    json_text(buf, name.pos, name.end - name.pos)
    tb_char(buf, b':')
    return 0


cdef inline bint plain_ascii(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Whether ``s`` is ASCII with nothing JSON escapes (no control character, quote or backslash),
    eight bytes at a time."""
    cdef uint64_t w, ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        memcpy(&w, s + i, 8)
        if (w & highs) or ((w - ones * 0x20) & ~w & highs) or (((w ^ (ones * 0x22)) - ones) & ~(w ^ (ones * 0x22)) & highs) or (((w ^ (ones * 0x5C)) - ones) & ~(w ^ (ones * 0x5C)) & highs):
            return False
        i += 8
    while i < n:
        if s[i] >= 0x80 or s[i] < 0x20 or s[i] == 0x22 or s[i] == 0x5C:
            return False
        i += 1
    return True


cdef inline int json_text(TextBuf* buf, const unsigned char* text, Py_ssize_t size) except -1:
    """``tb_json_string``, with a single pass for the usual text (ASCII, nothing to escape)."""
    if not plain_ascii(text, size):
        return tb_json_string(buf, <const char*>text, size)
    tb_reserve(buf, size + 2)
    buf.data[buf.size] = b'"'
    memcpy(buf.data + buf.size + 1, text, size)
    buf.data[buf.size + size + 1] = b'"'
    buf.size += size + 2
    return 0


cdef inline int write_bytes(TextBuf* buf, bytes text) except -1:
    tb_write(buf, text, len(text))
    return 0



cdef Cursor group_head(Cursor cursor) except *:
    """The field-1 message of a ResourceLogs or ScopeLogs (its resource or scope; empty when absent), the
    children (field 2) stepped over and the schema URL (field 3) checked as UTF-8: both messages are laid
    out alike."""
    cdef Cursor scan = cursor, head = cursor_of(NULL, 0)
    cdef uint64_t tag, seen = 0
    cdef int field
    while not at_end(&scan):
        tag = next_tag(&scan)
        field = <int>(tag >> 3)
        if field == 1:
            seen = once(seen, 1)
            expect(tag, 2)
            head = read_delimited(&scan)
        elif field == 2:
            expect(tag, 2)
            read_delimited(&scan)
        elif field == 3:
            expect(tag, 2)
            check_utf8(read_delimited(&scan))
        else:
            skip_field(&scan, tag)
    return head

cdef class _Batch:
    """The state of one decoding: buffers, the columns, the groups' shared parts and the level cache."""

    cdef TextBuf payload
    cdef Clock clock
    cdef uint64_t received_us
    cdef object resource_of, shared_of, level_of
    cdef int max_fields
    cdef list names  # reserved names as UTF-8 bytes (name_texts point into them)
    cdef const char** name_texts
    cdef Py_ssize_t* name_sizes
    cdef int* name_kinds
    cdef int name_count
    cdef list timestamps, levels, services, messages, attributes
    cdef dict optional
    cdef Py_ssize_t count
    # the current record's attributes: names, values, placement (K_FILL: fills a declared field)
    cdef Cursor keys[MAX_ATTRIBUTES]
    cdef Value values[MAX_ATTRIBUTES]
    cdef int kinds[MAX_ATTRIBUTES]
    cdef Py_ssize_t filled
    # the current group
    cdef str service
    cdef bytes service_json
    cdef bytes shared_members
    cdef Py_ssize_t shared_count
    # the level cache: (severity number, text) -> level, its JSON, the severity as sent in JSON
    cdef int32_t level_numbers[LEVEL_SLOTS]
    cdef list level_texts, level_words, level_json, original_json
    cdef int level_used

    def __cinit__(self, received, level_of, dict reserved, int max_fields, Py_ssize_t size_hint):
        tb_init(&self.payload, max(size_hint, 1 << 16))
        self.clock.second = -1
        self.received_us = received
        self.level_of = level_of
        self.max_fields = max_fields
        self.set_names(reserved)
        self.timestamps, self.levels, self.services, self.messages, self.attributes = [], [], [], [], []
        self.optional = {}
        self.level_texts, self.level_words, self.level_json, self.original_json = [], [], [], []

    def __dealloc__(self):
        free(self.name_texts)
        free(self.name_sizes)
        free(self.name_kinds)
        tb_free(&self.payload)

    # groups ------------------------------------------------------------------------------------
    cdef int resource_logs(self, Cursor cursor) except -1:
        cdef Cursor resource = group_head(cursor)
        cdef uint64_t tag
        part = self.resource_of(bytes_of(resource))
        if part is None:
            unusual()
        service, resource_fields = part
        self.service = service
        self.service_json = orjson.dumps(service)
        while not at_end(&cursor):
            tag = next_tag(&cursor)
            if (tag >> 3) == 2:
                self.scope_logs(read_delimited(&cursor), resource_fields)
            else:
                skip_field(&cursor, tag)
        return 0

    cdef int scope_logs(self, Cursor cursor, object resource_fields) except -1:
        cdef Cursor scope = group_head(cursor)
        cdef uint64_t tag
        cdef Record record
        shared = self.shared_of(bytes_of(scope), resource_fields)
        if shared is None:
            unusual()
        self.set_shared(shared)
        while not at_end(&cursor):
            tag = next_tag(&cursor)
            if (tag >> 3) == 2:
                read_record(read_delimited(&cursor), &record)
                self.add(&record)
            else:
                skip_field(&cursor, tag)
        return 0

    cdef int set_shared(self, shared) except -1:
        """The attributes the group's records share (a ``records.Shared``)."""
        text = shared.text
        self.shared_members = b"," + text[1:len(text) - 1] if len(text) > 2 else b""
        self.shared_count = len(shared.fields)
        return 0

    # one record --------------------------------------------------------------------------------
    cdef int add(self, Record* record) except -1:
        cdef uint64_t nanos = record.time if record.time else record.observed
        cdef uint64_t micros = nanos // 1000 if nanos else self.received_us
        cdef char* stamp = self.clock.stamp
        cdef int slot
        cdef TextBuf* out = &self.payload
        cdef Py_ssize_t members_at, own
        if micros // 1000000 >= RFC3339_END:
            unusual()  # past what datetime names (unreachable from 64-bit nanoseconds; kept as a guard)
        clock_set(&self.clock, <int64_t>(micros // 1000000), <int>(micros % 1000000))
        slot = self.level_slot(record.severity, record.severity_text)
        # the record's own fields: its attributes (declared or not) and its context
        own = self.read_attributes(record) + context_count(record, self.has_original(slot))
        if 4 + own + self.shared_count > self.max_fields:
            unusual()
        tb_write(out, b'{"timestamp":"', 14)
        tb_write(out, stamp, 27)
        tb_write(out, b'","level":', 10)
        write_bytes(out, <bytes>PyList_GET_ITEM(self.level_json, slot))
        tb_write(out, b',"service":', 11)
        write_bytes(out, self.service_json)
        tb_write(out, b',"message":', 11)
        message = self.write_message(record)
        if self.filled:
            self.write_filled(record)
        self.timestamps.append(PyUnicode_DecodeUTF8(stamp, 27, NULL))
        self.levels.append(<object>PyList_GET_ITEM(self.level_words, slot))
        self.services.append(self.service)
        self.messages.append(message)
        if own - self.filled == 0 and not self.shared_members:
            tb_write(out, b'}\n', 2)
            self.attributes.append(None)
        else:
            members_at = out.size
            self.write_attributes(record)
            self.write_context(record, slot)
            write_bytes(out, self.shared_members)
            tb_char(out, b'}')
            # the members after the declared fields, as an object, are the attributes text
            out.data[members_at] = b'{'
            self.attributes.append(PyUnicode_DecodeUTF8(out.data + members_at, out.size - members_at, NULL))
            out.data[members_at] = b','
            tb_char(out, b'\n')
        self.count += 1
        return 0

    cdef Py_ssize_t read_attributes(self, Record* record) except -1:
        """Read the record's attributes (unless the JSON reader did) and how each is placed; how many
        there are (``self.filled`` of them fill a declared field)."""
        cdef int i
        if not record.attributes_read:
            for i in range(record.attribute_count):
                read_pair(record.attributes[i], &self.keys[i], &self.values[i])
        return self.place_attributes(record.attribute_count)

    cdef Py_ssize_t place_attributes(self, int count) except -1:
        """How each attribute in ``self.keys``/``self.values`` is placed; ``count``."""
        cdef int i, j
        self.filled = 0
        for i in range(count):
            for j in range(i):
                if same_text(self.keys[j], self.keys[i]):
                    unusual()  # the runtime keeps one value, at the first place: the Python path
            self.kinds[i] = self.kind_of(self.keys[i])
            if self.kinds[i] > 0 and fits(self.kinds[i], &self.values[i]):
                self.kinds[i] = K_FILL
                self.filled += 1
        return count

    cdef str write_message(self, Record* record):
        """Write the body as the message (a string as is, a scalar as its JSON text); the message."""
        cdef Value* body = &record.body
        if not record.has_body or body.kind == V_NONE:
            tb_write(&self.payload, b'""', 2)
            return ""
        if body.kind == V_STRING:
            json_text(&self.payload, body.text, body.size)
            return PyUnicode_DecodeUTF8(<const char*>body.text, body.size, NULL)
        if body.kind == V_BOOL:
            message = "true" if body.integer else "false"
        elif body.kind == V_INT:
            message = str(body.integer)
        elif body.kind == V_DOUBLE:
            message = orjson.dumps(body.number).decode()
        else:
            message = base64.b64encode(PyBytes_FromStringAndSize(<const char*>body.text, body.size)).decode()
        encoded = message.encode()
        tb_json_string(&self.payload, encoded, len(encoded))
        return message

    cdef int write_filled(self, Record* record) except -1:
        """The attributes filling an optional declared field of their name: in the line and the column."""
        cdef int i
        cdef list column
        for i in range(record.attribute_count):
            if self.kinds[i] != K_FILL:
                continue
            write_name(&self.payload, self.keys[i])
            write_value(&self.payload, &self.values[i])
            name = str_of(self.keys[i])
            column = self.optional.get(name)
            if column is None:
                column = [None] * self.count
                self.optional[name] = column
            elif len(column) < self.count:
                column.extend([None] * (self.count - len(column)))
            column.append(python_value(&self.values[i]))
        return 0

    cdef int write_attributes(self, Record* record) except -1:
        """The attributes that fill no declared field (a clashing name as ``attributes.<name>``)."""
        cdef TextBuf* out = &self.payload
        cdef Py_ssize_t start
        cdef int i
        for i in range(record.attribute_count):
            if self.kinds[i] == K_PLAIN:
                write_name(out, self.keys[i])
            elif self.kinds[i] == K_FILL:
                continue
            else:
                tb_char(out, b',')
                start = out.size
                json_text(out, self.keys[i].pos, self.keys[i].end - self.keys[i].pos)
                tb_reserve(out, 11)
                memmove(out.data + start + 12, out.data + start + 1, out.size - start - 1)
                memcpy(out.data + start + 1, b"attributes.", 11)
                out.size += 11
                tb_char(out, b':')
            write_value(out, &self.values[i])
        return 0

    cdef int write_context(self, Record* record, int slot) except -1:
        """The trace context, the event name and the severity as sent."""
        cdef TextBuf* out = &self.payload
        if record.trace_id.end > record.trace_id.pos:
            tb_write(out, b',"trace_id":', 12)
            write_hex(out, record.trace_id)
        if record.span_id.end > record.span_id.pos:
            tb_write(out, b',"span_id":', 11)
            write_hex(out, record.span_id)
        if record.flags:
            tb_write(out, b',"trace_flags":', 15)
            tb_int(out, record.flags)
        if record.event_name.end > record.event_name.pos:
            tb_write(out, b',"event_name":', 14)
            json_text(out, record.event_name.pos, record.event_name.end - record.event_name.pos)
        if self.has_original(slot):
            tb_write(out, b',"level_original":', 18)
            write_bytes(out, <bytes>PyList_GET_ITEM(self.original_json, slot))
        return 0

    cdef int kind_of(self, Cursor key) except -2:
        """How attribute ``key`` may fill a declared field (K_PLAIN: it clashes with nothing)."""
        cdef Py_ssize_t size = key.end - key.pos
        cdef int i
        if size >= 11 and memcmp(key.pos, b"attributes.", 11) == 0:
            unusual()  # it could meet a clashing name kept under the same name: the Python path
        for i in range(self.name_count):
            if self.name_sizes[i] == size and memcmp(key.pos, self.name_texts[i], size) == 0:
                return self.name_kinds[i]
        if (size >= 9 and memcmp(key.pos, b"resource.", 9) == 0) or (size >= 6 and memcmp(key.pos, b"scope.", 6) == 0):
            return K_CLASH
        return K_PLAIN

    cdef inline bint has_original(self, int slot):
        return len(<bytes>PyList_GET_ITEM(self.original_json, slot)) > 0

    cdef int level_slot(self, int32_t number, Cursor text) except -1:
        """The slot of the level cache holding this severity (filled on first sight)."""
        cdef int i
        cdef bytes cached
        cdef Py_ssize_t size = text.end - text.pos
        for i in range(self.level_used):
            if self.level_numbers[i] != number:
                continue
            cached = <bytes>PyList_GET_ITEM(self.level_texts, i)
            if len(cached) == size and (size == 0 or memcmp(<const char*>cached, text.pos, size) == 0):
                return i
        if self.level_used == LEVEL_SLOTS:
            self.level_used = 0
            del self.level_texts[:], self.level_words[:], self.level_json[:], self.original_json[:]
        level, original = self.level_of(number, str_of(text))
        i = self.level_used
        self.level_numbers[i] = number
        self.level_texts.append(bytes_of(text))
        self.level_words.append(level)
        self.level_json.append(orjson.dumps(level))
        self.original_json.append(b"" if original is None else orjson.dumps(original))
        self.level_used += 1
        return i

    cdef int set_names(self, dict reserved) except -1:
        cdef Py_ssize_t count = len(reserved)
        cdef int i = 0
        self.names = [name.encode() for name in reserved]
        self.name_texts = <const char**>malloc(max(count, 1) * sizeof(char*))
        self.name_sizes = <Py_ssize_t*>malloc(max(count, 1) * sizeof(Py_ssize_t))
        self.name_kinds = <int*>malloc(max(count, 1) * sizeof(int))
        if self.name_texts == NULL or self.name_sizes == NULL or self.name_kinds == NULL:
            raise MemoryError()
        for name, kind in zip(self.names, reserved.values()):
            self.name_texts[i] = <const char*><bytes>name
            self.name_sizes[i] = len(<bytes>name)
            self.name_kinds[i] = kind
            i += 1
        self.name_count = i
        return 0

    cdef object result(self):
        columns = {
            "timestamp": self.timestamps,
            "level": self.levels,
            "service": self.services,
            "message": self.messages,
        }
        for name, column in self.optional.items():
            column.extend([None] * (self.count - len(column)))
            columns[name] = column
        return self.count, columns, self.attributes, PyBytes_FromStringAndSize(self.payload.data, self.payload.size)


cdef inline bint same_text(Cursor one, Cursor other) noexcept:
    return one.end - one.pos == other.end - other.pos and memcmp(one.pos, other.pos, one.end - one.pos) == 0


cdef inline Py_ssize_t context_count(Record* record, bint original) noexcept:
    """How many fields the trace context, the event name and the severity as sent add."""
    return (
        (record.trace_id.end > record.trace_id.pos) + (record.span_id.end > record.span_id.pos)
        + (record.flags != 0) + (record.event_name.end > record.event_name.pos) + original
    )


cdef inline bint fits(int kind, Value* value) noexcept:
    """Whether ``value`` has the JSON Schema type of the declared field (``records._fits``)."""
    if kind == K_STRING:
        return value.kind == V_STRING or value.kind == V_BYTES  # bytes are base64 text
    if kind == K_INTEGER:
        return value.kind == V_INT
    if kind == K_NUMBER:
        return value.kind == V_INT or (
            value.kind == V_DOUBLE and value.number == value.number and value.number - value.number == 0
        )
    return False


cdef object python_value(Value* value):
    """The value as the Python decoder has it (bytes in base64)."""
    if value.kind == V_STRING:
        return PyUnicode_DecodeUTF8(<const char*>value.text, value.size, NULL)
    if value.kind == V_INT:
        return PyLong_FromLongLong(value.integer)
    if value.kind == V_BOOL:
        return bool(value.integer)
    if value.kind == V_DOUBLE:
        return PyFloat_FromDouble(value.number)
    if value.kind == V_BYTES:
        return base64.b64encode(PyBytes_FromStringAndSize(<const char*>value.text, value.size)).decode()
    return None


cdef int write_value(TextBuf* buf, Value* value) except -1:
    """The value as JSON, as orjson writes it."""
    if value.kind == V_STRING:
        json_text(buf, value.text, value.size)
    elif value.kind == V_INT:
        tb_int(buf, value.integer)
    elif value.kind == V_BOOL:
        if value.integer:
            tb_write(buf, b"true", 4)
        else:
            tb_write(buf, b"false", 5)
    elif value.kind == V_NONE:
        tb_write(buf, b"null", 4)
    else:
        write_bytes(buf, orjson.dumps(python_value(value)))
    return 0


def decode_logs(
    bytes body,
    object received,
    object resource_of,
    object shared_of,
    object level_of,
    dict reserved,
    int max_fields,
):
    """The records of an ``ExportLogsServiceRequest`` as ``(count, columns, attributes, payload)`` for
    ``records.columns_batch``, or None when the Python path must decide.

    ``received``: the time of receipt in microseconds (a record without a time); ``resource_of(bytes)``:
    a ``Resource``'s ``(service, resource fields)``; ``shared_of(bytes, resource fields)``: the
    ``Shared`` attributes of an ``InstrumentationScope`` and its resource; ``level_of(number, text)``:
    ``(level, severity as sent or None)``; each returns None for what the Python path must decide.
    ``reserved``: attribute names that clash, each with how it may fill a declared field (0: it may
    not, 1: a string, 2: a number, 3: an integer).
    """
    cdef _Batch batch = _Batch(received, level_of, reserved, max_fields, 3 * len(body))
    cdef Cursor cursor = cursor_of(<const unsigned char*>body, len(body))
    cdef uint64_t tag
    batch.resource_of, batch.shared_of = resource_of, shared_of
    try:
        while not at_end(&cursor):
            tag = next_tag(&cursor)
            if (tag >> 3) == 1:
                expect(tag, 2)
                batch.resource_logs(read_delimited(&cursor))
            else:
                skip_field(&cursor, tag)
    except (Unusual, WireError, ValueError, OverflowError):
        return None
    if batch.count == 0:
        return None
    return batch.result()


# OTLP JSON --------------------------------------------------------------------------------------
cdef class JsonLogs(_Batch):
    """The compiled per-record part of the OTLP JSON decoder: the caller walks the parsed document's
    resources and scopes (``otlp.py``'s helpers) and gives each scope's log records, already parsed by
    orjson, to :meth:`add_scope`; :meth:`columns` gives what ``records.columns_batch`` takes.
    ``JsonLogs(received, level_of, reserved, max_fields, size_hint)`` as ``decode_logs`` takes them."""

    cdef uint8_t trace_id[16]
    cdef uint8_t span_id[8]

    def add_scope(self, str service, object shared, list log_records, dict severities):
        """Add the records of one scope (``shared``: its ``records.Shared``); False when the Python path
        must decide (``severities``: ``SeverityNumber`` names to numbers)."""
        cdef Record record
        self.service = service
        self.service_json = orjson.dumps(service)
        try:
            self.set_shared(shared)
            for item in log_records:
                if type(item) is not dict:
                    unusual()
                self.json_record(<dict>item, &record, severities)
                self.add(&record)
        except (Unusual, ValueError, OverflowError):
            return False
        return True

    def columns(self):
        """``(count, columns, attributes, payload)`` for ``records.columns_batch``, or None (no records)."""
        return self.result() if self.count else None

    cdef int json_record(self, dict item, Record* record, dict severities) except -1:
        """Fill ``record`` from one OTLP JSON log record as ``OtlpLogs._add_json`` reads it."""
        record.time = json_nanos(either(item, "timeUnixNano", "time_unix_nano"))
        record.observed = 0 if record.time else json_nanos(
            either(item, "observedTimeUnixNano", "observed_time_unix_nano"))
        text = either(item, "severityText", "severity_text")
        record.severity_text = utf8_of("" if text is None else text)
        record.severity = json_severity(either(item, "severityNumber", "severity_number"), severities)
        body = item.get("body")
        record.has_body = body is not None
        if record.has_body:
            json_value(body, &record.body)
        self.json_attributes(item.get("attributes"), record)
        record.trace_id = json_id(either(item, "traceId", "trace_id"), self.trace_id, 16)
        record.span_id = json_id(either(item, "spanId", "span_id"), self.span_id, 8)
        record.flags = json_flags(item.get("flags"))
        name = either(item, "eventName", "event_name")
        record.event_name = utf8_of(name) if type(name) is str else cursor_of(NULL, 0)
        return 0

    cdef int json_attributes(self, object pairs, Record* record) except -1:
        """The record's attributes into the batch's keys and values."""
        cdef Py_ssize_t i = 0
        record.attributes_read = True
        record.attribute_count = 0
        if not pairs:
            return 0
        if type(pairs) is not list or len(<list>pairs) > MAX_ATTRIBUTES:
            unusual()
        for pair in <list>pairs:
            if type(pair) is not dict or type((<dict>pair).get("key")) is not str:
                unusual()
            self.keys[i] = utf8_of((<dict>pair)["key"])
            json_value((<dict>pair).get("value", {}), &self.values[i])
            i += 1
        record.attribute_count = <int>i
        return 0


cdef inline object either(dict item, str camel, str snake):
    """``otlp._get``: the lowerCamelCase member, else the snake_case one (None for null or absent)."""
    value = item.get(camel)
    return item.get(snake) if value is None else value


cdef inline Cursor utf8_of(object text) except *:
    """A cursor over the UTF-8 text of ``text`` (a str; it lives as long as the parsed document)."""
    cdef Py_ssize_t size
    cdef const char* data
    if type(text) is not str:
        unusual()
    data = PyUnicode_AsUTF8AndSize(text, &size)
    return cursor_of(<const unsigned char*>data, size)


cdef bint canonical_integer(str text, bint negative_allowed) noexcept:
    """Whether ``text`` is what ``otlp._json_int`` reads as an integer: ASCII digits (an optional ``-``)."""
    cdef Py_ssize_t i, n = len(text), start = 0
    if negative_allowed and n > 1 and text[0] == "-":
        start = 1
    if n == 0 or n >= 24:
        return False
    for i in range(start, n):
        if not ("0" <= text[i] <= "9"):
            return False
    return True


cdef inline uint64_t json_nanos(object value) except? 0xFFFFFFFFFFFFFFFF:
    """A time in nanoseconds (absent: 0); negative or past 64 bits: the Python path."""
    if value is None:
        return 0
    if type(value) is str and canonical_integer(<str>value, False):
        value = int(value)
    if type(value) is not int or value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        unusual()
    return <uint64_t>value


cdef inline int64_t json_int64(object value) except? -1:
    if type(value) is str and canonical_integer(<str>value, True):
        value = int(value)
    if type(value) is not int or not (-0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF):
        unusual()
    return <int64_t>value


cdef inline int32_t json_severity(object value, dict severities) except? -1:
    """``otlp._json_severity`` within 32 bits (the level cache's key)."""
    if value is None:
        return 0
    if type(value) is str and not canonical_integer(<str>value, False):
        if (<str>value).isdigit():
            unusual()  # digits int() reads but not ASCII ones
        return severities.get(value, 0)
    value = json_int64(value)
    if not (-0x80000000 <= value <= 0x7FFFFFFF):
        unusual()
    return <int32_t>value


cdef inline uint32_t json_flags(object value) except? 0xFFFFFFFF:
    """``flags`` (falsy: none); the Python path for what does not fit 32 bits or is a string "0"."""
    if not value:
        return 0
    value = json_int64(value)
    if not (1 <= value <= 0xFFFFFFFF):
        unusual()
    return <uint32_t>value


cdef int json_value(object value, Value* out) except -1:
    """An OTLP JSON ``AnyValue`` holding a scalar, as ``otlp._json_value`` reads it."""
    cdef dict members
    if type(value) is not dict:
        unusual()
    members = <dict>value
    out.kind = V_NONE
    if len(members) == 0:
        return 0
    if len(members) > 1:
        unusual()  # the first kind in otlp._JSON_KINDS' order wins: the Python path
    for key, item in members.items():
        if item is None:
            return 0
        if key == "stringValue" or key == "string_value" or key == "bytesValue" or key == "bytes_value":
            out[0] = string_value(item)
        elif key == "intValue" or key == "int_value":
            out.kind = V_INT
            out.integer = json_int64(item)
        elif key == "boolValue" or key == "bool_value":
            if type(item) is not bool:
                unusual()
            out.kind = V_BOOL
            out.integer = item is True
        elif key == "doubleValue" or key == "double_value":
            if type(item) is str and item in ("NaN", "Infinity", "-Infinity"):
                item = float(item.replace("Infinity", "inf"))  # as proto3 JSON writes them
            elif type(item) is not float and type(item) is not int:
                unusual()
            out.kind = V_DOUBLE
            out.number = float(item)
        elif key == "arrayValue" or key == "array_value" or key == "kvlistValue" or key == "kvlist_value":
            unusual()
    return 0


cdef inline Value string_value(object item) except *:
    cdef Value out
    cdef Cursor text = utf8_of(item)
    out.kind = V_STRING
    out.text = text.pos
    out.size = text.end - text.pos
    return out


cdef int hex_digit(Py_UCS4 c) noexcept:
    if "0" <= c <= "9":
        return <int>c - 48
    if "a" <= c <= "f":
        return <int>c - 87
    if "A" <= c <= "F":
        return <int>c - 55
    return -1


cdef int base64_digit(Py_UCS4 c) noexcept:
    if "A" <= c <= "Z":
        return <int>c - 65
    if "a" <= c <= "z":
        return <int>c - 71
    if "0" <= c <= "9":
        return <int>c + 4
    if c == "+":
        return 62
    if c == "/":
        return 63
    return -1


cdef Cursor json_id(object value, uint8_t* out, int size) except *:
    """A trace or span id decoded into ``out``: ``size`` bytes in hex, or in base64 as proto3 JSON writes
    them (``otlp._json_id``); anything else (kept as sent there): the Python path."""
    cdef str text
    cdef Py_ssize_t n, i
    cdef int high, low, bits = 0, digit
    cdef uint32_t acc = 0
    if value is None or value == "":
        return cursor_of(NULL, 0)
    if type(value) is not str:
        unusual()
    text = <str>value
    n = len(text)
    if n == 2 * size:
        for i in range(size):
            high = hex_digit(text[2 * i])
            low = hex_digit(text[2 * i + 1])
            if high < 0 or low < 0:
                unusual()
            out[i] = <uint8_t>(high * 16 + low)
        return cursor_of(out, size)
    # base64 of 16 bytes: 22 digits and "=="; of 8 bytes: 11 digits and "="
    if n != (24 if size == 16 else 12) or text[n - 1] != "=" or (size == 16) != (text[n - 2] == "="):
        unusual()
    n = 0
    for i in range(len(text) - (2 if size == 16 else 1)):
        digit = base64_digit(text[i])
        if digit < 0:
            unusual()
        acc = (acc << 6) | <uint32_t>digit
        bits += 6
        if bits >= 8:
            bits -= 8
            out[n] = <uint8_t>((acc >> bits) & 0xFF)
            n += 1
    return cursor_of(out, size)
