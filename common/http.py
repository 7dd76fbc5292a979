"""Serve an aiohttp application from a background thread with its own event loop."""
from __future__ import annotations

import asyncio
import threading
from typing import Callable

from aiohttp import web


class BackgroundHttpServer:
    """Serves the application ``make_app()`` returns on ``host:port`` until ``stop``."""

    def __init__(self, make_app: Callable[[], web.Application], host: str = "127.0.0.1", port: int = 0,
                 name: str = "http") -> None:
        self.make_app = make_app
        self.host = host
        self.port = port
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Bind and serve; raises OSError when the port is taken."""
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.make_app(), access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, self.host, self.port)
                loop.run_until_complete(site.start())
                self.port = site._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        started.wait(timeout)
        if failure:
            if isinstance(failure[0], OSError):
                raise OSError(failure[0].errno, f"{self.name} cannot listen on {self.host}:{self.port}: "
                                                f"{failure[0].strerror}") from failure[0]
            raise failure[0]

    def stop(self) -> None:
        """Stop serving."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None
