"""Level mapping tables: syslog severity, names, bunyan/pino/OTel numbers, HTTP status, Windows.

:func:`normalize` is the one mapping of a level as a client sends it to one of the five stored
levels; every ingest path (the native API, the columnar fast path, every protocol) goes through
it, and keeps the value as received under :data:`LEVEL_ORIGINAL` when it differs.
"""
from __future__ import annotations

import re
from typing import Any

DEBUG, INFO, WARNING, ERROR, CRITICAL = "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"
#: The five stored levels.
CANONICAL: frozenset[str] = frozenset((DEBUG, INFO, WARNING, ERROR, CRITICAL))
#: The attribute that keeps a level as received when it is not one of the five words.
LEVEL_ORIGINAL = "level_original"

#: RFC 5424 severity 0..7 -> level.
SYSLOG_SEVERITY: tuple[str, ...] = (CRITICAL, CRITICAL, CRITICAL, ERROR, WARNING, INFO, INFO, DEBUG)

#: Level names seen in the wild (lower case) -> level.
NAMES: dict[str, str] = {
    "trace": DEBUG, "debug": DEBUG, "dbg": DEBUG, "verbose": DEBUG, "fine": DEBUG, "finer": DEBUG,
    "finest": DEBUG, "debug1": DEBUG, "debug2": DEBUG, "debug3": DEBUG, "debug4": DEBUG, "debug5": DEBUG,
    "d": DEBUG, "t": DEBUG, "info": INFO, "information": INFO, "informational": INFO, "notice": INFO,
    "inf": INFO, "i": INFO, "stats": INFO, "success": INFO, "success audit": INFO, "audit_success": INFO,
    "config": INFO, "log": INFO, "default": INFO, "n": INFO,
    "warn": WARNING, "warning": WARNING, "wrn": WARNING, "w": WARNING, "failure audit": WARNING,
    "audit_failure": WARNING, "medium": WARNING,
    "error": ERROR, "err": ERROR, "eror": ERROR, "e": ERROR, "severe": ERROR, "high": ERROR,
    "fatal": CRITICAL, "critical": CRITICAL, "crit": CRITICAL, "alert": CRITICAL, "emerg": CRITICAL,
    "emergency": CRITICAL, "panic": CRITICAL, "f": CRITICAL, "c": CRITICAL, "dpanic": CRITICAL,
    "very-high": CRITICAL, "very high": CRITICAL,
    "low": INFO,
}

#: bunyan / pino numeric levels.
BUNYAN: dict[int, str] = {10: DEBUG, 20: DEBUG, 30: INFO, 40: WARNING, 50: ERROR, 60: CRITICAL}

#: Windows EventLog ``Level`` values.
WINDOWS: dict[int, str] = {0: INFO, 1: CRITICAL, 2: ERROR, 3: WARNING, 4: INFO, 5: DEBUG}


#: OpenTelemetry short severity names (``WARN``, ``INFO3``...) and enum names (``SEVERITY_NUMBER_WARN2``).
_OTEL_TEXT = re.compile(r"(?:severity_number_)?(trace|debug|info|warn|error|fatal)[1-4]?")
_OTEL_BASE = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}


def from_name(name: str) -> str | None:
    """Map a level word (``warn``, ``Error``, ``DEBUG5``, OTel's ``WARN2`` or ``SEVERITY_NUMBER_WARN``)
    to a level, or None if unknown."""
    if len(name) >= 32:
        return None
    key = name.strip().lower()
    level = NAMES.get(key)
    if level is None:
        match = _OTEL_TEXT.fullmatch(key)
        if match is not None:
            level = from_otel(_OTEL_BASE[match.group(1)])
    return level


def from_syslog_severity(severity: int) -> str:
    """Map an RFC 5424 severity (0..7) to a level."""
    return SYSLOG_SEVERITY[severity & 7]


def from_otel(number: int) -> str:
    """Map an OpenTelemetry severityNumber (1..24) to a level (TRACE and DEBUG ranges: DEBUG,
    INFO, WARN, ERROR, FATAL: CRITICAL)."""
    if number <= 8:
        return DEBUG
    return (INFO, WARNING, ERROR, CRITICAL)[min((number - 9) // 4, 3)]


def from_number(number: int) -> str | None:
    """Map a numeric level: bunyan/pino (10..60), else syslog severity (0..7)."""
    if number in BUNYAN:
        return BUNYAN[number]
    if 0 <= number <= 7:
        return from_syslog_severity(number)
    return None


def from_http_status(status: int) -> str:
    """5xx -> ERROR, 4xx -> WARNING, anything else -> INFO."""
    if status >= 500:
        return ERROR
    return WARNING if status >= 400 else INFO


def from_windows(level: int) -> str:
    """Map a Windows EventLog ``Level`` (0..5) to a level."""
    return WINDOWS.get(level, INFO)


def from_any(value: Any) -> str | None:
    """Map a level given as a word or a number (int, float or digit string)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return from_number(int(value))
    if isinstance(value, str):
        if value.isdigit():
            return from_number(int(value))
        return from_name(value)
    return None


def normalize(value: Any) -> str | None:
    """One of the five levels for a level as a client sends it, or None when it names none.

    - the five words themselves, unchanged;
    - a word in any case or an abbreviation (``warn``, ``Error``, ``err``, ``crit``, ``fatal``,
      ``trace``, ``notice``, ``emerg``...; the table :data:`NAMES`), OpenTelemetry severity texts
      and enum names (``WARN2``, ``SEVERITY_NUMBER_ERROR``);
    - a number (an integer, an integral float or a string of digits): the syslog severity 0..7
      (RFC 5424: 0-2 CRITICAL, 3 ERROR, 4 WARNING, 5-6 INFO, 7 DEBUG) or the bunyan/pino levels
      10..60. OpenTelemetry severity *numbers* (1..24) overlap the syslog ones, so they are read
      only where the protocol says so: :func:`from_otel` (OTLP, and ``severity_number`` records).
    """
    if isinstance(value, str):
        if value in CANONICAL:
            return value
        stripped = value.strip()
        if stripped.isdigit() and len(stripped) < 4:
            return from_number(int(stripped))
        return from_name(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return from_number(value)
    if isinstance(value, float) and value.is_integer():
        return from_number(int(value))
    return None
