"""Splunk's HTTP Event Collector (HEC), so that Splunk logging libraries, Fluent Bit's and Vector's
``splunk`` outputs and OpenTelemetry's Splunk HEC exporter can ship here.

Routes:

- ``POST /services/collector/event`` (also ``/services/collector`` and ``.../event/1.0``): one or
  many JSON events, concatenated with or without whitespace between them
  (``{"event": ...}{"event": ...}``); each is ``{"time", "host", "source", "sourcetype", "index",
  "event", "fields"}``.
- ``POST /services/collector/raw`` (and ``.../raw/1.0``): raw text, one event per line; ``host``,
  ``source``, ``sourcetype`` and ``index`` come from the query string.
- ``GET /services/collector/health`` (and ``.../health/1.0``): ``{"text": "HEC is healthy", "code": 17}``.

Clients authenticate with ``Authorization: Splunk <token>``: the same tokens as ``Bearer``, the
tenant coming from the token (the collector's authenticator takes the ``Splunk`` scheme).

Mapping: ``time`` (epoch seconds, a number or a numeric string) -> ``timestamp`` (else a time the
event carries, else the time of receipt). An ``event`` object is read like a JSON application log
(``message``/``msg``, ``level``, ``service``, ``user_id``...; other keys kept as attributes); an
``event`` string (and a raw line) goes through format detection (JSON, logfmt, CEF, LEEF, PAN-OS,
Windows events, text with a level word...), so its level, user, source and destination land in
the record. ``service`` is the one the event names, else ``source``, else ``host``, else
``splunk``. ``host``, ``source``, ``sourcetype`` and ``index`` are kept in the ``splunk``
attribute; ``fields`` (HEC's indexed fields) become attributes.

Answers are HEC's: ``{"text": "Success", "code": 0}``; when events are refused, 400 with code 6
("Invalid data format"), 12 ("Event field is required") or 13 ("Event field cannot be blank") and
``invalid-event-number``, the index of the first refused event, as Splunk does. Unlike Splunk, the
valid events of the request, before and after it, are all kept (the refused ones go to the
dead-letter store), so a client must not resend the request. Indexer acknowledgement (channels,
``/services/collector/ack``) is not offered: the answer itself comes only once the events are
durable.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BOM, BodyError, RawRecord
from logwarden.collector.ingest import IngestResult
from logwarden.collector.mapping import (
    as_text, message_text, native_from_parsed, now_rfc3339, service_text, timestamp_text,
)
from logwarden.collector.protocols.base import HttpProtocol, ProtocolAnswer, ProtocolRequest, register_protocol
from logwarden.collector.protocols.peritem import decode_items_batch, items_of
from logwarden.formats import parse

EVENT_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")
RAW_PATHS = ("/services/collector/raw", "/services/collector/raw/1.0")
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")
META = ("host", "source", "sourcetype", "index")
NO_DATA = "No data"
EVENT_REQUIRED = "Event field is required"
EVENT_BLANK = "Event field cannot be blank"
INVALID = "Invalid data format"
#: HEC's codes of the answers above.
CODES = {NO_DATA: 5, INVALID: 6, EVENT_REQUIRED: 12, EVENT_BLANK: 13}
_DECLARED = frozenset(("timestamp", "level", "service", "message", "user_id", "request_id", "error_code",
                       "duration_ms"))
_DECODER = json.JSONDecoder()


def split_events(body: bytes) -> list[tuple[bytes, Any, str | None]]:
    """The JSON values of a HEC body, concatenated with or without whitespace: (bytes, value, error).

    A value that does not parse ends the reading: the rest of the body is one item with the error
    (no way to find where the next event starts), as Splunk stops at it.
    """
    if body.startswith(BOM):
        body = body[3:]
    pieces = body.replace(b"}{", b"}\n{").split(b"\n") if b"}{" in body else body.split(b"\n")
    events = []
    for piece in pieces:  # most senders put events on lines or back to back: one orjson call each
        if not piece.strip():
            continue
        try:
            events.append((piece, orjson.loads(piece), None))
        except orjson.JSONDecodeError:
            break  # e.g. an event over several lines, or "}{" inside a text: scan the body
    else:
        return events
    return _scan(body)


def _scan(body: bytes) -> list[tuple[bytes, Any, str | None]]:
    events: list[tuple[bytes, Any, str | None]] = []
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = body[: exc.start].decode("utf-8")
        events = _scan_text(good, body[: exc.start])
        if events and events[-1][2] is not None:
            return events
        start = len(good.encode())
        rest = body[start:]
        events.append((rest, None, f"{INVALID}: invalid UTF-8 at byte {exc.start}"))
        return events
    return _scan_text(text, body)


def _scan_text(text: str, body: bytes) -> list[tuple[bytes, Any, str | None]]:
    events: list[tuple[bytes, Any, str | None]] = []
    position, end = 0, len(text)
    while True:
        while position < end and text[position] in " \t\r\n":
            position += 1
        if position >= end:
            return events
        try:
            value, stop = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            events.append((text[position:].encode(), None, f"{INVALID}: {exc.msg}"))
            return events
        except RecursionError:  # readable, but nested deeper than the parser goes: skip this one event
            stop = _value_end(text, position)
            if stop is None:
                events.append((text[position:].encode(), None, f"{INVALID}: nesting too deep"))
                return events
            events.append((text[position:stop].encode(), None, f"{INVALID}: nesting too deep"))
            position = stop
            continue
        events.append((text[position:stop].encode(), value, None))
        position = stop


_SPECIAL = re.compile(r'["\\\[\]{}]')


def _value_end(text: str, position: int) -> int | None:
    """Where the JSON value starting at ``position`` ends (brackets counted outside strings), or None."""
    depth = 0
    in_string = False
    escaped_until = -1
    for match in _SPECIAL.finditer(text, position):
        at = match.start()
        if at < escaped_until:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                escaped_until = at + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return at + 1
    return None


def _meta(source: dict[str, Any], defaults: dict[str, str]) -> dict[str, str]:
    meta = dict(defaults)
    for key in META:
        value = as_text(source.get(key))
        if value:
            meta[key] = value
    return meta


def hec_record(event: Any, meta: dict[str, str], time_value: Any, fields: Any, received: str) -> dict[str, Any]:
    """The native record of one HEC event (``event`` a text or an object)."""
    parsed = parse(event if event.__class__ is dict else event.encode("utf-8", "surrogatepass"))
    record = native_from_parsed(parsed, received)
    if time_value is not None:
        record["timestamp"] = timestamp_text(time_value, "s")
    if event.__class__ is str and parsed.parse_error:  # unreadable as its format: the text as sent
        record["message"] = event
    record["message"] = message_text(record, record["message"])
    if not record["service"]:
        record["service"] = service_text(meta.get("source") or meta.get("host") or "splunk")
    attributes = dict(parsed.attributes)
    if parsed.format != "text":
        attributes.setdefault("format", parsed.format)
    if meta:
        attributes["splunk"] = meta
    if fields.__class__ is dict:
        kept = {}
        for key, value in fields.items():
            if key in _DECLARED or key in attributes or key in record:
                kept[key] = value
            else:
                attributes[key] = value
        if kept:
            attributes.setdefault("splunk", {})["fields"] = kept
    for key, value in attributes.items():
        record[key if key not in record else f"{key}_original"] = value
    return record


@register_protocol
class SplunkHec(HttpProtocol):
    """Splunk's HTTP Event Collector: ``/services/collector/event``, ``/raw`` and ``/health``."""

    name = "splunk"
    routes = (
        *(("POST", path) for path in EVENT_PATHS),
        *(("POST", path) for path in RAW_PATHS),
        *(("GET", path) for path in HEALTH_PATHS),
    )

    def decode(self, request: ProtocolRequest) -> list[RawRecord]:
        """The events of the body (none for the health route)."""
        path = request.path.rstrip("/")
        if path in HEALTH_PATHS:
            return []
        defaults = _meta(request.query, {})
        received = now_rfc3339()
        if path in RAW_PATHS:
            return self._raw(request.body, defaults, received)
        return self._events(request.body, defaults, received)

    def decode_batch(self, request: ProtocolRequest, decoder: BatchDecoder) -> DecodedBatch:
        """The events validated as one batch (``BatchDecoder.mapped``), kept for the answer."""
        return decode_items_batch(self, request, decoder)

    def _events(self, body: bytes, defaults: dict[str, str], received: str) -> list[RawRecord]:
        if not body.strip():
            raise BodyError(NO_DATA)
        records: list[RawRecord] = []
        for number, (raw, value, error) in enumerate(split_events(body)):
            if error is None:
                if value.__class__ is not dict:
                    error = f"{INVALID}: an event must be a JSON object"
                elif "event" not in value:
                    error = EVENT_REQUIRED
                elif value["event"] is None or value["event"] == "" or value["event"] == {}:
                    error = EVENT_BLANK
            if error is not None:
                records.append(RawRecord(number, raw, error=error))
                continue
            event = value["event"]
            if event.__class__ is not dict and event.__class__ is not str:
                event = orjson.dumps(event).decode()  # a number, a list...: its JSON text
            record = hec_record(event, _meta(value, defaults), value.get("time"), value.get("fields"), received)
            try:
                line = orjson.dumps(record)
            except TypeError as exc:
                records.append(RawRecord(number, raw, error=f"{INVALID}: {exc}"))
                continue
            records.append(RawRecord(number, raw, record, line=line))
        return records

    def _raw(self, body: bytes, defaults: dict[str, str], received: str) -> list[RawRecord]:
        if body.startswith(BOM):
            body = body[3:]
        records: list[RawRecord] = []
        for line in body.split(b"\n"):
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            text = line.decode("utf-8", "replace")
            record = hec_record(text, defaults, None, None, received)
            records.append(RawRecord(len(records), line, record, line=orjson.dumps(record)))
        if not records:
            raise BodyError(NO_DATA)
        return records

    def answer(self, request: ProtocolRequest, records: list[RawRecord], result: IngestResult) -> ProtocolAnswer:
        """HEC's answer: Success, or the first refused event's code and number."""
        if request.path.rstrip("/") in HEALTH_PATHS:
            return _answer(200, "HEC is healthy", 17)
        if not result.rejected_indexes:
            return _answer(200, "Success", 0)
        records = items_of(request, records)
        first = min(result.rejected_indexes)
        error = next((record.error for record in records if record.index == first), None)
        reason = next((e for e in result.errors if e["index"] == first), None)
        text = INVALID
        for known in (EVENT_REQUIRED, EVENT_BLANK):
            if error == known:
                text = known
        detail = error if error is not None else (
            f"[{reason['field']}] {reason['error']}" if reason and reason.get("field") else
            (reason or {}).get("error", "refused by the collector's validation")
        )
        return _answer(400, text, CODES[text], {
            "invalid-event-number": first, "detail": detail,
            "accepted": result.accepted, "rejected": result.rejected,
        })

    def error(self, request: ProtocolRequest | None, status: int, message: str) -> ProtocolAnswer:
        """HEC's answer for a refused request."""
        if status == 400:
            text = NO_DATA if message.startswith(NO_DATA) else INVALID
            return _answer(400, text, CODES[text], {"detail": message})
        if status == 401:
            missing = "missing" in message.lower()
            return _answer(401, "Token is required" if missing else "Invalid authorization", 2 if missing else 3,
                           {"detail": message})
        if status == 403:
            return _answer(403, "Invalid token", 4, {"detail": message})
        if status in (429, 503):
            return _answer(status, "Server is busy", 9, {"detail": message})
        if status in (408, 413):
            return _answer(status, INVALID, 6, {"detail": message})
        return _answer(status, "Internal server error", 8, {"detail": message})


def _answer(status: int, text: str, code: int, extra: dict[str, Any] | None = None) -> ProtocolAnswer:
    body: dict[str, Any] = {"text": text, "code": code}
    if extra:
        body.update(extra)
    return ProtocolAnswer(status, orjson.dumps(body))
