"""BSD syslog (RFC 3164) and the file formats derived from it (no PRI, RFC 3339 timestamps).

``<PRI>`` is optional, the timestamp is ``Mmm dd hh:mm:ss`` (localized month names accepted,
year inferred) or RFC 3339, followed by HOSTNAME and ``TAG[PID]:``. A message with a valid PRI
but no timestamp is accepted as a relay would (RFC 3164 §4.3.3): all of it is MSG.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from logwarden.formats import levels, timestamps
from logwarden.formats.common import MAX_RECORD_BYTES, clip, decode, error_record
from logwarden.formats.record import ParsedRecord

NAME = "syslog-rfc3164"

PRI = re.compile(r"<(0|[1-9]\d{0,2})>")
BSD_TIME = re.compile(r"([^\W\d_]{3,9}\.?) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d{1,6})?)(?: (\d{4}))?(?= |$)")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?(?= |$)")
TAG = re.compile(r"([^\s\[\]:]{1,64})(?:\[([^\]\s]{0,32})\])?: ?")
# A level word where the host should be ("2026-… ERROR svc: …") is an application log line, not syslog.
_NOT_A_HOST = rb"(?![\[(]?(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|SEVERE)[\])]?[ :])"
_SNIFF_BSD = re.compile(rb"(?:<\d{1,3}>)?[^\W\d_]{3,4}\.? {1,2}\d{1,2} \d\d:\d\d:\d\d(?: \d{4})? " + _NOT_A_HOST,
                        re.IGNORECASE)
_SNIFF_ISO = re.compile(rb"(?:<\d{1,3}>)?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* " + _NOT_A_HOST + rb"\S+ ",
                        re.IGNORECASE)
_SNIFF_UTF8 = re.compile(r"(?:<\d{1,3}>)?[^\W\d_]{3,5}\.? {1,2}\d{1,2} \d\d:\d\d:\d\d")


def sniff(data: bytes) -> float:
    """Syslog prefix (``<PRI>`` and/or a BSD or RFC 3339 timestamp followed by a host)."""
    if _SNIFF_BSD.match(data):
        return 0.9
    if _SNIFF_ISO.match(data):
        return 0.85
    if data[:1] == b"<" and PRI.match(data[:6].decode("latin-1")):
        return 0.6
    if not data[:6].isascii() and _SNIFF_UTF8.match(data[:24].decode("utf-8", "ignore")):
        return 0.85
    return 0.0


def split_header(text: str, reference: datetime | None = None) -> tuple[dict[str, Any], str] | None:
    """Split ``[<PRI>]TIMESTAMP HOST `` off ``text``; None when there is no syslog header."""
    header: dict[str, Any] = {}
    pos = 0
    m = PRI.match(text)
    if m:
        header["pri"] = int(m.group(1))
        pos = m.end()
    stamp, pos = _timestamp(text, pos, reference)
    if stamp is False:
        return (header, text[pos:]) if "pri" in header else None
    header["timestamp"] = stamp
    rest = text[pos:].lstrip(" ")
    host, sep, after = rest.partition(" ")
    if host and not host.endswith(":") and not host.startswith("---") and sep:
        header["hostname"] = host
        rest = after
    return header, rest


def _timestamp(text: str, pos: int, reference: datetime | None) -> tuple[Any, int]:
    """Parse the timestamp at ``pos``: (datetime or None if unparseable, end) or (False, pos)."""
    m = BSD_TIME.match(text, pos)
    if m:
        month, day, hms, year = m.groups()
        if year:
            stamp = timestamps.parse_iso(f"{year}-{timestamps.MONTHS.get(month.lower().rstrip('.'), 0):02d}"
                                         f"-{int(day):02d}T{hms}")
        else:
            stamp = timestamps.parse_rfc3164(month, day, hms, reference)
        return (stamp, m.end()) if month.lower().rstrip(".") in timestamps.MONTHS else (False, pos)
    m = ISO_TIME.match(text, pos)
    if m:
        return timestamps.parse_iso(m.group()), m.end()
    return False, pos


def parse(data: bytes | str, reference: datetime | None = None) -> ParsedRecord:
    """Parse one BSD syslog line; lines without a syslog header become ``text`` with parse_error."""
    if not data:
        return error_record(data, "rfc3164: empty record")
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    text, invalid = decode(data)
    split = split_header(text.rstrip("\r\n"), reference)
    if split is None:
        return error_record(data, "rfc3164: no PRI or timestamp")
    header, rest = split
    if header.get("pri", 0) > 191:
        return error_record(data, f"rfc3164: PRI {header['pri']} out of range")
    return _record(header, rest, invalid)


def _record(header: dict[str, Any], rest: str, invalid: bool) -> ParsedRecord:
    """Build the record from the header and the ``TAG: MSG`` remainder."""
    attributes: dict[str, Any] = {}
    level = levels.INFO
    if "pri" in header:
        pri = header["pri"]
        attributes.update(facility=pri >> 3, severity=pri & 7)
        level = levels.from_syslog_severity(pri & 7)
    if "hostname" in header:
        attributes["hostname"] = header["hostname"]
    service = None
    m = TAG.match(rest)
    if m:
        service = m.group(1)
        if m.group(2):
            attributes["pid"] = m.group(2)
        rest = rest[m.end():]
    if invalid:
        attributes["invalid_utf8"] = True
    return ParsedRecord(format=NAME, message=clip(rest), timestamp=header.get("timestamp"),
                        level=level, service=service, attributes=attributes)
