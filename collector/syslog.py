"""Syslog input: RFC 6587 framing over TCP, and syslog messages as log records.

Messages are parsed with the RFC 5424 and RFC 3164 parsers of ``logwarden.formats``; the
syslog severity becomes the level, APP-NAME/TAG (else the hostname) the service, MSG the
message, and the rest of the header (hostname, facility, severity, procid, msgid,
structured data) goes into a ``syslog`` attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from logwarden.formats import parse

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
    non-transparent, ended by LF (a CR before it is dropped). Messages longer than
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


def syslog_record(
    message: bytes, received: datetime | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The log record of one syslog message, or None and why it is not syslog."""
    message = message.rstrip(b"\r\n\x00")
    fmt = "syslog-rfc5424" if _RFC5424_START.match(message) else "syslog-rfc3164"
    parsed = parse(message, format=fmt)
    if parsed.parse_error:
        return None, parsed.parse_error
    attributes = dict(parsed.attributes)
    stamp = parsed.timestamp or received or datetime.now(timezone.utc)
    record: dict[str, Any] = {
        "timestamp": stamp.astimezone(timezone.utc).isoformat(),
        "level": parsed.level,
        "service": parsed.service or attributes.get("hostname") or "syslog",
        "message": parsed.message,
        "syslog": {"format": fmt, **attributes},
    }
    return record, None


def syslog_line(record: dict[str, Any]) -> bytes:
    """The JSON text of a syslog-derived record (what the write-ahead log keeps)."""
    return orjson.dumps(record)
