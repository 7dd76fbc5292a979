"""A small collector for protocol tests: an Ingestor and an aiohttp app with ``mount_protocols``, in a
thread, the native ``/v1/logs`` handler as the fallback of the shared route (as the collector will
mount them)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.budget import MemoryBudget
from logwarden.collector.deadletter import DeadLetterStore
from logwarden.collector.ingest import BatchPolicy, Ingestor
from logwarden.collector.metrics import CollectorMetrics
from logwarden.collector.protocols.mount import mount_protocols
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from tests.collector.helpers import spooled_rows

TOKENS = {"token-of-acme-0123456789": "acme"}


def authenticate(request: web.Request) -> str:
    """Tenant from a bearer token (``TOKENS``); no token: the default tenant; a wrong one: 401."""
    header = request.headers.get("Authorization", "")
    if not header:
        return "default"
    token = header.partition(" ")[2]
    if token not in TOKENS:
        raise web.HTTPUnauthorized(text="unknown token")
    return TOKENS[token]


class ProtocolServer:
    """Serves the registered protocols (and a native NDJSON fallback on /v1/logs) over one Ingestor."""

    def __init__(
        self,
        root: Path,
        max_body_bytes: int = 64 << 20,
        max_line_bytes: int = 1 << 20,
        max_depth: int = 32,
        memory_budget: int = 1 << 30,
        options: dict[str, Any] | None = None,
        columnar: bool = True,
    ) -> None:
        self.root = root
        paths = DataDir.at(root).create()
        validator = RecordValidator(
            skew=SkewLimits(max_future=1e10, max_past=1e10), limits=RecordLimits(max_depth=max_depth)
        )
        decoder = BatchDecoder(validator, max_line_bytes, max_body_bytes, columnar=columnar)
        self.ingestor = Ingestor(
            paths,
            validator,
            BatchPolicy(max_age=3600.0),
            CollectorMetrics(),
            lambda batch_id: False,
            MemoryBudget(memory_budget),
            decoder,
        )
        self.executor = ThreadPoolExecutor(max_workers=2)
        self.options = options or {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.protocols: dict = {}

    async def native(self, request: web.Request) -> web.Response:
        """The native API's handling of NDJSON (enough to tell the routes apart)."""
        data = await request.read()
        batch = self.ingestor.decoder.decoded_body(data, request.content_type)
        result = await self.ingestor.submit(batch, "http", "http:test", authenticate(request))
        return web.json_response(result.to_dict(), status=200 if result.accepted else 400)

    async def _start(self) -> None:
        await self.ingestor.start()
        app = web.Application(client_max_size=self.ingestor.decoder.max_body_bytes)
        self.protocols = mount_protocols(
            app,
            self.ingestor,
            authenticate,
            self.executor,
            options=self.options,
            fallbacks={("POST", "/v1/logs"): self.native},
            body_timeout=5.0,
        )
        self.runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.ingestor.stop()

    def call(self, coroutine: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> "ProtocolServer":
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.loop.is_closed():
            return  # stopped already (a test stopped it to read the spool)
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.executor.shutdown(wait=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rows(self) -> list[dict]:
        """The spooled rows (after the server stopped)."""
        return spooled_rows(self.root)

    def letters(self) -> list:
        return list(DeadLetterStore(self.root / "deadletter"))


def attributes(row: dict) -> dict:
    return orjson.loads(row["attributes"]) if row["attributes"] else {}


@pytest.fixture
def server(tmp_path):
    """A running ProtocolServer, stopped at the end unless the test stopped it (to read its spool)."""
    running = ProtocolServer(tmp_path).__enter__()
    yield running
    if not getattr(running, "stopped", False):
        stop(running)


def stop(server: ProtocolServer) -> None:
    """Stop the collector (its open batch goes to the spool, where the test reads it)."""
    server.stopped = True
    server.__exit__(None, None, None)
