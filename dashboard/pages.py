"""What the working pages (log search, alerts) share: who is at the page, the API, and running the API
calls off the Bokeh server's event loop."""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from bokeh.document import Document

from logwarden.dashboard.apiclient import ApiClient
from logwarden.dashboard.auth import GRANT_KEY, DashboardAuth, Grant

log = logging.getLogger(__name__)

_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dashboard-api")


@dataclass(frozen=True)
class PageContext:
    """What every working page needs: the API (with the stack's certificate) and the auth provider that
    resolves a document's grant."""

    api: ApiClient
    auth: DashboardAuth


def grant_of(doc: Document, auth: DashboardAuth) -> Grant | None:
    """The grant of the person ``doc`` was made for (None: unknown, e.g. expired)."""
    context = doc.session_context
    if context is None:
        return None
    try:
        payload = context.token_payload
    except (AssertionError, ValueError):
        return None
    return auth.grant(payload.get(GRANT_KEY))


def arguments(doc: Document) -> dict[str, str]:
    """The page's URL parameters (the first value of each)."""
    request = doc.session_context.request if doc.session_context else None
    raw = getattr(request, "arguments", None) or {}
    out = {}
    for name, values in raw.items():
        if values:
            value = values[0]
            out[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return out


def in_background(doc: Document, work: Callable[[], Any], done: Callable[[Any, Exception | None], None]) -> None:
    """Run ``work`` in a worker thread, then ``done(result, error)`` on the document's next tick (the only
    thread-safe way back into a Bokeh document)."""
    def finished(future: Future) -> None:
        error = future.exception()
        result = None if error is not None else future.result()
        try:
            doc.add_next_tick_callback(lambda: done(result, error))
        except Exception:  # noqa: BLE001 - the session closed meanwhile: nobody to show it to
            log.debug("dashboard page gone before its answer arrived")

    _EXECUTOR.submit(work).add_done_callback(finished)
