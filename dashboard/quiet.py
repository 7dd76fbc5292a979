"""Browser tabs that close: no tracebacks on the console.

When a tab closes while the server writes to its websocket (a periodic refresh, the answer to a
message), the write fails with Tornado's ``WebSocketClosedError`` or ``StreamClosedError``. Bokeh and
Tornado log that as a warning ("Failed sending message as connection was closed") or as an error with
a traceback (``bokeh.server.views.ws`` "Handler or its work threw an exception", ``tornado.application``,
asyncio's "Task exception was never retrieved"). A closed tab is no error: these records, and only
these (the exception must be one of those two, or the message Bokeh's own warning), go to DEBUG level
as one line; every other record passes unchanged.
"""
from __future__ import annotations

import logging

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

LOGGERS = ("bokeh.server.views.ws", "bokeh.server.protocol_handler", "tornado.application", "tornado.general",
           "asyncio")
CLOSED = (WebSocketClosedError, StreamClosedError)
BOKEH_CLOSED_WARNING = "Failed sending message as connection was closed"
log = logging.getLogger(__name__)


def _closed_connection(record: logging.LogRecord) -> bool:
    # asyncio's "Task exception was never retrieved" carries the exception as exc_info too
    if record.exc_info and isinstance(record.exc_info[1], CLOSED):
        return True
    return record.name == "bokeh.server.views.ws" and record.msg == BOKEH_CLOSED_WARNING


class ClosedConnectionFilter(logging.Filter):
    """Lets every record through except those of a browser that went away (logged at DEBUG instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not _closed_connection(record):
            return True
        log.debug("a dashboard browser went away (%s: %s)", record.name, record.getMessage().splitlines()[0])
        return False


_FILTER = ClosedConnectionFilter()


def quiet_disconnects() -> None:
    """Install the filter on the loggers that report closed connections (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
