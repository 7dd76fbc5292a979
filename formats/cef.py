"""ArcSight Common Event Format: ``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|ext``."""
from __future__ import annotations

import re
from typing import Any

from logwarden.formats import levels, timestamps
from logwarden.formats.common import MAX_RECORD_BYTES, as_str, clip, decode, error_record
from logwarden.formats.record import ParsedRecord
from logwarden.formats.syslog3164 import split_header

NAME = "cef"

_HEADER_SPLIT = re.compile(r"(?<!\\)\|")
_EXT_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")
_HEADER_UNESCAPE = re.compile(r"\\([|\\])")
_EXT_UNESCAPE = re.compile(r"\\([=\\nr])")
_EXT_CHARS = {"=": "=", "\\": "\\", "n": "\n", "r": "\r"}
_SEVERITY_WORDS = {"unknown": levels.INFO, "low": levels.INFO, "medium": levels.WARNING,
                   "high": levels.ERROR, "very-high": levels.CRITICAL}


def sniff(data: bytes) -> float:
    """``CEF:<digit>|`` at the start or after a syslog header."""
    pos = data.find(b"CEF:", 0, 256)
    if pos < 0 or data[pos + 5:pos + 6] != b"|":
        return 0.0
    return 0.97 if data.count(b"|", pos, pos + 1024) >= 7 else 0.5


def severity_level(value: str) -> str:
    """CEF severity 0-3 low, 4-6 medium, 7-8 high, 9-10 very high (or the words)."""
    if value.isdigit():
        n = int(value)
        return (levels.INFO if n <= 3 else levels.WARNING if n <= 6
                else levels.ERROR if n <= 8 else levels.CRITICAL)
    return _SEVERITY_WORDS.get(value.lower(), levels.INFO)


def parse_extension(text: str) -> dict[str, str]:
    """Split the ``key=value key2=value with spaces`` extension (``\\=`` escapes)."""
    keys = [m for m in _EXT_KEY.finditer(text) if text[m.start() - 1:m.start()] != "\\"]
    out: dict[str, str] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        value = text[m.end():end].rstrip(" ")
        out[m.group(1)] = _EXT_UNESCAPE.sub(lambda e: _EXT_CHARS[e.group(1)], value)
    return out


def parse(data: bytes | str) -> ParsedRecord:
    """Parse a CEF event (optionally behind a syslog header)."""
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    text, invalid = decode(data)
    pos = text.find("CEF:")
    parts = _HEADER_SPLIT.split(text[pos:].rstrip("\r\n"), maxsplit=7) if pos >= 0 else []
    if len(parts) < 7:
        return error_record(data, "cef: fewer than 7 header fields")
    head = [_HEADER_UNESCAPE.sub(r"\1", p) for p in parts[:7]]
    ext = parse_extension(parts[7]) if len(parts) > 7 else {}
    rec = _record(head, ext, text[:pos])
    if invalid:
        rec.attributes["invalid_utf8"] = True
    return rec


def _record(head: list[str], ext: dict[str, str], prefix: str) -> ParsedRecord:
    """Map header fields and well-known extension keys onto the record."""
    attrs: dict[str, Any] = {"cef_version": head[0][4:], "device_vendor": head[1],
                             "device_product": head[2], "device_version": head[3],
                             "signature_id": head[4], "severity": head[6], **ext}
    stamp = _time(ext.get("rt") or ext.get("end") or ext.get("start"))
    header = split_header(prefix) if prefix.strip() else None
    if stamp is None and header:
        stamp = header[0].get("timestamp")
    return ParsedRecord(format=NAME, message=clip(head[5]), timestamp=stamp,
                        level=severity_level(head[6].strip()), service=head[2] or None,
                        user_id=as_str(ext.get("suser") or ext.get("duser")),
                        request_id=as_str(ext.get("externalId")),
                        error_code=as_str(ext.get("reason")) if ext.get("outcome") == "failure" else None,
                        attributes=attrs)


def _time(value: str | None) -> Any:
    """CEF ``rt``: epoch millis or ``MMM dd yyyy HH:mm:ss``."""
    if not value:
        return None
    return timestamps.parse_any(value)
