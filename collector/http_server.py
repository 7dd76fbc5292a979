"""The collector's HTTP API: ``POST /v1/logs``, ``GET /health``, ``GET /ready``, ``GET /metrics``."""
from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collector.config import CollectorConfig
from collector.decoding import BodyError, decompress, split_body
from collector.ingest import Ingestor

_LOOPBACK = ("127.0.0.1", "::1")


class HttpApi:
    """Request handlers bound to one ingestor."""

    def __init__(self, ingestor: Ingestor, config: CollectorConfig) -> None:
        self.ingestor = ingestor
        self.config = config
        self.metrics = ingestor.metrics

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_post("/v1/logs", self.post_logs)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    def _tenant(self, request: web.Request) -> str:
        if not self.config.tokens:
            if request.remote not in _LOOPBACK:
                raise web.HTTPForbidden(text="no tokens are configured: only loopback clients are accepted")
            return self.config.default_tenant
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise web.HTTPUnauthorized(text="missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        tenant = self.config.tokens.get(header[7:].strip())
        if tenant is None:
            raise web.HTTPForbidden(text="unknown token")
        return tenant

    async def post_logs(self, request: web.Request) -> web.Response:
        """Accept a batch of records; answer with per-record errors."""
        started = time.perf_counter()
        tenant = self._tenant(request)
        body = await request.read()
        self.metrics.bytes.labels("http").inc(len(body))
        try:
            data = decompress(body, request.headers.get("Content-Encoding"), self.config.max_body_bytes)
            records = split_body(data, request.content_type, self.config.max_line_bytes)
        except OverflowError as exc:
            raise web.HTTPRequestEntityTooLarge(self.config.max_body_bytes, len(body), text=str(exc))
        except BodyError as exc:
            return web.json_response({"accepted": 0, "rejected": 0, "errors": [
                {"index": None, "field": "", "error": str(exc)}]}, status=400)
        if not records:
            return web.json_response({"accepted": 0, "rejected": 0, "errors": [
                {"index": None, "field": "", "error": "empty body"}]}, status=400)
        result = await self.ingestor.ingest(records, "http", f"http:{request.remote}", tenant)
        self.metrics.latency.labels("/v1/logs").observe(time.perf_counter() - started)
        return web.json_response(result.to_dict(), status=200 if result.accepted else 400)

    async def health(self, request: web.Request) -> web.Response:
        """Liveness: the process answers."""
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        """Readiness: accepting records."""
        depth = self.ingestor.spool.depth()
        return web.json_response({"ready": True, "spool_depth": depth})

    async def metrics_page(self, request: web.Request) -> web.Response:
        """Prometheus exposition."""
        self.metrics.spool_depth.set(self.ingestor.spool.depth())
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
