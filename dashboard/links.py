"""Links between the dashboard's pages: the navigation bar, and from an alert to the logs of its window."""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

SEARCH_PATH = "/search"
ALERTS_PATH = "/alerts"
EXPORT_PATH = "/export"
NAV = (f"<nav class='lw-nav'><a href='/'>overview</a> · <a href='{SEARCH_PATH}'>log search</a> · "
       f"<a href='{ALERTS_PATH}'>alerts</a></nav>")


def iso(value: datetime) -> str:
    """``2026-11-22T10:00:00.123456Z``: what the search API takes for ``since`` and ``until``."""
    return value.isoformat().replace("+00:00", "Z")


def logs_url(start: datetime | None, end: datetime | None, service: str | None, key: str | None,
             tenant: str | None) -> str:
    """The log search prefilled with an alert's window (``until`` one second past its end, since the
    bound is exclusive), its service, its key (when it is not the service) and its tenant."""
    params: list[tuple[str, str]] = []
    if service:
        params.append(("service", service))
    if key and key != service:
        params.append(("key", key))
    if tenant:
        params.append(("tenant", tenant))
    if start is not None:
        params.append(("since", iso(start)))
        params.append(("until", iso((end or start) + timedelta(seconds=1))))
    return f"{SEARCH_PATH}?{urlencode(params)}"
