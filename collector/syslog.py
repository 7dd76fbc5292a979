"""Syslog input: RFC 6587 framing over TCP, and syslog messages as log records, whatever their payload.

The header is parsed with the RFC 5424 and RFC 3164 parsers of ``logwarden.formats``. The payload
then goes through format detection, so that what a structured payload says lands in the record:

- formats that travel inside a syslog envelope are read from the whole message: CEF, LEEF,
  PAN-OS CSV and Windows events in Snare form (their severity, user, source and destination...);
- otherwise MSG (after the TAG, an ``@cee:`` cookie dropped) is detected: JSON (application logs,
  CloudTrail, Windows events as JSON), logfmt and web access logs are parsed;
- anything else (plain text) is the message as is.

The syslog header supplies what the payload does not: the time (the payload's own time wins),
the service (the payload's, else APP-NAME/TAG, else the hostname), the level (the payload's when it
has one: CEF, LEEF, PAN-OS and Windows severities, an access log's status, a level key of a JSON or
logfmt payload; else the syslog severity). The header itself (hostname, app, facility, severity, procid, msgid,
structured data) is kept in the ``syslog`` attribute, the payload's format in ``format`` and its
fields as attributes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import orjson

from logwarden.collector.mapping import native_from_parsed, service_text
from logwarden.formats import ParsedRecord, cef, detect, leef, panos, parse, windows_event
from logwarden.formats import timestamps as format_timestamps
from logwarden.formats.syslog3164 import TAG, split_header

_RFC5424_START = re.compile(rb"<\d{1,3}>[1-9]")
_DIGITS = frozenset(b"0123456789")
MAX_LENGTH_DIGITS = 10


@dataclass(frozen=True)
class Frame:
    """One framed message, or a framing error with the bytes kept for the dead-letter store."""

    data: bytes
    error: str | None = None


class SyslogFramer:
    """Splits a TCP byte stream into messages (RFC 6587), choosing the framing per message.

    A frame starting with a digit is octet-counted (``LEN SP MSG``); any other frame is
    non-transparent, ended by LF (a CR before it is dropped) or NUL. Messages longer than
    ``max_message`` are reported as errors and skipped without being buffered.
    """

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversized octet-counted frame still to drop
        self._discarding = False  # inside an oversized LF-terminated frame

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by ``data``."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def finish(self) -> list[Frame]:
        """At end of stream: a last unterminated non-transparent frame, or the error of a cut one."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        if self._discarding or self._skip:
            return []
        if not rest.strip():
            return []
        if rest[:1] in (b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9") and b" " in rest[:12]:
            return [Frame(rest[:1024], "connection closed inside an octet-counted frame")]
        return [Frame(rest.rstrip(b"\r"))]

    def _next(self) -> Frame | None:
        buf = self._buffer
        if self._skip:
            dropped = min(self._skip, len(buf))
            del buf[:dropped]
            self._skip -= dropped
            if self._skip:
                return None
        if self._discarding:
            newline = buf.find(b"\n")
            if newline < 0:
                buf.clear()
                return None
            del buf[: newline + 1]
            self._discarding = False
        while buf[:1] in (b"\n", b"\r", b"\x00"):
            del buf[:1]
        if not buf:
            return None
        if buf[0] in _DIGITS:
            return self._octet_counted()
        return self._non_transparent()

    def _octet_counted(self) -> Frame | None:
        buf = self._buffer
        space = buf.find(b" ", 0, MAX_LENGTH_DIGITS + 1)
        if space < 0:
            if len(buf) <= MAX_LENGTH_DIGITS and all(c in _DIGITS for c in buf):
                return None  # the length is still arriving
            return self._non_transparent()
        digits = bytes(buf[:space])
        if not all(c in _DIGITS for c in digits):
            return self._non_transparent()
        length = int(digits)
        if length > self.max_message:
            kept = bytes(buf[: space + 1 + min(1024, length)])
            del buf[: space + 1]
            self._skip = length
            return Frame(kept, f"syslog message of {length} bytes exceeds the {self.max_message}-byte limit")
        end = space + 1 + length
        if len(buf) < end:
            return None
        message = bytes(buf[space + 1 : end])
        del buf[:end]
        return Frame(message)

    def _non_transparent(self) -> Frame | None:
        buf = self._buffer
        newline = buf.find(b"\n")
        nul = buf.find(b"\x00", 0, newline if newline >= 0 else len(buf))
        if nul >= 0:  # NUL-terminated, as Python's SysLogHandler and some appliances send
            newline = nul
        if newline < 0:
            if len(buf) > self.max_message:
                kept = bytes(buf[:1024])
                buf.clear()
                self._discarding = True
                return Frame(kept, f"syslog line exceeds the {self.max_message}-byte limit")
            return None
        message = bytes(buf[:newline])
        del buf[: newline + 1]
        if len(message) > self.max_message:
            return Frame(
                message[:1024],
                f"syslog line of {len(message)} bytes exceeds the " f"{self.max_message}-byte limit",
            )
        return Frame(message.rstrip(b"\r"))


class Header(NamedTuple):
    """A parsed syslog header: its format, time (RFC 3339 text, UTC) and level, APP-NAME/TAG, the
    header fields kept in the ``syslog`` attribute, and MSG."""

    format: str
    timestamp: str | None
    level: str
    app: str | None
    attributes: dict[str, Any]
    text: str


def syslog_record(
    message: bytes, received: datetime | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The log record of one syslog message, its payload parsed, or None and why it is not syslog."""
    message = message.rstrip(b"\r\n\x00")
    header = fast_header(message)
    if header is None:
        header = parsed_header(message)
        if isinstance(header, str):
            return None, header
    app, text = header.app, header.text
    if header.format == RFC3164 and app and app[:1] in ("{", '"', "@"):
        app, text = _untagged(message, header)  # "host {json}": the TAG pattern took the JSON's first key
    payload = _payload(message, text)
    syslog = {"format": header.format, **header.attributes}
    if app:
        syslog["app"] = app
    stamp = header.timestamp or _utc_text(received or datetime.now(timezone.utc))
    fallback_service = app or header.attributes.get("hostname") or "syslog"
    if payload is None:
        return {
            "timestamp": stamp,
            "level": header.level,
            "service": fallback_service,
            "message": text,
            "syslog": syslog,
        }, None
    record = native_from_parsed(payload, stamp)
    if payload.format in _KEYED and _LEVEL_KEY.search(text) is None:
        record["level"] = header.level  # the payload names no level: the syslog severity
    record["service"] = service_text(payload.service) if payload.service else fallback_service
    attributes = dict(payload.attributes)
    attributes["format"] = payload.format
    attributes["syslog"] = syslog
    for key, value in attributes.items():
        record[key if key not in record else f"{key}_original"] = value
    return record, None


def parsed_header(message: bytes) -> Header | str:
    """The header of ``message`` read by the RFC 5424 or RFC 3164 parser of ``logwarden.formats``, or
    why it is not syslog."""
    fmt = RFC5424 if _RFC5424_START.match(message) else RFC3164
    parsed = parse(message, format=fmt)
    if parsed.parse_error:
        return parsed.parse_error
    stamp = _utc_text(parsed.timestamp) if parsed.timestamp else None
    return Header(fmt, stamp, parsed.level, parsed.service, parsed.attributes, parsed.message)


# The fast path of the common headers; anything unusual goes to the formats' parsers, which give the
# same header (tests/collector/test_syslog_payload.py compares them on real samples and generated ones).
RFC5424, RFC3164 = "syslog-rfc5424", "syslog-rfc3164"
_FAST_5424 = re.compile(
    rb"<(0|[1-9]\d{0,2})>1 (\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:Z|\+00:00) "
    rb"([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) -(?: |$)"
)
_FAST_3164 = re.compile(
    rb"<(0|[1-9]\d{0,2})>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) "
    rb"([^ ]+) "
)
_MONTH_NUMBERS = {name: n for n, name in enumerate(
    (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"), start=1)}
_LEVELS = ("CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG")
_MAX_TEXT = 65536
_valid_dates: dict[bytes, bool] = {}


def fast_header(message: bytes) -> Header | None:
    """The header of a common RFC 5424 (``Z`` time, no structured data) or RFC 3164 (English month,
    hostname and TAG) message, or None for anything else."""
    if message[:1] != b"<":
        return None
    match = _FAST_5424.match(message)
    if match is not None:
        return _fast_5424(message, match)
    match = _FAST_3164.match(message)
    if match is not None:
        return _fast_3164(message, match)
    return None


def _valid_date(year: bytes, month: bytes, day: bytes) -> bool:
    key = year + month + day
    known = _valid_dates.get(key)
    if known is None:
        try:
            known = datetime(int(year), int(month), int(day)) is not None
        except ValueError:
            known = False
        if len(_valid_dates) > 4096:
            _valid_dates.clear()
        _valid_dates[key] = known
    return known


def _fast_5424(message: bytes, match: re.Match[bytes]) -> Header | None:
    pri = int(match.group(1))
    year, month, day, hour, minute, second, fraction = match.group(2, 3, 4, 5, 6, 7, 8)
    if pri > 191 or int(hour) > 23 or int(minute) > 59 or int(second) > 59 or not _valid_date(year, month, day):
        return None
    raw = message[match.end():]
    if raw.startswith(b"\xef\xbb\xbf") or len(raw) > _MAX_TEXT:
        return None
    try:
        text = raw.decode("utf-8")
        stamp = (year + b"-" + month + b"-" + day + b"T" + hour + b":" + minute + b":" + second).decode()
    except UnicodeDecodeError:
        return None
    micros = int(fraction.ljust(6, b"0")) if fraction else 0
    stamp = f"{stamp}.{micros:06d}+00:00" if micros else f"{stamp}+00:00"
    host, app, procid, msgid = (None if v == b"-" else v.decode() for v in match.group(9, 10, 11, 12))
    attributes = {"facility": pri >> 3, "severity": pri & 7, "version": 1, "hostname": host, "procid": procid,
                  "msgid": msgid}
    return Header(RFC5424, stamp, _LEVELS[pri & 7], app, attributes, text.rstrip("\r\n"))


def _fast_3164(message: bytes, match: re.Match[bytes]) -> Header | None:
    pri = int(match.group(1))
    host = match.group(7)
    if pri > 191 or host.endswith(b":") or host.startswith(b"---") or (host.isdigit() and len(host) == 4):
        return None
    if host[:1] in (b"{", b'"'):
        return None
    try:
        rest = message[match.end():].decode("utf-8")
        host_text = host.decode("utf-8")
    except UnicodeDecodeError:
        return None
    stamp = _rfc3164_time(match.group(2), match.group(3), match.group(4), match.group(5), match.group(6))
    if stamp is None:
        return None
    attributes: dict[str, Any] = {"facility": pri >> 3, "severity": pri & 7, "hostname": host_text}
    tag = None
    found = TAG.match(rest)  # the formats' TAG pattern: the same APP and MSG
    if found is not None:
        tag = found.group(1)
        if found.group(2):
            attributes["pid"] = found.group(2)
        rest = rest[found.end():]
    if len(rest) > _MAX_TEXT:
        return None
    return Header(RFC3164, stamp, _LEVELS[pri & 7], tag, attributes, rest)


_times_3164: dict[tuple, str | None] = {}


def _rfc3164_time(month: bytes, day: bytes, hour: bytes, minute: bytes, second: bytes) -> str | None:
    """``Mmm dd hh:mm:ss`` as UTC RFC 3339 text, the year inferred as the formats' parser does (this
    year, or the last when that would be more than a day ahead)."""
    now = datetime.now(timezone.utc)
    key = (month, day, hour, minute, second, now.year, now.month, now.day, now.hour)
    known = _times_3164.get(key, False)
    if known is not False:
        return known
    stamp = format_timestamps.parse_rfc3164(
        month.decode(), day.decode(), (hour + b":" + minute + b":" + second).decode(), now
    )
    text = _utc_text(stamp) if stamp is not None else None
    if len(_times_3164) > 4096:
        _times_3164.clear()
    _times_3164[key] = text
    return text


# Payload formats whose level comes from a key that may be absent (the syslog severity then stands); the
# others always carry one (CEF, LEEF, PAN-OS and Windows severities, an access log's status...).
_KEYED = frozenset(("json", "logfmt"))
_LEVEL_KEY = re.compile(
    r'(?:^|[\s{,])"?(?:level|lvl|severity|loglevel|log_level|levelname|log\.level|severityText|severity_text|'
    r'severityNumber|PRIORITY|Severity|@l)"?\s*[=:]'
)
# Formats MSG is read as (plain text and nested syslog are left as text).
_MSG_FORMATS = frozenset(("json", "logfmt", "cloudtrail", "windows-event", "access-log"))
# MSG worth detecting: a JSON object, key=value pairs, an HTTP request line.
_MSG_HINT = re.compile(r"^\s*\{|=|HTTP/\d")
_CEE = "@cee:"


def _untagged(message: bytes, header: Header) -> tuple[str | None, str]:
    """APP and MSG of an RFC 3164 message without a TAG (MSG right after the hostname)."""
    text = message.decode("utf-8", "replace")
    split = split_header(text)
    if split is None:
        return header.app, header.text
    return None, split[1]


def _payload(message: bytes, text: str) -> ParsedRecord | None:
    """The payload parsed by its detected format, or None for plain text (or a payload that does not
    parse as the format it looks like)."""
    head = message[:300]
    embedded = None
    if b"CEF:" in head and cef.sniff(message):
        embedded = cef.NAME
    elif b"LEEF:" in head and leef.sniff(message):
        embedded = leef.NAME
    elif b"MSWinEventLog\t" in head:
        embedded = windows_event.NAME
    elif b"," in head and b"/" in head and panos.sniff(message):
        embedded = panos.NAME
    if embedded is not None:
        parsed = parse(message, format=embedded)
        return None if parsed.parse_error else parsed
    if text.startswith(_CEE):
        text = text[len(_CEE):].lstrip()
    if not text or _MSG_HINT.search(text, 0, 400) is None:
        return None
    found = detect(text)
    if found.format not in _MSG_FORMATS:
        return None
    parsed = parse(text, format=found.format)
    return None if parsed.parse_error else parsed


def _utc_text(stamp: datetime) -> str:
    return stamp.astimezone(timezone.utc).isoformat()


def syslog_line(record: dict[str, Any]) -> bytes:
    """The JSON text of a syslog-derived record (what the write-ahead log keeps)."""
    return orjson.dumps(record)
