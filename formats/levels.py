"""Level mapping tables: syslog severity, names, bunyan/pino/OTel numbers, HTTP status, Windows."""
from __future__ import annotations

from typing import Any

DEBUG, INFO, WARNING, ERROR, CRITICAL = "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"

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


def from_name(name: str) -> str | None:
    """Map a level word (``warn``, ``Error``, ``DEBUG5``...) to a level, or None if unknown."""
    return NAMES.get(name.strip().lower()) if len(name) < 24 else None


def from_syslog_severity(severity: int) -> str:
    """Map an RFC 5424 severity (0..7) to a level."""
    return SYSLOG_SEVERITY[severity & 7]


def from_otel(number: int) -> str:
    """Map an OpenTelemetry severityNumber (1..24) to a level."""
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
