"""Fluent forward input: Fluent Bit's and Fluentd's ``forward`` output, and the fluent-logger libraries.

A TCP listener (default port 24224) reading the Fluent forward protocol v1 (msgpack):

- **Message** ``[tag, time, record, option?]``, **Forward** ``[tag, [[time, record], ...], option?]``,
  **PackedForward** ``[tag, bin of concatenated msgpack [time, record] entries, option?]`` and
  **CompressedPackedForward** (``option.compressed == "gzip"``, one or more gzip members);
- ``time`` is integer seconds, Fluent's ``EventTime`` (ext type 0: seconds and nanoseconds), a
  float, or a msgpack timestamp;
- the ``chunk`` option is answered with ``{"ack": chunk}`` only once the message's records are
  durable (the write-ahead log's fsync covers them): end-to-end acknowledgement. A message whose
  records were refused by validation is acknowledged too: they are in the dead-letter store.

Records are mapped like JSON application logs: ``message``/``msg``/``log``/``MESSAGE`` -> message,
``level``/``severity``/``lvl``/``levelname``/``loglevel``/``log_level`` -> level (normalized by
the validator, the value as sent kept in ``level_original``), ``service``/``service_name``/
``app``/``application`` -> service, ``user_id``, ``request_id``/``trace_id``, ``error_code``,
``duration_ms``; every other field is kept as an attribute, and the tag as ``tag``. A record
without a level whose message is a structured line (JSON, logfmt, CEF, LEEF, PAN-OS, Windows
Snare, a text line with a level word, ...) has the line parsed by format detection
(``logwarden.formats``): its level, message, service, user and time are used.

The time of a record is the entry's time, unless the parsed line carries its own. Its service,
when the record names none: the **first dot-separated part of the tag** by default (fluent-logger's
``FluentSender("app").emit("event", ...)`` sends tag ``app.event``: service ``app``);
``tag_service="last"`` takes the last part (``kube.var.log.containers.web`` -> ``web``),
``"full"`` the whole tag.

Decoding: a PackedForward payload (also once decompressed) is read by a compiled decoder
(``_forward_fast.pyx``) straight from its msgpack bytes into the declared columns, the attributes' JSON
text and the records' lines, then validated column by column (``columns_batch``): the common records
(text keys; text, number, boolean, null, map and array values; a level field, or a message no format
detection would look at). Any other entry in a read (one without a message, a line to parse, binary or
extension values, keys named like declared fields or ``tag``, invalid UTF-8, duplicate keys...), a
Forward or Message mode message, or a batch the columnar checks are unsure of sends the read's
messages through the Python decoder below, which gives the same batch and decides every error case.
An install without the compiled module uses the Python decoder throughout.

Limits: one message larger than ``max_message_bytes`` (also once decompressed), or bytes that are
not a forward message, close the connection with a log line; what was decoded before it on the
connection is kept (and acknowledged). Each connection is read, decoded and validated on its own
(decoding runs in the collector's executor), so a hostile peer never stalls the others.

Authentication: without ``shared_keys`` the listener takes any peer of ``stream_networks``, under
the stream tenant, as the TCP inputs do. With ``shared_keys`` (shared key -> tenant) every
connection must complete Fluent's handshake first (``HELO``, ``PING`` with the SHA-512 digest of
a shared key, ``PONG``): the key the client proves it knows names the tenant of its records. User
authentication (username/password) is not offered: ``HELO`` announces none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import re
import socket
import ssl
import struct
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Mapping

import msgpack
import orjson

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BodyError, RawRecord, decompress
from logwarden.collector.ingest import Ingestor
from logwarden.collector.protocols.records import columns_batch
from logwarden.collector.mapping import (
    as_text, jsonable, message_text, native_from_parsed, rfc3339_from_ns, service_text,
)
from logwarden.collector.wal import WalFailure
from logwarden.common.auth import Authenticator
from logwarden.common.records import load_log_schema
from logwarden.formats import parse
from logwarden.formats.levels import LEVEL_ORIGINAL, normalize

try:
    from logwarden.collector._forward_fast import Columns, packed_columns
except ImportError:  # built without a C compiler: the Python decoder reads everything
    Columns = packed_columns = None

log = logging.getLogger(__name__)
PROTOCOL = "forward"
DEFAULT_PORT = 24224
READ_SIZE = 256 * 1024
MEMORY_PER_CHUNK_BYTE = 3  # the chunk, its decoded table, the write-ahead copy
TAG_SERVICE = ("first", "last", "full")
_MESSAGE_KEYS = ("message", "msg", "log", "MESSAGE")
_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "loglevel", "log_level")
_SERVICE_KEYS = ("service", "service_name", "app", "application")
_USER_KEYS = ("user_id", "userId")
_REQUEST_KEYS = ("request_id", "requestId", "trace_id", "traceId")
_DECLARED = tuple(load_log_schema().get("properties", {}))  # a record's field of these names: kept renamed
# A line worth format detection: JSON, syslog/XML, key=value, CEF/LEEF/Snare/PAN-OS, a level word.
_STRUCTURED = re.compile(
    r"^\s*[{<]|=|CEF:|LEEF:|MSWinEventLog|\d,\d{4}/\d\d/\d\d |\s\|\s|"
    r"\b(?:trace|debug|info|notice|warn|warning|error|err|crit|critical|fatal|panic|alert|emerg)\b",
    re.IGNORECASE,
)
_FALLBACK_MESSAGE_CHARS = 512


class ForwardError(Exception):
    """The peer sent something that is not a Fluent forward message (the connection is closed)."""


class EventTime(int):
    """Fluent's EventTime (msgpack ext type 0) as nanoseconds since the epoch."""


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 8:
        seconds, nanoseconds = struct.unpack(">II", data)
        return EventTime(seconds * 1_000_000_000 + nanoseconds)
    return msgpack.ExtType(code, data)


def unpacker(max_bytes: int) -> msgpack.Unpacker:
    """A streaming msgpack reader bounded to ``max_bytes`` of buffered input (strings decoded as UTF-8,
    invalid bytes kept as surrogate escapes, EventTime read as :class:`EventTime`)."""
    return msgpack.Unpacker(
        raw=False,
        unicode_errors="surrogateescape",
        max_buffer_size=max_bytes,
        ext_hook=_ext_hook,
        strict_map_key=False,
    )


def nanoseconds_of(value: Any) -> int | None:
    """Nanoseconds since the epoch of an entry's time, or None when it is not a time."""
    kind = value.__class__
    if kind is EventTime:
        return int(value)
    if kind is int:
        return value * 1_000_000_000 if 0 <= value < 253402300800 else None
    if kind is float:
        return int(value * 1e9) if math.isfinite(value) and 0 <= value < 253402300800 else None
    if kind is msgpack.Timestamp:  # msgpack's own timestamp extension (-1)
        nanoseconds = value.to_unix_nano()
        return nanoseconds if 0 <= nanoseconds < 253402300800 * 1_000_000_000 else None
    return None


def tag_service(tag: str, mode: str) -> str:
    """The service a tag names (``first``, ``last`` part, or ``full``), cut to the schema's limit."""
    if mode == "first":
        name = tag.split(".", 1)[0]
    elif mode == "last":
        name = tag.rsplit(".", 1)[-1]
    else:
        name = tag
    return service_text(name or tag or "fluent")


# Each known key: (role, priority); the roles: message, level, service, user, request, error code, duration.
_ROLES: dict[str, tuple[int, int]] = {
    key: (role, priority)
    for role, keys in enumerate((_MESSAGE_KEYS, _LEVEL_KEYS, _SERVICE_KEYS, _USER_KEYS, _REQUEST_KEYS,
                                 ("error_code",), ("duration_ms",)))
    for priority, key in enumerate(keys)
}
_ROLE_KEYS = frozenset(_ROLES)
_DECLARED_KEYS = frozenset(_DECLARED)


def _fits(role: int, value: Any) -> bool:
    if role == 0:
        return value.__class__ is str
    if role == 6:
        return value.__class__ in (int, float) and math.isfinite(value) and value >= 0
    return value is not None and value != ""


def fluent_record(record: dict[str, Any], tag: str, service: str, stamp: str) -> dict[str, Any]:
    """The native record of one Fluent record (``record`` is left as it is)."""
    declared, extras = fluent_fields(record, tag, service, stamp)
    declared.update(extras)
    return declared


def fluent_fields(
    record: dict[str, Any], tag: str, service: str, stamp: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The declared fields and the attributes of one Fluent record (``record`` is left as it is)."""
    fields = dict(record)
    chosen: list[Any] = [None] * 7
    priorities = [99] * 7
    for key in record.keys() & _ROLE_KEYS:
        role, priority = _ROLES[key]
        if priority < priorities[role] and _fits(role, record[key]):
            chosen[role], priorities[role] = key, priority
    message, level, own_service, user, request, error, duration = (
        None if key is None else fields.pop(key) for key in chosen
    )
    own_service, user, request, error = as_text(own_service), as_text(user), as_text(request), as_text(error)
    out: dict[str, Any] = {"timestamp": stamp, "level": "INFO", "service": own_service or service, "message": ""}
    if level is None and message and _STRUCTURED.search(message, 0, 300) is not None:
        parsed = parse(message.encode("utf-8", "surrogateescape"))
        if parsed.parse_error is None:
            native = native_from_parsed(parsed, stamp)
            out["timestamp"], out["level"], message = native["timestamp"], native["level"], native["message"]
            if parsed.service and not own_service:
                out["service"] = service_text(parsed.service)
            user = user or native.get("user_id")
            request = request or native.get("request_id")
            error = error or native.get("error_code")
            duration = duration if duration is not None else native.get("duration_ms")
            for key, value in parsed.attributes.items():
                fields.setdefault(key, value)
            if parsed.format != "text":
                fields.setdefault("format", parsed.format)
    elif level is not None:
        out["level"] = level
    if message is None:  # no message field: the record's JSON text, as for JSON application logs
        message = _json_text(fields)[:_FALLBACK_MESSAGE_CHARS] if fields else ""
    out["message"] = message_text(fields, message)
    if user is not None:
        out["user_id"] = user
    if request is not None:
        out["request_id"] = request
    if error is not None:
        out["error_code"] = error
    if duration is not None:
        out["duration_ms"] = duration
    if not fields.keys().isdisjoint(_DECLARED_KEYS):
        for key in _DECLARED:
            if key in fields:
                fields[f"{key}_original"] = fields.pop(key)
    fields["tag" if "tag" not in fields else "fluent_tag"] = tag
    return out, fields


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # keys that are no text, invalid UTF-8, nesting past orjson's limit
        return orjson.dumps(jsonable(_text_fixed(value)), default=str).decode()


@dataclass
class ForwardRecord(RawRecord):
    """A decoded Fluent entry; ``entry`` is kept to write the dead-letter copy of a refused one."""

    entry: Any = None
    attributes_text: str | None = None  # the JSON text of the fields the schema does not declare


@dataclass(frozen=True)
class ForwardOptions:
    """Settings of the forward listener."""

    tag_service: str = "first"  # the service of a record naming none: "first" or "last" part of the tag, or "full"
    max_message_bytes: int = 64 * 1024 * 1024  # one msgpack message, also once decompressed
    shared_keys: Mapping[str, str] | None = None  # shared key -> tenant; set: the handshake is required
    hostname: str = field(default_factory=socket.gethostname)  # the server's name in HELO/PONG

    def __post_init__(self) -> None:
        if self.tag_service not in TAG_SERVICE:
            raise ValueError(f"tag_service must be one of {', '.join(TAG_SERVICE)}, not {self.tag_service!r}")


@dataclass
class Fed:
    """What one read of a connection gave: a batch of records, the chunk ids to acknowledge once it is
    durable, bytes to send back at once (handshake), and the error that ends the connection."""

    batch: DecodedBatch | None = None
    acks: list[Any] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)
    error: str | None = None
    authenticated: bool = True


class ForwardSession:
    """The decoding state of one connection: a bounded msgpack stream of forward messages."""

    def __init__(self, decoder: BatchDecoder, options: ForwardOptions) -> None:
        self.decoder = decoder
        self.options = options
        self.max_bytes = options.max_message_bytes
        self.unpacker = unpacker(self.max_bytes)
        self.index = 0
        self.nonce: bytes | None = os.urandom(16) if options.shared_keys else None
        self.tenant: str | None = None  # set by the handshake
        self._fast: _FastPacked | None = None  # the compiled decoder's messages of the current read

    def helo(self) -> bytes:
        """The ``HELO`` the server sends first when the handshake is required."""
        return msgpack.packb(["HELO", {"nonce": self.nonce, "auth": b"", "keepalive": True}])

    @property
    def awaiting_ping(self) -> bool:
        return self.nonce is not None and self.tenant is None

    def feed(self, chunk: bytes) -> Fed:
        """Decode what ``chunk`` completes; validation included (run it off the event loop)."""
        fed = Fed()
        records: list[ForwardRecord] = []
        self._fast = _FastPacked(self.decoder) if packed_columns is not None else None
        try:
            self.unpacker.feed(chunk)
        except msgpack.BufferFull:
            fed.error = f"a forward message exceeds the {self.max_bytes}-byte limit"
            return fed
        try:
            for message in self.unpacker:
                if self.awaiting_ping:
                    reply, tenant = self._pong(message)
                    fed.replies.append(reply)
                    if tenant is None:
                        fed.authenticated = False
                        fed.error = "handshake failed: the PING did not prove a shared key"
                        break
                    self.tenant = tenant
                    continue
                chunk_id = self._message(message, records)
                if chunk_id is not None:
                    fed.acks.append(chunk_id)
        except (ForwardError, ValueError, msgpack.UnpackException) as exc:
            fed.error = f"not a Fluent forward message: {exc}"
        except Exception as exc:  # noqa: BLE001 - a decoding bug must end this connection only
            log.exception("forward: decoding failed")
            fed.error = f"internal error while decoding: {type(exc).__name__}"
        if self._fast is not None and self._fast.messages and not records:
            fed.batch = self._fast.batch(self.decoder)
        if fed.batch is None and self._fast is not None and self._fast.messages:
            self._slow_path(records)
        if records:
            fed.batch = self.decoder.mapped(records)
            for raw, _ in fed.batch.rejected:
                raw.raw = _dead_letter_bytes(raw)
        return fed

    def _pong(self, message: Any) -> tuple[bytes, str | None]:
        """Check a ``PING`` (``["PING", hostname, salt, sha512(salt+hostname+nonce+key), user, pass]``)
        against every shared key; the ``PONG`` to send and the tenant of the key (None: refused)."""
        if not (isinstance(message, list) and len(message) >= 4 and message[0] == "PING"):
            raise ForwardError("the handshake is required: expected PING")
        _, hostname, salt, digest = message[:4]
        hostname = _bytes(hostname)
        salt = _bytes(salt)
        digest = _bytes(digest).decode("ascii", "replace")
        found = None
        for key, tenant in (self.options.shared_keys or {}).items():
            expected = hashlib.sha512(salt + hostname + self.nonce + key.encode()).hexdigest()
            if hmac.compare_digest(expected, digest):
                found = (key, tenant)
        server = self.options.hostname
        if found is None:
            return msgpack.packb(["PONG", False, "shared_key mismatch", server, ""]), None
        proof = hashlib.sha512(salt + server.encode() + self.nonce + found[0].encode()).hexdigest()
        return msgpack.packb(["PONG", True, "", server, proof]), found[1]

    def _message(self, message: Any, records: list[ForwardRecord]) -> Any:
        """Append the records of one forward message; its ``chunk`` option (None when absent)."""
        if not isinstance(message, list) or len(message) < 2 or not isinstance(message[0], str):
            raise ForwardError("a message is an array [tag, time, record] or [tag, entries] with a text tag")
        tag = message[0].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        second = message[1]
        if isinstance(second, list):  # Forward: [tag, [[time, record], ...], option]
            entries, option = second, _option(message, 2)
        elif isinstance(second, (bytes, str)):  # PackedForward: [tag, bin, option]
            option = _option(message, 2)
            payload = self._payload(second, option)
            service = tag_service(tag, self.options.tag_service)
            if self._fast is not None and not records:
                count = self._fast.add(payload, tag, service, self.index)
                if count >= 0:
                    self.index += count
                    return None if option is None else option.get("chunk")
            self._slow_path(records)
            entries = self._entries(payload)
        else:  # Message: [tag, time, record, option]
            if len(message) < 3:
                raise ForwardError("a message [tag, time, record] lacks its record")
            entries, option = [[second, message[2]]], _option(message, 3)
        service = tag_service(tag, self.options.tag_service)
        self._slow_path(records)
        self.index = self._records(entries, tag, service, records, self.index)
        return None if option is None else option.get("chunk")

    def _records(self, entries: list, tag: str, service: str, records: list[ForwardRecord], first: int) -> int:
        """Append the records of ``entries``, numbered from ``first``; the next number."""
        for index, entry in enumerate(entries, first):
            if not isinstance(entry, list) or len(entry) != 2:
                records.append(ForwardRecord(index, b"", error="an entry is an array [time, record]",
                                             entry=[tag, entry]))
                continue
            time_value, record = entry
            nanoseconds = nanoseconds_of(time_value)
            if nanoseconds is None:
                records.append(ForwardRecord(index, b"", error=f"not a time: {str(time_value)[:40]!r}",
                                             entry=[tag, time_value, record]))
                continue
            if not isinstance(record, dict):
                records.append(ForwardRecord(index, b"", error="a record is a map",
                                             entry=[tag, time_value, record]))
                continue
            value, extras = fluent_fields(record, tag, service, rfc3339_from_ns(nanoseconds))
            try:
                head, attributes = orjson.dumps(value), orjson.dumps(extras)
            except TypeError:  # bytes, invalid UTF-8, keys that are no text, huge integers...
                value, extras = jsonable(_text_fixed(value)), jsonable(_text_fixed(extras))
                try:
                    head, attributes = orjson.dumps(value), orjson.dumps(extras)
                except TypeError as exc:
                    records.append(ForwardRecord(index, b"", error=f"record cannot be kept: {exc}",
                                                 entry=[tag, time_value, record]))
                    continue
            value.update(extras)  # the tag at least: never empty
            records.append(ForwardRecord(index, b"", value, line=head[:-1] + b"," + attributes[1:],
                                         entry=[tag, time_value, record], attributes_text=attributes.decode()))
        return first + len(entries)

    def _slow_path(self, records: list[ForwardRecord]) -> None:
        """The rest of this read takes the Python decoder: the messages the compiled decoder read become
        records first (in their place)."""
        fast, self._fast = self._fast, None
        if fast is not None:
            for payload, tag, service, index in fast.messages:
                self._records(self._entries(payload), tag, service, records, index)

    def _payload(self, payload: bytes | str, option: dict | None) -> bytes:
        """The bytes of a PackedForward payload, decompressed; ForwardError when it cannot be."""
        if isinstance(payload, str):  # sent as msgpack str: the bytes as they came
            payload = payload.encode("utf-8", "surrogateescape")
        if option is not None and option.get("compressed") not in (None, "text"):
            if option["compressed"] != "gzip":
                raise ForwardError(f"compression {str(option['compressed'])[:20]!r} is not supported (gzip is)")
            try:
                payload = decompress(payload, "gzip", self.max_bytes)
            except OverflowError:
                raise ForwardError(f"a decompressed PackedForward exceeds the {self.max_bytes}-byte limit") from None
            except BodyError as exc:
                raise ForwardError(f"cannot decompress a PackedForward: {exc}") from None
        return payload

    def _entries(self, payload: bytes) -> list:
        """The entries of a PackedForward payload; ForwardError when it is corrupt."""
        reader = unpacker(max(len(payload), 1))
        reader.feed(payload)
        entries = []
        end = 0
        for entry in reader:
            entries.append(entry)
            end = reader.tell()  # where the last whole entry ends
        if end != len(payload):
            raise ForwardError("a PackedForward payload ends inside an entry")
        return entries



class _FastPacked:
    """The PackedForward messages of one read decoded by the compiled decoder, as columns; the messages
    are kept to be decoded again by the Python code when the columns cannot make the batch."""

    def __init__(self, decoder: BatchDecoder) -> None:
        limits = decoder.validator.limits
        self.columns = Columns(_STRUCTURED.search, _level_entry, limits.max_fields, limits.max_depth)
        self.messages: list[tuple[bytes, str, str, int]] = []  # payload, tag, service, first index
        self.count = 0

    def add(self, payload: bytes, tag: str, service: str, index: int) -> int:
        """Decode the entries of ``payload``: how many, or -1 when some entry needs the Python decoder."""
        count = packed_columns(payload, self.columns, orjson.dumps(tag), service)
        if count >= 0:
            self.messages.append((payload, tag, service, index))
            self.count += count
        return count

    def batch(self, decoder: BatchDecoder) -> DecodedBatch | None:
        """The validated batch, equal to what ``decoder.mapped`` makes of the Python decoder's records, or
        None when the per-record path must decide (or there is no record)."""
        if not self.count:
            return None
        columns = self.columns
        table_columns = {
            "timestamp": columns.timestamp, "level": columns.level,
            "service": columns.service, "message": columns.message,
        }
        for name in ("user_id", "request_id", "error_code", "duration_ms"):
            values = getattr(columns, name)
            if any(value is not None for value in values):
                table_columns[name] = values
        return columns_batch(decoder, self.count, table_columns, columns.attributes, columns.payload())


def _level_entry(value: str) -> tuple[str, bytes | None] | bool:
    """The level word the columnar check makes of ``value`` and the ``{"level_original": ...}`` text it
    then adds to the attributes (None: unchanged); False when the compiled decoder leaves it to Python
    (it names no level, or its text would not be appended as the batch decoder appends it)."""
    word = normalize(value)
    if word is None:
        return False
    if word == value:
        return word, None
    added = orjson.dumps({LEVEL_ORIGINAL: value})
    return (word, added) if added.count(b'":') == 1 else False


def _option(message: list, position: int) -> dict | None:
    if len(message) > position:
        option = message[position]
        if option is None:
            return None
        if not isinstance(option, dict):
            raise ForwardError("the option of a message is a map")
        return option
    return None


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return b""


def _text_fixed(value: Any, depth: int = 0) -> Any:
    """``value`` with texts holding undecodable bytes (surrogate escapes) decoded with replacement;
    nesting past 200 levels is cut (such a record is refused for its depth anyway)."""
    kind = value.__class__
    if kind is str:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if depth > 200:
        return None
    if kind is dict:
        return {
            _text_fixed(key, depth) if key.__class__ is str else key: _text_fixed(item, depth + 1)
            for key, item in value.items()
        }
    if kind is list:
        return [_text_fixed(item, depth + 1) for item in value]
    return value


def _dead_letter_bytes(record: RawRecord) -> bytes:
    """The refused entry as msgpack ``[tag, time, record]`` (EventTime as Fluent's ext type)."""
    entry = getattr(record, "entry", None)
    if entry is None:
        return record.raw

    try:
        return msgpack.packb(_with_event_times(entry), default=str, unicode_errors="surrogateescape")
    except (TypeError, ValueError, OverflowError):
        return orjson.dumps(jsonable(_text_fixed(entry)), default=str)


def _with_event_times(value: Any) -> Any:
    if isinstance(value, EventTime):
        seconds, nanoseconds = divmod(int(value), 1_000_000_000)
        return msgpack.ExtType(0, struct.pack(">II", seconds, nanoseconds))
    if isinstance(value, list):
        return [_with_event_times(item) for item in value]
    return value


class ForwardListener:
    """The Fluent forward TCP listener feeding the ingestor.

    The collector starts it next to its other listeners::

        listener = ForwardListener(ingestor, auth, executor, idle_timeout, ForwardOptions(...))
        server = await listener.start(host, port, ssl_context)      # port 24224 by default; 0 picks one
        ...
        server.close(); await listener.close_connections()           # on stop, before ingestor.stop()
    """

    def __init__(
        self,
        ingestor: Ingestor,
        auth: Authenticator,
        executor: Executor | None,
        idle_timeout: float = 300.0,
        options: ForwardOptions | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.auth = auth
        self.executor = executor
        self.idle_timeout = idle_timeout
        self.options = options or ForwardOptions()
        self.metrics = ingestor.metrics
        self._handlers: set[asyncio.Task] = set()
        self._reading: set[asyncio.Task] = set()
        self._closing = False

    async def start(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None = None, reuse_port: bool = False
    ) -> asyncio.base_events.Server:
        """Listen on ``host:port`` (TLS when ``ssl_context`` is given; ``reuse_port``: beside other
        collectors on the same port)."""
        return await asyncio.start_server(self.handle, host, port, ssl=ssl_context, limit=READ_SIZE, backlog=1024,
                                          reuse_port=reuse_port or None)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until the peer closes, idles out, errs, or the collector stops."""
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else None
        if not self.auth.stream_allowed(address):
            log.warning("forward connection from %s refused: not in stream_networks", address)
            writer.close()
            return
        task = asyncio.current_task()
        self._handlers.add(task)
        self.metrics.connections.labels(PROTOCOL).inc()
        source = f"{PROTOCOL}:{address}"
        session = ForwardSession(self.ingestor.decoder, self.options)
        loop = asyncio.get_running_loop()
        budget = self.ingestor.budget
        try:
            if session.nonce is not None:
                writer.write(session.helo())
                await writer.drain()
            while not self._closing:
                self._reading.add(task)
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_SIZE), self.idle_timeout)
                finally:
                    self._reading.discard(task)
                if not chunk:
                    break
                self.metrics.bytes.labels(PROTOCOL).inc(len(chunk))
                size = MEMORY_PER_CHUNK_BYTE * len(chunk)
                if budget.exhausted:
                    self.metrics.throttled.labels(PROTOCOL).inc()
                await budget.acquire(size)
                try:
                    fed = await loop.run_in_executor(self.executor, session.feed, chunk)
                    for reply in fed.replies:
                        writer.write(reply)
                    if fed.batch is not None:
                        tenant = session.tenant or self.auth.stream_tenant
                        result = await self.ingestor.submit(fed.batch, PROTOCOL, source, tenant)
                        for error in result.errors[:10]:
                            log.info("rejected forward record %s from %s: %s %s", error["index"], source,
                                     error["field"], error["error"])
                    for chunk_id in fed.acks:  # the records are durable: acknowledge
                        writer.write(msgpack.packb({"ack": chunk_id}, unicode_errors="surrogateescape"))
                    if fed.replies or fed.acks:
                        await writer.drain()
                finally:
                    budget.release(size)
                if fed.error is not None:
                    self.metrics.rejected.labels(PROTOCOL, "bad_stream").inc()
                    log.warning("forward connection from %s closed: %s", address, fed.error)
                    break
        except asyncio.TimeoutError:
            log.info("forward connection from %s idle for %.0fs: closed", address, self.idle_timeout)
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("forward connection from %s ended: %s", address, exc)
        except WalFailure as exc:
            log.error("forward connection from %s closed: %s", address, exc)
        except asyncio.CancelledError:
            log.info("forward connection from %s closed: the collector is stopping", address)
        finally:
            self.metrics.connections.labels(PROTOCOL).dec()
            self._handlers.discard(task)
            writer.close()

    async def close_connections(self) -> None:
        """Stop serving: connections waiting for bytes at once, the others once their chunk is durable
        (and acknowledged)."""
        self._closing = True
        for task in list(self._reading):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
