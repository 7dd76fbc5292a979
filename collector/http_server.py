"""The collector HTTP API: ``POST /v1/logs``, ``GET /health``, ``/ready``, ``/metrics``, ``/openapi.yaml``."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from logwarden.collector.config import CollectorConfig
from logwarden.collector.budget import Reservation
from logwarden.collector.decoding import BodyError, decompress
from logwarden.collector.ingest import Ingestor
from logwarden.collector.openapi import openapi_text
from logwarden.collector.protocols.mount import mount_protocols
from logwarden.collector.wal import WalFailure
from logwarden.common.auth import ADMIN, INGEST, READ, Authenticator
from logwarden.common.http import principal, protect, public, requires

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "1"
REPLAY_HEADER = "X-Logwarden-Replay"


def _error_body(status: int, message: str) -> dict:
    """The collector's answer shape (IngestResult) for a refused request."""
    return {"accepted": 0, "rejected": 0, "errors": [{"index": None, "field": "", "error": message}]}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(_error_body(status, message), status=status, headers=headers)


class HttpApi:
    """Request handlers bound to one ingestor."""

    def __init__(
        self, ingestor: Ingestor, config: CollectorConfig, auth: Authenticator, executor: Executor
    ) -> None:
        self.ingestor = ingestor
        self.config = config
        self.auth = auth
        self.executor = executor
        self.metrics = ingestor.metrics

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=self.config.max_body_bytes)
        protect(app, self.auth, error_body=_error_body)
        # every ingest protocol (OTLP, Loki, Elasticsearch bulk, Splunk HEC, text), the native API on
        # POST /v1/logs answering what no protocol claims
        mount_protocols(app, self.ingestor, self._ingest_tenant, self.executor,
                        options={"loki": dict(self.config.loki)},
                        fallbacks={("POST", "/v1/logs"): self.post_logs},
                        declare=requires(INGEST), body_timeout=self.config.body_timeout)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/openapi.yaml", self.openapi)
        return app

    def admin_app(self) -> web.Application:
        """``/health``, ``/ready`` and ``/metrics`` of this collector alone, for its own port when several
        collectors share the ingest ports (the supervisor probes it, Prometheus scrapes it)."""
        app = web.Application()
        protect(app, self.auth, error_body=_error_body)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    def _ingest_tenant(self, request: web.Request) -> str:
        return principal(request).ingest_tenant(self.auth.default_tenant)

    @requires(INGEST)
    async def post_logs(self, request: web.Request) -> web.Response:
        """Accept a batch of records; answer with per-record errors."""
        started = time.perf_counter()
        try:
            return await self._post_logs(request)
        finally:
            self.metrics.latency.labels("/v1/logs").observe(time.perf_counter() - started)

    async def _post_logs(self, request: web.Request) -> web.Response:
        tenant = principal(request).ingest_tenant(self.auth.default_tenant)
        if self.ingestor.failure:  # a full disk, a failing write-ahead log: nothing is kept, retry later
            return _error(503, self.ingestor.failure, {"Retry-After": RETRY_AFTER_SECONDS})
        length = request.content_length
        if length is not None and length > self.config.max_body_bytes:
            return _error(413, f"body of {length} bytes exceeds the {self.config.max_body_bytes}-byte limit")
        # Reserve memory before reading: the announced length, or a share of the limit for chunked bodies;
        # once the body is read and decompressed, the reservation grows to its real size or the request
        # is refused.
        reservation = Reservation.for_request(self.ingestor.budget, length, self.config.max_body_bytes)
        if not reservation.held:
            return self._throttled()
        try:
            try:
                body = await asyncio.wait_for(request.read(), self.config.body_timeout)
            except asyncio.TimeoutError:
                return _error(408, f"body not received within {self.config.body_timeout:.0f}s")
            except web.HTTPRequestEntityTooLarge:
                return _error(413, f"body exceeds the {self.config.max_body_bytes}-byte limit")
            self.metrics.bytes.labels("http").inc(len(body))
            loop = asyncio.get_running_loop()
            try:
                data = await loop.run_in_executor(
                    self.executor,
                    decompress,
                    body,
                    request.headers.get("Content-Encoding"),
                    self.config.max_body_bytes,
                )
            except OverflowError as exc:
                return _error(413, str(exc))
            except BodyError as exc:
                self.metrics.rejected.labels("http", "bad_body").inc()
                return _error(400, str(exc))
            if not reservation.grow_to_decoded(len(body), len(data)):
                return self._throttled()
            del body
            try:
                batch = await loop.run_in_executor(
                    self.executor, self.ingestor.decoder.decoded_body, data, request.content_type
                )
            except BodyError as exc:
                self.metrics.rejected.labels("http", "bad_body").inc()
                return _error(400, str(exc))
            del data
            if not batch.accepted and not batch.rejected:
                return _error(400, "no records in the body")
            try:
                # A replay of letters already in the dead-letter store keeps a refused record from being
                # stored twice; only an admin may ask for that (from anyone else the header is ignored).
                replay = REPLAY_HEADER in request.headers and principal(request).allows(ADMIN)
                result = await self.ingestor.submit(
                    batch, "http", f"http:{request.remote}", tenant, dead_letter=not replay
                )
            except WalFailure as exc:
                return _error(503, str(exc), {"Retry-After": RETRY_AFTER_SECONDS})
        finally:
            reservation.release()
        return web.json_response(result.to_dict(), status=200 if result.accepted else 400)

    def _throttled(self) -> web.Response:
        self.metrics.throttled.labels("http").inc()
        return _error(
            429, "the collector is at its memory budget; retry later", {"Retry-After": RETRY_AFTER_SECONDS}
        )

    @public
    async def health(self, request: web.Request) -> web.Response:
        """Liveness: the process answers."""
        return web.json_response({"status": "ok"})

    @public
    async def ready(self, request: web.Request) -> web.Response:
        """Readiness: false while the spool is over its high-water mark or the disk cannot take records."""
        problems = []
        depth = self.ingestor.spool_depth
        if depth > self.config.spool_high_water:
            problems.append(
                f"spool holds {depth} batches, over its high-water mark of " f"{self.config.spool_high_water}"
            )
        if self.ingestor.failure:  # includes free disk space under min_free_disk_bytes
            problems.append(self.ingestor.failure)
        body = {
            "ready": not problems,
            "spool_depth": depth,
            "memory_budget_used": self.ingestor.budget.used,
            "problems": problems,
        }
        return web.json_response(body, status=200 if not problems else 503)

    @requires(READ)
    async def metrics_page(self, request: web.Request) -> web.Response:
        """Prometheus exposition."""
        self.metrics.spool_depth.set(self.ingestor.spool_depth)
        self.metrics.memory_used.set(self.ingestor.budget.used)
        return web.Response(
            body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @public
    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI description of this API."""
        return web.Response(text=openapi_text(), content_type="application/yaml")
