"""Free text: a configured header pattern extracts time/level/service, else the line is the message.

This is also the fallback for unknown formats and the landing place of records other parsers
reject (with ``parse_error`` set by them).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
import orjson

from logwarden.formats import levels, timestamps
from logwarden.formats.common import MAX_RECORD_BYTES, clip, decode
from logwarden.formats.json_app import map_fields
from logwarden.formats.record import ParsedRecord

NAME = "text"

#: Default header patterns, tried in order. Named groups: ts, level, service, msg.
DEFAULT_PATTERNS: tuple[str, ...] = (
    # docker compose: "web-1  | payload" (optionally behind an ANSI erase-line sequence)
    r"(?:\x1b\[[0-9;]*[A-Za-z])*(?P<service>[\w.-]+)\s+\| (?P<msg>.*)",
    # ISO time, level, rest (zap console, log4j, python logging, rust, go...)
    r"\[?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?[\s|]+"
    r"\[?(?P<level>[A-Za-z]{1,9})\]?[\s:|]+(?P<msg>.*)",
    # level first: "ERROR 2024-01-01 ..." / "[WARN] ..." / "INFO: ..."
    r"\[?(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC)\]?[\s:]+(?P<msg>.*)",
)
#: Bytes that are not control characters (TAB..CR, ESC and everything from space up).
_TEXT_BYTES = bytes([*range(9, 14), 27, *range(32, 256)])
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def sniff(data: bytes) -> float:
    """Text always matches, with a low confidence (lower still for binary-looking data)."""
    return 0.05 if looks_binary(data) else 0.2


def looks_binary(data: bytes) -> bool:
    """NUL bytes or more than 10% control bytes in the first 512 bytes."""
    head = data[:512]
    if b"\x00" in head:
        return True
    controls = len(head.translate(None, _TEXT_BYTES))
    return controls * 10 > len(head) > 0


class TextParser:
    """Parse free text with configurable header patterns (first match wins)."""

    def __init__(self, patterns: Sequence[str | re.Pattern[str]] = DEFAULT_PATTERNS) -> None:
        """Compile ``patterns``; each may define the groups ts, level, service and msg."""
        self.patterns = [re.compile(p) if isinstance(p, str) else p for p in patterns]

    def parse(self, data: bytes | str) -> ParsedRecord:
        """Parse one text record; binary or oversized input is flagged with parse_error."""
        error = None
        if len(data) > MAX_RECORD_BYTES:
            data, error = data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes), truncated"
        if isinstance(data, bytes) and looks_binary(data):
            error = error or "binary data"
        text, invalid = decode(data)
        text = text.rstrip("\r\n").replace("\x00", "\\x00")
        rec = ParsedRecord(format=NAME, message=clip(text), parse_error=error)
        if invalid:
            rec.attributes["invalid_utf8"] = True
        if error is None:
            self._apply_header(rec, text)
        return rec

    def _apply_header(self, rec: ParsedRecord, text: str) -> None:
        """Fill time/level/service/message from the first matching header pattern."""
        for pattern in self.patterns:
            m = pattern.match(text)
            if not m:
                continue
            groups = m.groupdict()
            level = levels.from_name(groups["level"]) if groups.get("level") else None
            if groups.get("level") and level is None:
                continue
            if groups.get("ts"):
                rec.timestamp = timestamps.parse_iso(groups["ts"])
            rec.level = level or _guess_level(groups.get("msg") or text)
            if groups.get("service"):
                rec.service = groups["service"]
            if groups.get("msg") is not None:
                rec.message = clip(_ANSI.sub("", groups["msg"]))
            _embedded_json(rec)
            return
        rec.level = _guess_level(text)


def _guess_level(text: str) -> str:
    """A level word among the first words of a free-text line, else INFO."""
    for word in re.findall(r"[A-Za-z]{4,8}", text[:48])[:4]:
        if word.isupper() and (level := levels.from_name(word)):
            return level
    return levels.INFO


def _embedded_json(rec: ParsedRecord) -> None:
    """``service | {json}``: lift the JSON payload's fields (docker-compose wrapped JSON logs)."""
    if not rec.message.startswith("{"):
        return
    try:
        obj = orjson.loads(rec.message)
    except orjson.JSONDecodeError:
        return
    if not isinstance(obj, dict):
        return
    inner = map_fields(obj, NAME)
    rec.timestamp, rec.level = inner.timestamp or rec.timestamp, inner.level
    rec.message, rec.attributes = inner.message, {**inner.attributes, **rec.attributes}
    rec.request_id, rec.user_id = inner.request_id, inner.user_id


_DEFAULT = TextParser()


def parse(data: bytes | str) -> ParsedRecord:
    """Parse with the default header patterns."""
    return _DEFAULT.parse(data)
