"""Browsers that go away while the dashboard pushes to them print nothing on the console: the writes into
their closed websockets are reported at DEBUG, and only those."""
from __future__ import annotations

import asyncio
import logging
import signal
import time

import aiohttp
import pytest
from tornado.websocket import WebSocketClosedError

from logwarden import dashboard
from logwarden.dashboard.quiet import quiet_disconnects
from tests.dashboard.browser import Chromium, find_chromium
from tests.dashboard.fixtures import make_data_dir

LOGGERS = ("bokeh", "tornado", "asyncio")


class _Records(logging.Handler):
    """Every record that passes the loggers' filters."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_browser_quitting_with_tabs_open_leaves_no_warning_or_traceback(tmp_path):
    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    make_data_dir(tmp_path / "data")
    handle = dashboard.serve(0, tmp_path / "data", {}, refresh_ms=100)  # pushes all the time
    browser = Chromium(binary)
    seen = _Records()
    loggers = [logging.getLogger(name) for name in ("bokeh.server.views.ws", *LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(seen)
    loggers[0].setLevel(logging.INFO)  # "WebSocket connection opened"

    def opened() -> int:
        return sum("WebSocket connection opened" in r.getMessage() for r in seen.records)

    async def open_tabs() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.put(f"http://127.0.0.1:{browser.port}/json/new?{handle.url}") as answer:
                    await answer.json()
            deadline = time.monotonic() + 60
            while opened() < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # refreshing

    try:
        asyncio.run(open_tabs())
        connected = opened()
        browser.process.send_signal(signal.SIGTERM)  # quits as a user closing its window would
        time.sleep(3)
    finally:
        browser.close()
        handle.stop()
        for logger, level in zip(loggers, levels):
            logger.removeHandler(seen)
            logger.setLevel(level)
    assert connected >= 3  # the tabs were connected when the browser quit
    loud = [r for r in seen.records if r.levelno >= logging.WARNING]
    assert not loud, [f"{r.name}: {r.getMessage()}" for r in loud]


def test_only_closed_connections_are_quieted(caplog):
    quiet_disconnects()
    logger = logging.getLogger("tornado.application")
    with caplog.at_level(logging.WARNING):
        try:
            raise WebSocketClosedError()
        except WebSocketClosedError:
            logger.error("Uncaught exception", exc_info=True)
        try:
            raise ValueError("a real bug")
        except ValueError:
            logger.error("Uncaught exception", exc_info=True)
    assert [r.exc_info[0] for r in caplog.records if r.name == "tornado.application"] == [ValueError]
