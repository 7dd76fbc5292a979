"""Points in time as the command line takes them: RFC 3339, a date, ``now``, or an age such as ``2h``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from logwarden.common.durations import parse_duration


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from ``2026-11-22T10:00:00Z``, ``2026-11-22``, ``now`` or ``90m`` (ago)."""
    now = now or datetime.now(timezone.utc)
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use RFC 3339, a date, 'now' or an age like 2h)") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
