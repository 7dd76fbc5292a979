"""Business hours in a time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours in a time zone (end exclusive; ``end`` before ``start`` spans midnight)."""

    timezone: ZoneInfo
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: dtime = dtime(9, 0)
    end: dtime = dtime(18, 0)


def is_open(hours: BusinessHours, moment: datetime) -> bool:
    """Whether ``moment`` (aware) falls within business hours."""
    local = moment.astimezone(hours.timezone)
    clock = local.time().replace(tzinfo=None)
    if hours.start <= hours.end:
        return local.weekday() in hours.days and hours.start <= clock < hours.end
    # the opening spans midnight: it belongs to the day it starts on
    if clock >= hours.start:
        return local.weekday() in hours.days
    previous_day = (local.weekday() - 1) % 7
    return clock < hours.end and previous_day in hours.days


def next_opening(hours: BusinessHours, moment: datetime) -> datetime:
    """The next start of business hours at or after ``moment`` (``moment`` itself when open)."""
    if is_open(hours, moment):
        return moment
    local = moment.astimezone(hours.timezone)
    for days_ahead in range(0, 8):
        day = (local + timedelta(days=days_ahead)).date()
        start = datetime.combine(day, hours.start, tzinfo=hours.timezone)
        if day.weekday() in hours.days and start >= local:
            return start
    raise ValueError("business hours have no opening day")
