"""Loki push: ``POST /loki/api/v1/push``, JSON or snappy-compressed protobuf (``push.proto``).

JSON: ``{"streams": [{"stream": {labels}, "values": [["<unix ns>", "line"(, {structured metadata})]]}]}``,
optionally gzip'ed (``Content-Encoding``). Protobuf (``Content-Type: application/x-protobuf``): a
``logproto.PushRequest`` in the snappy block format, as Promtail, Grafana Alloy and the Loki clients
send it; it is read by a small reader of the protobuf wire format (``wire.py``, no generated code),
which keeps each entry's original bytes for the dead-letter store and reads a line that is not UTF-8
(which Go's Loki takes) with replacement characters instead of refusing the whole body.

Each entry becomes one record:

- ``timestamp``: the entry's;
- ``service``: the first stream label present among ``service_labels`` (``service_name``, ``service``,
  ``app``, ``job``), else what the line says, else ``unknown_service``;
- ``level``: the first label among ``level_labels`` (``level``, ``severity``, ``detected_level``),
  normalized (the label as sent kept in ``level_original`` when it differs); without one, or when it
  names no level, detected from the line, else INFO;
- ``message`` and the other fields: the line parsed in its detected format (``logwarden.formats``):
  a JSON or logfmt line yields its fields, free text is the message; ``log_format`` names the format;
- attributes: the other stream labels and the structured metadata under their names, then the line's
  fields (on a clash, the line's field is kept as ``attributes.<name>``).

Decoding: a compiled decoder (``_loki_wire.pyx``) reads a protobuf push's streams and entries from the
bytes (a JSON push's from ``orjson``'s objects) into the declared columns, the attributes' JSON text and
the records' lines, which go through the columnar checks (``columns_batch``); a stream's labels are
read once, here. It reads the lines of the
two usual shapes itself (free text no sniffer takes; ``key=value`` logfmt on a stream with a level
label, see its docstring) and hands any other line to the Python code below, one entry at a time. The
batch is the same as the Python decoder's; when a record needs the per-record path (a timestamp out of
range, a stream whose labels cannot be read, a malformed body...), or the compiled module is not built,
or the schema is not the standard one, the whole body is decoded by the Python code, which decides.

Answers are Loki's: 204 when every entry is stored. When some entries are rejected, Loki stores the
valid ones and answers 400 with the last validation error as text (its distributor keeps pushing the
valid streams and returns the error afterwards); logwarden does the same, durable valid entries and a
400 whose text says how many entries were rejected and why (the first few). Clients such as Promtail
do not retry a 400, which is right: the rejected entries are in the dead-letter store. 429 and 503
carry ``Retry-After`` and are retried by the clients.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterable

import orjson

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BOM, BodyError, RawRecord
from logwarden.collector.ingest import IngestResult
from logwarden.collector.protocols.base import HttpProtocol, ProtocolAnswer, ProtocolRequest, register_protocol
from logwarden.collector.protocols.lines import RESERVED, parse_line, parsed_fields
from logwarden.collector.protocols.records import (
    UNKNOWN_SERVICE,
    NativeRecords,
    Schema,
    Shared,
    _texts,
    columns_batch,
    rfc3339_of_us,
)
from logwarden.collector.protocols.snappy import decompress_snappy
from logwarden.collector.protocols.wire import fields, signed64
from logwarden.collector.validation import _depth_exceeds
from logwarden.formats import json_app, logfmt, registry
from logwarden.formats import text as text_format
from logwarden.formats.levels import LEVEL_ORIGINAL, normalize

try:
    from logwarden.collector.protocols import _loki_wire
except ImportError:  # built without a C compiler: the Python decoder reads everything
    _loki_wire = None

PROTOBUF = "application/x-protobuf"
DEFAULT_SERVICE_LABELS = ("service_name", "service", "app", "job")
DEFAULT_LEVEL_LABELS = ("level", "severity", "detected_level")
DEFAULT_MAX_BODY = 64 * 1024 * 1024
MAX_ERRORS_IN_MESSAGE = 5
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
#: The declared fields the compiled decoder writes (the standard log schema's).
_COMPILED_DECLARED = ("timestamp", "level", "service", "message", "user_id", "request_id", "error_code", "duration_ms")
_KEY_LISTS = (
    json_app.TIME_KEYS, json_app.LEVEL_KEYS, json_app.MESSAGE_KEYS, json_app.SERVICE_KEYS, json_app.USER_KEYS,
    json_app.REQUEST_KEYS, json_app.ERROR_KEYS, json_app.DURATION_MS_KEYS, json_app.STATUS_KEYS,
)


class _StreamError(Exception):
    """The labels of a stream cannot be read (its entries are rejected, the other streams kept)."""


def parse_labels(text: str) -> dict[str, str]:
    """A Prometheus label set ``{a="b", c="d"}`` as a dict (raises _StreamError)."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise _StreamError(f"stream labels {text[:80]!r} are not a {{name=\"value\", ...}} set")
    inner = text[1:-1].strip()
    labels: dict[str, str] = {}
    position = 0
    while position < len(inner):
        match = _LABEL.match(inner, position)
        if match is None:
            raise _StreamError(f"cannot read stream labels {text[:80]!r} at character {position + 1}")
        labels[match.group(1)] = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), match.group(2))
        position = match.end()
    return labels


def _text(buf: bytes, start: int, end: int) -> str:
    return buf[start:end].decode("utf-8", "replace")


_CONFIGURED: list[frozenset[str]] = []


@functools.lru_cache(maxsize=4096)
def _logfmt_level(level_key: str | None, level: str | None, status_key: str | None, status: str | None) -> str:
    """The level ``formats.json_app.map_fields`` gives a logfmt line whose level and HTTP status pairs
    (the ones it picks) are these."""
    fields = {key: value for key, value in ((level_key, level), (status_key, status)) if key is not None}
    return json_app.map_fields(fields, logfmt.NAME).level


def _configure_compiled(schema: Schema) -> None:
    """Tell the compiled decoder the key lists of ``map_fields`` and the names an attribute may not take."""
    if not _CONFIGURED or _CONFIGURED[0] != schema.reserved:
        _loki_wire.configure(_KEY_LISTS, sorted(schema.reserved))
        _CONFIGURED[:] = [schema.reserved]


# the protocol ------------------------------------------------------------------------------------
@register_protocol
class LokiPush(HttpProtocol):
    """Loki's push API, JSON and protobuf."""

    name = "loki"
    routes = (("POST", "/loki/api/v1/push"),)
    encodings = ("snappy",)

    def __init__(
        self,
        service_labels: Iterable[str] = DEFAULT_SERVICE_LABELS,
        level_labels: Iterable[str] = DEFAULT_LEVEL_LABELS,
        schema: Schema | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.service_labels = tuple(service_labels)
        self.level_labels = tuple(level_labels)
        self.schema = schema or Schema(reserved=RESERVED + (LEVEL_ORIGINAL,))
        self.max_body_bytes = max_body_bytes

    def decode(self, request: ProtocolRequest) -> list[RawRecord]:
        records, raw_of = self._read(request, self.max_body_bytes)
        return records.raw_records(raw_of)

    def decode_batch(self, request: ProtocolRequest, decoder: BatchDecoder) -> DecodedBatch:
        records = NativeRecords()
        if request.content_type == PROTOBUF:
            body = self._protobuf_body(request, decoder.max_body_bytes)
            batch = self._compiled_batch(body, decoder)
            if batch is not None:
                return batch
            self._read_protobuf(records, body)
            return records.batch(decoder, bytes)
        batch = self._compiled_json_batch(request.body, decoder)
        if batch is not None:
            return batch
        self._read_json(records, request.body)
        return records.batch(decoder, orjson.dumps)

    def _read(self, request: ProtocolRequest, max_body: int) -> tuple[NativeRecords, Any]:
        records = NativeRecords()
        if request.content_type == PROTOBUF:
            self._read_protobuf(records, self._protobuf_body(request, max_body))
            return records, bytes
        self._read_json(records, request.body)
        return records, orjson.dumps

    @staticmethod
    def _protobuf_body(request: ProtocolRequest, max_body: int) -> bytes:
        if (request.headers.get("Content-Encoding") or "").strip().lower() != "snappy":
            return decompress_snappy(request.body, max_body)
        return request.body

    # the compiled decoder ----------------------------------------------------------------------------
    def _compiled_ready(self, decoder: BatchDecoder) -> bool:
        """Whether the compiled decoder may read for ``decoder`` (configured for this schema)."""
        if _loki_wire is None or decoder.columnar is None or self.schema.declared != _COMPILED_DECLARED:
            return False
        if registry.get(logfmt.NAME).parse is not logfmt.parse or registry.get(text_format.NAME).parse is not \
                text_format.parse:
            return False  # a parser replaced: the lines are read as it says, in Python
        _configure_compiled(self.schema)
        return True

    def _compiled_batch(self, body: bytes, decoder: BatchDecoder) -> DecodedBatch | None:
        """The batch of a protobuf push read by the compiled decoder, or None (the Python decoder then)."""
        if not self._compiled_ready(decoder):
            return None
        limits = decoder.validator.limits
        read = _loki_wire.push_columns(
            body, self._compiled_stream, lambda *entry: self._compiled_entry(limits, *entry), limits.max_fields,
            _logfmt_level,
        )
        if read is None:
            return None
        count, columns, attributes, payload = read
        return columns_batch(decoder, count, columns, attributes, payload)

    def _compiled_json_batch(self, body: bytes, decoder: BatchDecoder) -> DecodedBatch | None:
        """The batch of a JSON push whose entries the compiled decoder read, or None (the Python decoder
        then: it also names what is wrong with a body)."""
        if not self._compiled_ready(decoder):
            return None
        try:
            document = orjson.loads(body[3:] if body.startswith(BOM) else body)
        except orjson.JSONDecodeError:
            return None
        streams = document.get("streams") if isinstance(document, dict) else None
        if not isinstance(streams, list):
            return None
        limits = decoder.validator.limits
        out = _loki_wire.Output(limits.max_fields, _logfmt_level)
        entry_of = lambda *entry: self._compiled_entry(limits, *entry)  # noqa: E731
        for item in streams:
            values = item.get("values") if isinstance(item, dict) else None
            labels = item.get("stream") if isinstance(item, dict) else None
            if not isinstance(values, list):
                return None
            if not values:
                continue
            if not isinstance(labels, dict) or not all(isinstance(value, str) for value in labels.values()):
                return None
            if not _loki_wire.json_entries(out, self._stream_info(self._stream(labels)), values, entry_of):
                return None
        parts = out.batch_parts()
        return None if parts is None else columns_batch(decoder, *parts)

    def _compiled_stream(self, labels: bytes) -> tuple | None:
        """What the compiled decoder needs of a stream (see ``_loki_wire.push_columns``), or None when its
        labels cannot be read."""
        try:
            return self._stream_info(self._stream(parse_labels(labels.decode("utf-8", "replace"))))
        except _StreamError:
            return None

    @staticmethod
    def _stream_info(stream: tuple[str | None, Any, dict[str, Any], Shared]) -> tuple:
        service, label, declared, shared = stream
        level = normalize(label) if label is not None else None
        original = label if label is not None and label != level else None
        lines = not declared
        return stream, service, level, original, shared.text, tuple(shared.fields), lines

    def _compiled_entry(
        self, limits: Any, stream: Any, nanos: int, line: bytes, metadata: dict[str, str] | None
    ) -> tuple[dict[str, Any], bytes, str | None] | None:
        """One entry decoded by the Python code for the compiled decoder: its declared fields, JSON line
        and attributes text, or None when the body needs the per-record path (``NativeRecords.fast_batch``'s
        tests)."""
        records = NativeRecords()
        self._entry(records, stream, nanos, line, metadata, None)
        if not records.clean:
            return None
        declared, extras, shared = records.declared[0], records.extras[0], records.shared[0]
        if len(declared) + len(extras) + len(shared.fields) > limits.max_fields:
            return None
        if records.nested[0] and _depth_exceeds(list(extras.values()) + list(shared.fields.values()), limits.max_depth):
            return None
        if shared.fields and extras and not extras.keys().isdisjoint(shared.fields):
            return None
        try:
            line_text, extra_text = _texts(declared, extras, shared)
        except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError):
            return None
        return declared, line_text, None if extra_text == b"{}" else extra_text.decode()

    # streams -----------------------------------------------------------------------------------
    def _stream(self, labels: dict[str, str]) -> tuple[str | None, Any, dict[str, Any], Shared]:
        """Service, level label value, declared fields and shared attributes of a stream."""
        labels = dict(labels)
        service = next((labels.pop(name) for name in self.service_labels if labels.get(name)), None)
        level = next((labels.pop(name) for name in self.level_labels if labels.get(name)), None)
        declared: dict[str, Any] = {}
        shared: dict[str, Any] = {}
        for key, value in labels.items():
            if key in self.schema.reserved:
                self.schema.place(key, value, declared, shared)
            else:
                shared[key] = value
        return service, level, declared, Shared.of(shared)

    def _entry(
        self,
        records: NativeRecords,
        stream: tuple[str | None, Any, dict[str, Any], Shared],
        nanos: int,
        line: bytes,
        metadata: dict[str, str] | None,
        source: Any,
    ) -> None:
        service, level_label, stream_declared, shared = stream
        try:
            stamp = rfc3339_of_us(nanos // 1000)
        except (ValueError, OverflowError, OSError):
            records.add_error(f"timestamp {nanos} ns is out of range", source)
            return
        parsed = parse_line(line)
        level = normalize(level_label) if level_label is not None else None
        declared: dict[str, Any] = {
            "timestamp": stamp,
            "level": level or parsed.level,
            "service": service or parsed.service or UNKNOWN_SERVICE,
            "message": parsed.message,
            **stream_declared,
        }
        extras: dict[str, Any] = {}
        if level_label is not None and level_label != declared["level"]:
            extras[LEVEL_ORIGINAL] = level_label
        taken = frozenset(shared.fields)
        if metadata:
            for key, value in metadata.items():
                if key in self.schema.reserved or key in taken:
                    self.schema.place(key, value, declared, extras, frozenset((key,)))
                else:
                    extras[key] = value
            taken = taken | frozenset(metadata)
        parsed_fields(parsed, self.schema, declared, extras, taken)
        records.add(declared, extras, shared, source, any(isinstance(v, (dict, list)) for v in extras.values()))

    # JSON ----------------------------------------------------------------------------------------
    def _read_json(self, records: NativeRecords, body: bytes) -> None:
        try:
            document = orjson.loads(body[3:] if body.startswith(BOM) else body)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"invalid Loki push JSON: {exc}") from None
        streams = document.get("streams") if isinstance(document, dict) else None
        if not isinstance(streams, list):
            raise BodyError('a Loki push body is {"streams": [{"stream": {labels}, "values": [[ns, line], ...]}]}')
        for entry in streams:
            if not isinstance(entry, dict):
                raise BodyError("each stream must be an object")
            values = entry.get("values")
            if not isinstance(values, list):
                raise BodyError("each stream needs a values list")
            labels = entry.get("stream")
            try:
                if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                    raise _StreamError("stream labels must be an object of strings")
                stream = self._stream(labels)
            except _StreamError as exc:
                for value in values:
                    records.add_error(str(exc), value)
                continue
            for value in values:
                self._json_entry(records, stream, value)

    def _json_entry(self, records: NativeRecords, stream: Any, value: Any) -> None:
        if not isinstance(value, list) or len(value) not in (2, 3):
            records.add_error('an entry is ["<unix ns>", "line"] or ["<unix ns>", "line", {metadata}]', value)
            return
        stamp, line = value[0], value[1]
        metadata = value[2] if len(value) == 3 else None
        if isinstance(stamp, str) and stamp.isdigit() and len(stamp) < 21:
            nanos = int(stamp)
        elif isinstance(stamp, int) and not isinstance(stamp, bool) and stamp >= 0:
            nanos = stamp
        else:
            records.add_error(f"entry timestamp {str(stamp)[:40]!r} is not a number of nanoseconds", value)
            return
        if not isinstance(line, str):
            records.add_error("an entry's line must be a string", value)
            return
        if metadata is not None and (
            not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
        ):
            records.add_error("structured metadata must be an object of strings", value)
            return
        self._entry(records, stream, nanos, line.encode("utf-8", "surrogatepass"), metadata, value)

    # protobuf ------------------------------------------------------------------------------------
    def _read_protobuf(self, records: NativeRecords, buf: bytes) -> None:
        end = len(buf)
        streams: dict[str, Any] = {}
        for number, wire, start, stop in fields(buf, 0, end):
            if number != 1 or wire != 2:
                continue  # format (2) and anything unknown
            labels_text = ""
            entries: list[tuple[int, int]] = []
            for field, field_wire, field_start, field_stop in fields(buf, start, stop):
                if field == 1 and field_wire == 2:
                    labels_text = _text(buf, field_start, field_stop)
                elif field == 2 and field_wire == 2:
                    entries.append((field_start, field_stop))
            stream = streams.get(labels_text)
            if stream is None:
                try:
                    stream = self._stream(parse_labels(labels_text))
                except _StreamError as exc:
                    stream = exc
                streams[labels_text] = stream
            for entry_start, entry_stop in entries:
                source = buf[entry_start:entry_stop]
                if isinstance(stream, _StreamError):
                    records.add_error(str(stream), source)
                    continue
                self._pb_entry(records, stream, buf, entry_start, entry_stop, source)

    def _pb_entry(self, records: NativeRecords, stream: Any, buf: bytes, start: int, stop: int, source: bytes) -> None:
        seconds = nanos = 0
        line = b""
        metadata: dict[str, str] | None = None
        for number, wire, field_start, field_stop in fields(buf, start, stop):
            if wire != 2:
                continue
            if number == 1:
                for part, part_wire, value, _ in fields(buf, field_start, field_stop):
                    if part_wire == 0 and part == 1:
                        seconds = signed64(value)
                    elif part_wire == 0 and part == 2:
                        nanos = signed64(value)
            elif number == 2:
                line = buf[field_start:field_stop]
            elif number == 3:
                name = value = ""
                for part, part_wire, part_start, part_stop in fields(buf, field_start, field_stop):
                    if part_wire == 2 and part == 1:
                        name = _text(buf, part_start, part_stop)
                    elif part_wire == 2 and part == 2:
                        value = _text(buf, part_start, part_stop)
                if metadata is None:
                    metadata = {}
                metadata[name] = value
        total = seconds * 1_000_000_000 + nanos
        if total < 0:
            records.add_error("entry timestamp before 1970", source)
            return
        self._entry(records, stream, total, line, metadata, source)

    # answers -------------------------------------------------------------------------------------
    def answer(self, request: ProtocolRequest, records: list[RawRecord], result: IngestResult) -> ProtocolAnswer:
        if not result.rejected:
            return ProtocolAnswer(204, b"", "text/plain")
        shown = "; ".join(
            f"entry {error['index']}: {error['field'] + ': ' if error['field'] else ''}{error['error']}"
            for error in result.errors[:MAX_ERRORS_IN_MESSAGE]
        )
        text = (
            f"{result.rejected} of {result.accepted + result.rejected} entries rejected "
            f"({result.accepted} stored; the rejected ones are in the dead-letter store): {shown}\n"
        )
        return ProtocolAnswer(400, text.encode(), "text/plain")

    def error(self, request: ProtocolRequest | None, status: int, message: str) -> ProtocolAnswer:
        headers = {"Retry-After": "1"} if status in (429, 503) else {}
        return ProtocolAnswer(status, (message + "\n").encode(), "text/plain", headers)
