"""Run the dashboard's Bokeh server in a background thread with its own event loop."""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from tornado.httputil import HTTPServerRequest

from logwarden.common.auth import Authenticator
from logwarden.dashboard.alerts import build_alerts
from logwarden.dashboard.apiclient import ApiClient
from logwarden.dashboard.app import DashboardData, build_document
from logwarden.dashboard.auth import COOKIE, GRANT_KEY, DashboardAuth
from logwarden.dashboard.export import ExportHandler
from logwarden.dashboard.links import ALERTS_PATH, EXPORT_PATH, SEARCH_PATH
from logwarden.dashboard.pages import PageContext
from logwarden.dashboard.quiet import quiet_disconnects
from logwarden.dashboard.search import build_search

log = logging.getLogger(__name__)


@dataclass
class DashboardHandle:
    """A running dashboard; ``stop()`` shuts the server down and joins its thread."""

    url: str
    port: int
    _thread: threading.Thread
    _loop: asyncio.AbstractEventLoop
    _stopped: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (safe to call twice)."""
        if self._stopped.is_set() or not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)


class GrantingApplication(Application):
    """A Bokeh application whose documents know who they were made for: each new session's token
    carries the id of a grant (the visitor's principal and credentials, kept in this process)."""

    def __init__(self, handler: FunctionHandler, auth: DashboardAuth) -> None:
        super().__init__(handler)
        self.auth = auth

    def process_request(self, request: HTTPServerRequest) -> dict[str, object]:
        """The grant id for the session being created by ``request``."""
        return {**super().process_request(request), GRANT_KEY: self.auth.grant_id_for(request)}


def _applications(data: DashboardData, refresh_ms: int, auth: DashboardAuth,
                  api: ApiClient | None) -> dict[str, Application]:
    """The overview, and with an API the log search and alerts pages (and the export behind them)."""
    apps: dict[str, Application] = {"/": Application(FunctionHandler(partial(build_document, data=data,
                                                                              refresh_ms=refresh_ms)))}
    if api is not None:
        context = PageContext(api, auth)
        apps[SEARCH_PATH] = GrantingApplication(FunctionHandler(partial(build_search, context=context)), auth)
        apps[ALERTS_PATH] = GrantingApplication(FunctionHandler(partial(build_alerts, context=context)), auth)
        auth.extra_endpoints = [(EXPORT_PATH, ExportHandler, {"provider": auth, "api": api})]
    return apps


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def serve(port: int, data_dir: Path, links: dict[str, str], host: str = "127.0.0.1", refresh_ms: int = 2000,
          window: timedelta = timedelta(hours=1), startup_timeout: float = 30.0, auth: Authenticator | None = None,
          ssl_context: ssl.SSLContext | None = None, client_ssl: ssl.SSLContext | None = None,
          metrics_token: str | None = None, api_url: str | None = None) -> DashboardHandle:
    """Serve the dashboard on ``host:port`` (0 picks a free port) from ``data_dir``.

    ``links`` names the other UIs: keys ``Dask dashboard``, ``Ray dashboard`` and ``collector metrics``
    (``Stack.urls()`` as it is); values that are not http(s) URLs are ignored.

    ``auth`` decides who may open it (see :mod:`logwarden.dashboard.auth`; None: loopback clients only);
    ``ssl_context`` serves it over TLS. The collector's metrics are read with ``client_ssl`` and
    ``metrics_token`` (a read token, when tokens are configured).

    ``api_url`` (the stack's API) adds the log search (``/search``) and alerts (``/alerts``) pages, which
    ask the API with each visitor's own credentials, and the processing and alerting metrics of the
    health panel.
    """
    started = threading.Event()
    stopped = threading.Event()
    state: dict[str, object] = {}

    def run() -> None:
        from bokeh.server.server import Server
        from tornado.ioloop import IOLoop

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        state["loop"] = loop
        try:
            data = DashboardData(Path(data_dir), dict(links), window, client_ssl=client_ssl,
                                 metrics_token=metrics_token, api_url=api_url)
            provider = DashboardAuth(auth or Authenticator(), secure_cookie=ssl_context is not None)
            api = ApiClient(api_url, client_ssl) if api_url else None
            bound = port or _free_port(host)
            origins = sorted({f"{host}:{bound}", f"localhost:{bound}", f"127.0.0.1:{bound}"})
            quiet_disconnects()
            # The visitor's credentials stay out of the session tokens embedded in the pages.
            server = Server(_applications(data, refresh_ms, provider, api), io_loop=IOLoop.current(),
                            allow_websocket_origin=origins, port=bound, address=host, auth_provider=provider,
                            exclude_headers=["Cookie", "Authorization"], exclude_cookies=[COOKIE],
                            http_server_kwargs={"ssl_options": ssl_context} if ssl_context is not None else None,
                            check_unused_sessions_milliseconds=10_000, unused_session_lifetime_milliseconds=30_000)
            server.start()
            state["port"] = server.port
        except BaseException as exc:  # reported to the caller of serve()
            state["error"] = exc
            started.set()
            loop.close()
            return
        started.set()

        async def wait_for_stop() -> None:
            while not stopped.is_set():
                await asyncio.sleep(0.2)

        try:
            loop.run_until_complete(wait_for_stop())
        finally:
            server.stop()
            loop.close()
            log.info("dashboard stopped")

    thread = threading.Thread(target=run, name="dashboard", daemon=True)
    thread.start()
    if not started.wait(startup_timeout):
        raise RuntimeError(f"dashboard did not start within {startup_timeout}s")
    if "error" in state:
        raise RuntimeError(f"dashboard could not start on {host}:{port}: {state['error']}") from state["error"]
    bound = int(state["port"])
    url = f"{'https' if ssl_context is not None else 'http'}://{host}:{bound}/"
    log.info("dashboard at %s", url)
    return DashboardHandle(url, bound, thread, state["loop"], stopped)
