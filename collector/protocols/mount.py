"""Mount the routes of the registered ingest protocols on an aiohttp application.

``mount_protocols(app, ingestor, authenticate, executor)`` adds one handler per (method, path) of
the registered protocols. For each request it:

1. asks ``authenticate(request)`` for the tenant (a callable, sync or async, so that this module
   does not depend on how the collector authenticates; it may raise an ``aiohttp`` HTTP exception,
   e.g. ``HTTPUnauthorized``, which is answered as raised);
2. refuses a body over the limit (413) before reading it, and reserves memory for it in the
   collector's budget (429 with ``Retry-After`` when the budget is spent), as the native API does;
3. reads the body (408 past ``body_timeout``), undoes ``Content-Encoding`` (gzip, deflate, zstd,
   and snappy for a protocol that lists it in ``encodings``), the decompressed size bounded by the
   decoder's ``max_body_bytes`` (413 past it, so a decompression bomb costs nothing), 400 for a
   truncated or corrupt compressed body: a shorter batch is never accepted;
4. picks the protocol: the first of the route whose ``accepts`` says yes; none, and the route's
   ``fallbacks`` handler (the native API on ``/v1/logs``) answers the request, else 415;
5. decodes and validates off the event loop, in ``executor`` (``decode_batch``, the protocol's
   columnar fast path, else ``decode`` and validation record by record), 400 for an unreadable body;
6. makes the accepted records durable and dead-letters the rejected ones under the protocol's name
   (``Ingestor.submit``), 503 with ``Retry-After`` when the write-ahead log fails;
7. answers with the protocol's ``answer`` (or ``error`` for every refusal above).

The collector's HTTP server calls it once::

    mount_protocols(app, ingestor, authenticate=lambda request: principal(request).ingest_tenant(default),
                    executor=executor, fallbacks={("POST", "/v1/logs"): api.post_logs},
                    declare=requires(INGEST), body_timeout=config.body_timeout)

``declare`` decorates each handler (the authentication middleware wants every route to declare a
role); ``options`` gives a protocol's constructor its settings (``{"loki": {"service_labels": [...]}}``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any, Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from logwarden.collector.budget import Reservation
from logwarden.collector.decoding import BodyError, decompress
from logwarden.collector.ingest import IngestResult, Ingestor
from logwarden.collector.protocols import registered_protocols
from logwarden.collector.protocols.base import HttpProtocol, ProtocolAnswer, ProtocolRequest
from logwarden.collector.protocols.snappy import decompress_snappy
from logwarden.collector.wal import WalFailure

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Authenticate = Callable[[web.Request], "str | Awaitable[str]"]
RETRY_AFTER_SECONDS = "1"


def content_type_of(request: web.Request) -> str:
    """The media type of ``request`` in lower case without parameters ("" when absent)."""
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def mount_protocols(
    app: web.Application,
    ingestor: Ingestor,
    authenticate: Authenticate,
    executor: Executor | None,
    *,
    protocols: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    fallbacks: Mapping[tuple[str, str], Handler] | None = None,
    declare: Callable[[Handler], Handler] | None = None,
    body_timeout: float = 30.0,
) -> dict[str, HttpProtocol]:
    """Add the routes of the registered protocols (or of those named in ``protocols``) to ``app``;
    returns the protocol objects by name."""
    classes = registered_protocols()
    names = list(classes) if protocols is None else list(protocols)
    unknown = [name for name in names if name not in classes]
    if unknown:
        raise ValueError(f"unknown protocols {unknown}; known: {sorted(classes)}")
    options = options or {}
    instances = {name: classes[name](**dict(options.get(name, {}))) for name in names}
    routes: dict[tuple[str, str], list[HttpProtocol]] = {}
    for protocol in instances.values():
        for method, path in protocol.routes:
            routes.setdefault((method.upper(), path), []).append(protocol)
    fallbacks = {(method.upper(), path): handler for (method, path), handler in (fallbacks or {}).items()}
    for (method, path), candidates in routes.items():
        endpoint = _Endpoint(
            ingestor, authenticate, executor, candidates, fallbacks.get((method, path)), body_timeout, path
        )
        handler = _handler_of(endpoint)
        if declare is not None:
            handler = declare(handler)
        app.router.add_route(method, path, handler)
    return instances


def _handler_of(endpoint: "_Endpoint") -> Handler:
    """A plain function (``declare`` decorators set attributes on it, which a bound method refuses)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await endpoint.handle(request)

    handle.__name__ = handle.__qualname__ = f"ingest_{endpoint.route.strip('/').replace('/', '_')}"
    return handle


def _head(request: web.Request) -> ProtocolRequest:
    """The request without its body (yet)."""
    return ProtocolRequest(
        method=request.method,
        path=request.path,
        match_info=dict(request.match_info),
        query=dict(request.query),
        headers=request.headers,
        body=b"",
        content_type=content_type_of(request),
    )


def _response(answer: ProtocolAnswer) -> web.Response:
    return web.Response(
        status=answer.status, body=answer.body, content_type=answer.content_type, headers=answer.headers
    )


class _Endpoint:
    """The handler of one (method, path) shared by one or more protocols."""

    def __init__(
        self,
        ingestor: Ingestor,
        authenticate: Authenticate,
        executor: Executor | None,
        candidates: list[HttpProtocol],
        fallback: Handler | None,
        body_timeout: float,
        route: str,
    ) -> None:
        self.ingestor = ingestor
        self.authenticate = authenticate
        self.executor = executor
        self.candidates = candidates
        self.fallback = fallback
        self.body_timeout = body_timeout
        self.route = route
        self.snappy = any("snappy" in protocol.encodings for protocol in candidates)
        self.max_body = ingestor.decoder.max_body_bytes

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await self._handle(request)
        finally:
            self.ingestor.metrics.latency.labels(self.route).observe(time.perf_counter() - started)

    def _refuse(self, protocol: HttpProtocol, preq: ProtocolRequest | None, status: int, message: str,
                reason: str | None = None) -> web.Response:
        if reason is not None:
            self.ingestor.metrics.rejected.labels(protocol.name, reason).inc()
        answer = protocol.error(preq, status, message)
        if status in (429, 503) and "Retry-After" not in answer.headers:
            answer.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return _response(answer)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        first = self.candidates[0]
        tenant = self.authenticate(request)
        if inspect.isawaitable(tenant):
            tenant = await tenant
        length = request.content_length
        if length is not None and length > self.max_body:
            if self.fallback is not None:  # it refuses as well, in its own words
                return await self.fallback(request)
            return self._refuse(first, _head(request), 413, f"body of {length} bytes exceeds the {self.max_body}-byte limit")
        reservation = Reservation.for_request(self.ingestor.budget, length, self.max_body)
        if not reservation.held:
            if self.fallback is not None:
                return await self.fallback(request)
            self.ingestor.metrics.throttled.labels(first.name).inc()
            return self._refuse(first, _head(request), 429, "the collector is at its memory budget; retry later")
        try:
            answer = await self._read_and_ingest(request, tenant, reservation)
        finally:
            reservation.release()
        if answer is None:  # no protocol of this route takes the request: the fallback does
            return await self.fallback(request)
        return answer

    async def _read_and_ingest(
        self, request: web.Request, tenant: str, reservation: Reservation
    ) -> web.StreamResponse | None:
        """The answer, or None when the fallback handler is to answer (after the reservation is released)."""
        first = self.candidates[0]
        try:
            body = await asyncio.wait_for(request.read(), self.body_timeout)
        except asyncio.TimeoutError:
            return self._refuse(first, _head(request), 408, f"body not received within {self.body_timeout:.0f}s")
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(first, _head(request), 413, f"body exceeds the {self.max_body}-byte limit")
        content_type = content_type_of(request)
        encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
        preq = replace(_head(request), body=body)
        loop = asyncio.get_running_loop()
        if encoding not in ("", "identity"):
            try:
                if encoding == "snappy" and self.snappy:
                    data = await loop.run_in_executor(self.executor, decompress_snappy, body, self.max_body)
                else:
                    data = await loop.run_in_executor(self.executor, decompress, body, encoding, self.max_body)
            except (OverflowError, BodyError) as exc:
                # answered by the protocol the content type alone points to, else by the fallback
                claimant = next((c for c in self.candidates if c.accepts(replace(preq, body=b""))), None)
                if claimant is None and self.fallback is not None:
                    return None
                claimant = claimant or first
                if isinstance(exc, OverflowError):
                    return self._refuse(claimant, preq, 413, str(exc))
                return self._refuse(claimant, preq, 400, str(exc), "bad_body")
            preq = replace(preq, body=data)
        data = preq.body
        protocol = next((candidate for candidate in self.candidates if candidate.accepts(preq)), None)
        if protocol is None:
            if self.fallback is not None:
                return None
            return self._refuse(first, preq, 415, f"content type {content_type or '(none)'!r} is not taken here")
        self.ingestor.metrics.bytes.labels(protocol.name).inc(len(body))
        if not reservation.grow_to_decoded(len(body), len(data)):
            self.ingestor.metrics.throttled.labels(protocol.name).inc()
            return self._refuse(protocol, preq, 429, "the collector is at its memory budget; retry later")
        del body, data
        if self.ingestor.failure:
            return self._refuse(protocol, preq, 503, self.ingestor.failure)
        try:
            batch, records = await loop.run_in_executor(self.executor, self._decode, protocol, preq)
        except BodyError as exc:
            return self._refuse(protocol, preq, 400, str(exc), "bad_body")
        except OverflowError as exc:
            return self._refuse(protocol, preq, 413, str(exc))
        if not batch.accepted and not batch.rejected:
            return _response(protocol.answer(preq, records, IngestResult()))
        try:
            result = await self.ingestor.submit(batch, protocol.name, f"{protocol.name}:{request.remote}", tenant)
        except WalFailure as exc:
            return self._refuse(protocol, preq, 503, str(exc))
        return _response(protocol.answer(preq, records, result))

    def _decode(self, protocol: HttpProtocol, preq: ProtocolRequest) -> tuple[Any, list]:
        decoder = self.ingestor.decoder
        batch = protocol.decode_batch(preq, decoder)
        if batch is not None:
            return batch, []
        records = protocol.decode(preq)
        return decoder.records(records), records
