"""Named time intervals as Alertmanager writes them (``time_intervals:``), for a route's
``active_time_intervals`` and ``mute_time_intervals``.

An interval is a list of periods; a moment is inside when one period holds it. A period holds a
moment when each of its fields does (an absent field holds every moment): ``times`` (``start_time``
inclusive, ``end_time`` exclusive, ``HH:MM``, ``24:00`` allowed), ``weekdays`` (``monday:friday``),
``days_of_month`` (``1:5``, ``-1`` for the last day), ``months`` (``january:march`` or ``1:3``),
``years`` (``2026:2027``), all read in ``location`` (a time zone, UTC by default).

The ``alerting.business_hours`` of the configuration is also the interval named ``business_hours``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from logwarden.alerting.dispatch.hours import BusinessHours, is_open
from logwarden.alerting.notify.registry import SectionError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = tuple(m.lower() for m in calendar.month_name[1:])
BUSINESS_HOURS = "business_hours"
UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Period:
    """One period of an interval; empty tuples hold every moment."""

    times: tuple[tuple[int, int], ...] = ()  # minutes of the day, [start, end)
    weekdays: tuple[tuple[int, int], ...] = ()  # 0 = Monday, inclusive ranges
    days_of_month: tuple[tuple[int, int], ...] = ()  # negative counts from the month's end
    months: tuple[tuple[int, int], ...] = ()  # 1..12
    years: tuple[tuple[int, int], ...] = ()
    location: ZoneInfo = UTC

    def holds(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) falls in this period."""
        local = moment.astimezone(self.location)
        minute = local.hour * 60 + local.minute
        last_day = calendar.monthrange(local.year, local.month)[1]
        return (
            _within(self.times, minute, end_exclusive=True)
            and _within(self.weekdays, local.weekday())
            and _within(tuple(_days(r, last_day) for r in self.days_of_month), local.day)
            and _within(self.months, local.month)
            and _within(self.years, local.year)
        )


def _within(ranges: tuple[tuple[int, int], ...], value: int, end_exclusive: bool = False) -> bool:
    if not ranges:
        return True
    if end_exclusive:
        return any(lo <= value < hi for lo, hi in ranges)
    return any(lo <= value <= hi for lo, hi in ranges)


def _days(bounds: tuple[int, int], last_day: int) -> tuple[int, int]:
    lo, hi = (last_day + 1 + b if b < 0 else b for b in bounds)
    return lo, hi


@dataclass(frozen=True)
class TimeInterval:
    """A named interval: inside when one of its periods holds the moment (or the business hours)."""

    name: str
    periods: tuple[Period, ...] = ()
    hours: BusinessHours | None = None

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) is inside the interval."""
        if self.hours is not None:
            return is_open(self.hours, moment)
        return any(p.holds(moment) for p in self.periods)


def _range(text: Any, path: list, parse: Callable[[str], int]) -> tuple[int, int]:
    parts = str(text).split(":")
    if len(parts) > 2:
        raise SectionError(path, f"not a range: {text!r}")
    try:
        lo, hi = parse(parts[0].strip()), parse(parts[-1].strip())
    except ValueError as exc:
        raise SectionError(path, str(exc)) from None
    if (lo >= 0) == (hi >= 0) and lo > hi:
        raise SectionError(path, f"the range {text!r} ends before it starts")
    return lo, hi


def _named(names: tuple[str, ...], first: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        low = text.lower()
        if low in names:
            return names.index(low) + first
        if first and text.isdigit() and first <= int(text) < first + len(names):
            return int(text)
        raise ValueError(f"unknown name {text!r} (one of {', '.join(names)})")

    return parse


def _day_of_month(text: str) -> int:
    day = int(text)
    if day == 0 or not -31 <= day <= 31:
        raise ValueError(f"not a day of the month: {text!r} (1..31, or -31..-1 from the end)")
    return day


def _year(text: str) -> int:
    year = int(text)
    if year < 1:
        raise ValueError(f"not a year: {text!r}")
    return year


def _clock_minutes(text: Any, path: list) -> int:
    parts = str(text).split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise SectionError(path, f"not a time of day: {text!r} (use HH:MM)")
    hour, minute = int(parts[0]), int(parts[1])
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise SectionError(path, f"not a time of day: {text!r} (00:00 to 24:00)")
    return hour * 60 + minute


def _times(raw: Iterable[Any], path: list) -> tuple[tuple[int, int], ...]:
    out = []
    for i, item in enumerate(raw):
        where = [*path, i]
        start = _clock_minutes(item.get("start_time"), [*where, "start_time"])
        end = _clock_minutes(item.get("end_time"), [*where, "end_time"])
        if end <= start:
            raise SectionError(where, "end_time must come after start_time")
        out.append((start, end))
    return tuple(out)


def _location(raw: Any, path: list) -> ZoneInfo:
    if raw is None or str(raw).lower() == "utc":
        return UTC
    try:
        return ZoneInfo("localtime" if str(raw) == "Local" else str(raw))
    except (ZoneInfoNotFoundError, ValueError):
        raise SectionError(path, f"unknown time zone {raw!r}") from None


def parse_period(raw: dict, path: list) -> Period:
    """A period of a validated ``time_intervals[].time_intervals[]`` mapping."""

    def ranges(key: str, parse: Callable[[str], int]) -> tuple[tuple[int, int], ...]:
        return tuple(_range(v, [*path, key, i], parse) for i, v in enumerate(raw.get(key) or ()))

    return Period(
        times=_times(raw.get("times") or (), [*path, "times"]),
        weekdays=ranges("weekdays", _named(WEEKDAYS, 0)),
        days_of_month=ranges("days_of_month", _day_of_month),
        months=ranges("months", _named(MONTHS, 1)),
        years=ranges("years", _year),
        location=_location(raw.get("location"), [*path, "location"]),
    )


def parse_intervals(raw: Iterable[dict], hours: BusinessHours | None, path: list) -> dict[str, TimeInterval]:
    """The named intervals of a validated ``time_intervals:`` list (plus ``business_hours`` when set)."""
    out: dict[str, TimeInterval] = {}
    if hours is not None:
        out[BUSINESS_HOURS] = TimeInterval(BUSINESS_HOURS, hours=hours)
    for i, item in enumerate(raw):
        name = item["name"]
        if name in out:
            raise SectionError([*path, i, "name"], f"time interval {name!r} is defined twice")
        periods = tuple(
            parse_period(p, [*path, i, "time_intervals", j]) for j, p in enumerate(item.get("time_intervals") or ())
        )
        out[name] = TimeInterval(name, periods)
    return out


PERIOD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "times": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start_time", "end_time"],
                "properties": {"start_time": {"type": "string"}, "end_time": {"type": "string"}},
            },
        },
        "weekdays": {"type": "array", "items": {"type": "string"}},
        "days_of_month": {"type": "array", "items": {"type": ["string", "integer"]}},
        "months": {"type": "array", "items": {"type": ["string", "integer"]}},
        "years": {"type": "array", "items": {"type": ["string", "integer"]}},
        "location": {"type": "string"},
    },
}
INTERVALS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "time_intervals": {"type": "array", "items": PERIOD_SCHEMA},
        },
    },
}

__all__ = [
    "BUSINESS_HOURS",
    "INTERVALS_SCHEMA",
    "Period",
    "TimeInterval",
    "parse_intervals",
    "parse_period",
]
