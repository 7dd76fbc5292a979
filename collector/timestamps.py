"""RFC 3339 date-times exactly as the reference validator reads them, and their UTC value.

``is_rfc3339`` accepts what jsonschema's ``date-time`` format check accepts (it upper-cases the
value and applies the RFC 3339 grammar: hours up to 23, no leap seconds, year 0 and impossible
days refused). ``to_epoch_us`` turns an accepted value into microseconds since the Unix epoch,
UTC, truncating fractions finer than a microsecond.
"""

from __future__ import annotations

import re
from datetime import date

_RFC3339 = re.compile(
    r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})T([01]\d|2[0123]):([0-5]\d):([0-5]\d)(?:\.(\d+))?"
    r"(?:Z|([+-])([01]\d|2[0123]):([0-5]\d))$",
    re.ASCII,
)
# The subset the columnar fast path handles with Arrow's parser (upper-case T and Z, at most
# microseconds, year 0001 or later); anything else falls back to the per-record path, which
# uses ``to_epoch_us``.
ARROW_RFC3339 = (
    r"^([1-9]\d{3}|0[1-9]\d\d|00[1-9]\d|000[1-9])-(0[1-9]|1[0-2])-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _match(value: str) -> re.Match[str] | None:
    match = _RFC3339.match(value.upper())
    if match is None:
        return None
    try:
        date(int(match.group(1)), int(match.group(2)), int(match.group(3)))  # year 0 and day 31 of June fail
    except ValueError:
        return None
    return match


def is_rfc3339(value: object) -> bool:
    """Whether ``value`` is an RFC 3339 date-time (non-strings pass, as in JSON Schema formats)."""
    if not isinstance(value, str):
        return True
    return _match(value) is not None


def to_epoch_us(value: str) -> int:
    """Microseconds since the Unix epoch (UTC) of an RFC 3339 date-time; ValueError if it is not one."""
    match = _match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {value[:64]!r}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    seconds = days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)
    if sign is not None:
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds -= offset if sign == "+" else -offset
    micros = int((fraction or "")[:6].ljust(6, "0"))
    return seconds * 1_000_000 + micros
