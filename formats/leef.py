"""IBM QRadar Log Event Extended Format: ``LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>...``."""
from __future__ import annotations

from typing import Any

from logwarden.formats import timestamps
from logwarden.formats.cef import severity_level
from logwarden.formats.common import MAX_RECORD_BYTES, as_str, clip, decode, error_record
from logwarden.formats.record import ParsedRecord
from logwarden.formats.syslog3164 import split_header

NAME = "leef"


def sniff(data: bytes) -> float:
    """``LEEF:1.0|`` or ``LEEF:2.0|`` at the start or after a syslog header."""
    pos = data.find(b"LEEF:", 0, 256)
    if pos < 0 or data[pos + 5:pos + 6] not in (b"1", b"2"):
        return 0.0
    return 0.97 if data.count(b"|", pos, pos + 512) >= 5 else 0.5


def _delimiter(version: str, parts: list[str]) -> tuple[str, str]:
    """LEEF 2.0 may name its attribute delimiter (a char or ``x09``/``0x09``); 1.0 uses TAB."""
    if version.startswith("2") and len(parts) > 6:
        spec = parts[5]
        if len(spec) == 1:
            return spec, parts[6]
        if spec.lower().lstrip("0").startswith("x"):
            try:
                return chr(int(spec.lower().lstrip("0").lstrip("x"), 16)), parts[6]
            except ValueError:
                pass
        return "\t", "|".join(parts[5:])
    return "\t", "|".join(parts[5:])


def parse(data: bytes | str) -> ParsedRecord:
    """Parse a LEEF event (optionally behind a syslog header)."""
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    text, invalid = decode(data)
    pos = text.find("LEEF:")
    parts = text[pos:].rstrip("\r\n").split("|", 6) if pos >= 0 else []
    if len(parts) < 5:
        return error_record(data, "leef: fewer than 5 header fields")
    delim, body = _delimiter(parts[0][5:], parts) if len(parts) > 5 else ("\t", "")
    attrs: dict[str, Any] = {}
    for pair in body.split(delim):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attrs[key.strip()] = value
    rec = _record(parts, attrs, text[:pos])
    if invalid:
        rec.attributes["invalid_utf8"] = True
    return rec


def _record(parts: list[str], attrs: dict[str, Any], prefix: str) -> ParsedRecord:
    """Map the header and the well-known LEEF keys (devTime, sev, usrName, cat)."""
    stamp = timestamps.parse_any(attrs.get("devTime")) if attrs.get("devTime") else None
    if stamp is None and prefix.strip():
        header = split_header(prefix)
        stamp = header[0].get("timestamp") if header else None
    sev = str(attrs.get("sev", ""))
    level = severity_level(sev) if sev else "INFO"
    message = " ".join(x for x in (parts[4], attrs.get("cat", "")) if x)
    attributes = {"leef_version": parts[0][5:], "vendor": parts[1], "product": parts[2],
                  "product_version": parts[3], "event_id": parts[4], **attrs}
    return ParsedRecord(format=NAME, message=clip(message), timestamp=stamp, level=level,
                        service=parts[2] or None, user_id=as_str(attrs.get("usrName")),
                        attributes=attributes)
