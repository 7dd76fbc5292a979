"""Fast timestamp parsing to timezone-aware UTC datetimes.

Naive timestamps are taken as UTC. RFC 3164 timestamps carry no year: the year is the
reference year, or the year before when that would put the record more than a day in the future.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc

MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "janv", "janvier", "januar", "ene", "gen"),
            ("feb", "fév", "févr", "fevr", "février", "februar", "febr"),
            ("mar", "mars", "märz", "mär", "mrz"),
            ("apr", "avr", "avril", "april", "abr"),
            ("may", "mai", "mayo", "mag"),
            ("jun", "juin", "juni"),
            ("jul", "juil", "juillet", "juli", "lug"),
            ("aug", "août", "aout", "august", "ago"),
            ("sep", "sept", "septembre", "september", "set"),
            ("oct", "octobre", "okt", "oktober", "ott"),
            ("nov", "novembre", "november"),
            ("dec", "déc", "décembre", "dezember", "dez", "dic"),
        ),
        start=1,
    )
    for name in names
}

_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?\s*(Z|z|UTC|[+-]\d\d(?::?\d\d)?)?"
)
_CLF = re.compile(r"(\d\d)/([A-Za-z]{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d+))? ?([+-]\d{4})?")
#: .NET's JSON date (``ConvertTo-Json`` of Windows PowerShell 5.1): ``/Date(ms since the epoch[±hhmm])/``.
_DOTNET_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
_SLASHED = re.compile(r"(\d{4})/(\d\d)/(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?")
_CTIME = re.compile(r"(?:[A-Za-z]{3} )?([A-Za-z]{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (\d{4})")
_MONTH_FIRST = re.compile(r"([A-Za-z]{3}) +(\d{1,2}) (\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?")


def _micro(fraction: str | None) -> int:
    """Convert a fractional-seconds digit string to microseconds (truncating past 6 digits)."""
    if not fraction:
        return 0
    return int(fraction[:6].ljust(6, "0"))


def _offset(text: str | None) -> timezone | None:
    """Turn ``Z``, ``+02:00``, ``+0200`` or ``-07`` into a timezone (UTC when absent); None for an offset out
    of range (hours past 23 or minutes past 59, e.g. ``+24:00``: the timestamp is then unreadable)."""
    if not text or text in ("Z", "z", "UTC"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), (int(digits[2:4]) if len(digits) >= 4 else 0)
    if hours > 23 or minutes > 59:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _build(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int, tz: timezone | None) -> datetime | None:
    """Build a UTC datetime, or None when the fields (or the offset) are out of range."""
    if tz is None:
        return None
    try:
        return datetime(y, mo, d, h, mi, min(s, 59), us, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_iso(text: str) -> datetime | None:
    """Parse an ISO 8601 / RFC 3339 timestamp (``T`` or space, any fraction, Z/offset/naive)."""
    m = _ISO.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    return _build(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), _micro(frac), _offset(tz))


def parse_clf(text: str) -> datetime | None:
    """Parse a common-log-format timestamp such as ``10/Oct/2000:13:55:36 -0700``."""
    m = _CLF.match(text)
    if not m:
        return None
    d, mon, y, h, mi, s, frac, tz = m.groups()
    month = MONTHS.get(mon.lower())
    if month is None:
        return None
    return _build(int(y), month, int(d), int(h), int(mi), int(s), _micro(frac), _offset(tz))


def parse_slashed(text: str) -> datetime | None:
    """Parse ``2016/02/24 22:06:06`` (PAN-OS), taken as UTC."""
    m = _SLASHED.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    return _build(int(y), int(mo), int(d), int(h), int(mi), int(s), _micro(frac), UTC)


def parse_ctime(text: str) -> datetime | None:
    """Parse ``Tue Feb 18 06:42:17 2025`` or ``Feb 18 2025 06:42:17`` (CEF ``rt``), taken as UTC."""
    m = _CTIME.match(text)
    if m:
        mon, d, h, mi, s, frac, y = m.groups()
    else:
        m = _MONTH_FIRST.match(text)
        if not m:
            return None
        mon, d, y, h, mi, s, frac = m.groups()
    month = MONTHS.get(mon.lower())
    if month is None:
        return None
    return _build(int(y), month, int(d), int(h), int(mi), int(s), _micro(frac), UTC)


def parse_rfc3164(month: str, day: str, hms: str, reference: datetime | None = None) -> datetime | None:
    """Parse the parts of ``Oct 11 22:14:15`` (``hms`` may carry ``.fff``), inferring the year."""
    mon = MONTHS.get(month.lower().rstrip("."))
    if mon is None or len(hms) < 8:
        return None
    ref = reference or datetime.now(UTC)
    try:
        h, mi, s = int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
        us = _micro(hms[9:]) if len(hms) > 9 else 0
        day_n = int(day)
    except ValueError:
        return None
    found = _build(ref.year, mon, day_n, h, mi, s, us, UTC)
    if found is None or found > ref + timedelta(days=1):
        found = _build(ref.year - 1, mon, day_n, h, mi, s, us, UTC)
    return found


def parse_epoch(value: float) -> datetime | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (guessed by magnitude)."""
    v = float(value)
    if v <= 0:
        return None
    if v > 1e17:
        v /= 1e9
    elif v > 1e14:
        v /= 1e6
    elif v > 1e11:
        v /= 1e3
    try:
        return datetime.fromtimestamp(v, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def parse_any(value: Any) -> datetime | None:
    """Parse a timestamp given as a number, a numeric string or any supported text form."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return parse_epoch(value)
    if isinstance(value, dict):
        return _parse_dict(value)
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text.startswith("/Date("):
        found = _DOTNET_DATE.fullmatch(text)
        return parse_epoch(int(found.group(1)) / 1000) if found else None
    if text[:1].isdigit():
        if text.replace(".", "", 1).isdigit():
            return parse_epoch(float(text))
        return parse_iso(text) or parse_slashed(text) or parse_clf(text)
    return parse_ctime(text) or parse_clf(text.lstrip("["))


def _parse_dict(value: dict) -> datetime | None:
    """Log4j2 JSON ``instant`` objects: ``{"epochSecond": s, "nanoOfSecond": ns}``; Windows PowerShell's
    ``ConvertTo-Json`` of a DateTime with its extended properties: ``{"value": "/Date(ms)/", ...}``."""
    if isinstance(value.get("value"), str) and "DateTime" in value:
        return parse_any(value["value"])
    seconds = value.get("epochSecond")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return None
    nanos = value.get("nanoOfSecond", 0)
    nanos = nanos if isinstance(nanos, int) and not isinstance(nanos, bool) else 0
    found = parse_epoch(seconds)
    return found + timedelta(microseconds=nanos // 1000) if found else None
