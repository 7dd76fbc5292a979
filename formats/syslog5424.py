"""RFC 5424 syslog, validated strictly (PRI, VERSION, RFC 3339 time, field lengths, SD, UTF-8)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from logwarden.formats import levels
from logwarden.formats.common import BOM, MAX_RECORD_BYTES, clip, error_record
from logwarden.formats.record import ParsedRecord

NAME = "syslog-rfc5424"

_HEADER = re.compile(
    rb"<(0|[1-9]\d{0,2})>([1-9]\d{0,2}) (\S+) ([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) "
)
_TIME = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:(Z)|([+-])(\d\d):(\d\d))\Z"
)
_SD_NAME = rb"[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}"
_SD_ID = re.compile(rb"\[(" + _SD_NAME + rb")")
_SD_PARAM = re.compile(rb" (" + _SD_NAME + rb')="((?:[^"\\\]]|\\["\\\]])*)"')
_UNESCAPE = re.compile(rb'\\(["\\\]])')


class SyslogError(ValueError):
    """Raised internally for a malformed RFC 5424 message."""


def sniff(data: bytes) -> float:
    """``<PRI>VERSION SP`` prefix; confirmed by a strict parse."""
    m = _HEADER.match(data)
    if not m:
        return 0.3 if re.match(rb"<\d{1,3}>[1-9]\d{0,2} ", data) else 0.0
    return 0.97


def parse_time(token: bytes) -> datetime | None:
    """Strict RFC 3339 (``T`` and ``Z`` upper case, ≤ 6 fraction digits, real dates) or ``-``."""
    if token == b"-":
        return None
    m = _TIME.match(token)
    if not m:
        raise SyslogError(f"bad timestamp {token[:40]!r}")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    if not z and (int(oh) > 23 or int(om) > 59):
        raise SyslogError("bad time offset")
    offset = timedelta(hours=int(oh), minutes=int(om)) if not z else timedelta(0)
    tz = timezone(-offset if sign == b"-" else offset)
    us = int(frac.ljust(6, b"0")) if frac else 0
    try:
        stamp = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), us, tzinfo=tz)
    except ValueError as exc:
        raise SyslogError(f"bad date: {exc}") from None
    return stamp.astimezone(timezone.utc)


def parse_sd(data: bytes, pos: int) -> tuple[dict[str, dict[str, str]], int]:
    """Parse STRUCTURED-DATA at ``pos``; return the elements and the position after them."""
    if data[pos:pos + 1] == b"-":
        return {}, pos + 1
    elements: dict[str, dict[str, str]] = {}
    while data[pos:pos + 1] == b"[":
        m = _SD_ID.match(data, pos)
        if not m:
            raise SyslogError("bad SD-ID")
        sd_id = m.group(1).decode("ascii")
        if sd_id in elements:
            raise SyslogError(f"duplicate SD-ID {sd_id}")
        params: dict[str, str] = {}
        pos = m.end()
        while (p := _SD_PARAM.match(data, pos)) is not None:
            try:
                params[p.group(1).decode("ascii")] = _UNESCAPE.sub(rb"\1", p.group(2)).decode("utf-8")
            except UnicodeDecodeError:
                raise SyslogError("SD-PARAM value is not UTF-8") from None
            pos = p.end()
        if data[pos:pos + 1] != b"]":
            raise SyslogError("unterminated SD-ELEMENT")
        elements[sd_id] = params
        pos += 1
    if not elements:
        raise SyslogError("bad STRUCTURED-DATA")
    return elements, pos


def decode_msg(raw: bytes) -> tuple[str, str | None]:
    """MSG after a BOM must be UTF-8; without a BOM any bytes are kept (Latin-1 fallback)."""
    if raw.startswith(BOM):
        try:
            return raw[3:].decode("utf-8"), None
        except UnicodeDecodeError:
            raise SyslogError("MSG after BOM is not valid UTF-8") from None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def parse_strict(data: bytes) -> ParsedRecord:
    """Parse a message; raise :class:`SyslogError` when it violates RFC 5424."""
    m = _HEADER.match(data)
    if not m:
        raise SyslogError("bad header (PRI, VERSION or field)")
    pri = int(m.group(1))
    if pri > 191:
        raise SyslogError(f"PRI {pri} out of range")
    stamp = parse_time(m.group(3))
    sd, pos = parse_sd(data, m.end())
    if pos < len(data) and data[pos:pos + 1] != b" ":
        raise SyslogError("no space between STRUCTURED-DATA and MSG")
    message, encoding = decode_msg(data[pos + 1:]) if pos < len(data) else ("", None)
    return _record(m, pri, stamp, sd, message, encoding)


def _nil(value: bytes) -> str | None:
    """NILVALUE ``-`` becomes None."""
    return None if value == b"-" else value.decode("ascii")


def _record(m: re.Match[bytes], pri: int, stamp: datetime | None, sd: dict[str, dict[str, str]],
            message: str, encoding: str | None) -> ParsedRecord:
    """Assemble the normalized record from the parsed parts."""
    attributes: dict[str, Any] = {"facility": pri >> 3, "severity": pri & 7,
                                  "version": int(m.group(2)), "hostname": _nil(m.group(4)),
                                  "procid": _nil(m.group(6)), "msgid": _nil(m.group(7))}
    if sd:
        attributes["structured_data"] = sd
    if encoding:
        attributes["msg_encoding"] = encoding
    return ParsedRecord(format=NAME, message=clip(message.rstrip("\r\n")), timestamp=stamp,
                        level=levels.from_syslog_severity(pri & 7), service=_nil(m.group(5)),
                        attributes=attributes)


def parse(data: bytes | str) -> ParsedRecord:
    """Parse one RFC 5424 message; invalid ones become ``text`` records with parse_error."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not raw:
        return error_record(raw, "rfc5424: empty record")
    if len(raw) > MAX_RECORD_BYTES:
        return error_record(raw[:MAX_RECORD_BYTES], f"record too large ({len(raw)} bytes)")
    try:
        return parse_strict(raw)
    except SyslogError as exc:
        return error_record(raw, f"rfc5424: {exc}")
