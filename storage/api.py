"""The search HTTP API over the lake: ``GET /v1/search``, ``GET /v1/count``, ``GET /v1/aggregates``.

Every route needs role ``read`` (:mod:`logwarden.common.auth`): a token's principal has a tenant, and
every query is confined to that tenant's records whatever its parameters say; a principal of tenant
``"*"`` sees every tenant. With no tokens configured, only loopback clients are served and they see
every tenant (the collector's rule).
"""
from __future__ import annotations

import asyncio
import io
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web
from multidict import MultiMapping

from logwarden.common.auth import READ, Authenticator
from logwarden.common.durations import parse_duration
from logwarden.common.http import BackgroundHttpServer, principal, protect, requires
from logwarden.storage.export import CONTENT_TYPES, FORMATS, write_stream
from logwarden.storage.lake import Lake
from logwarden.storage.search import (DEFAULT_LIMIT, DEFAULT_PERCENTILES, AggregateRequest, SearchError, SearchRequest,
                            aggregate, count, open_search, parse_time)

log = logging.getLogger(__name__)

MAX_LIMIT = 10_000
T = TypeVar("T")

LAKE_KEY = web.AppKey("lake", Lake)
SLOTS_KEY = web.AppKey("slots", asyncio.Semaphore)


def _values(query: MultiMapping[str], name: str) -> tuple[str, ...]:
    """Every value of a repeatable, comma-separable parameter."""
    out: list[str] = []
    for raw in query.getall(name, []):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(out)


def _int(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SearchError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise SearchError(f"{name} must be between {low} and {high}")
    return value


def request_from_query(query: MultiMapping[str], max_limit: int = MAX_LIMIT) -> SearchRequest:
    """A SearchRequest from URL parameters (any ``tenant`` parameter is ignored: the token decides)."""
    order = query.get("order", "desc").lower()
    if order not in ("asc", "desc"):
        raise SearchError("order must be asc or desc")
    return SearchRequest(
        services=_values(query, "service"), levels=_values(query, "level"), user_ids=_values(query, "user_id"),
        request_ids=_values(query, "request_id"), error_codes=_values(query, "error_code"),
        template_ids=_values(query, "template_id"), text=query.get("q") or None,
        since=parse_time(query.get("since")), until=parse_time(query.get("until")),
        where=query.get("where") or None, sort=query.get("sort", "timestamp"), descending=order == "desc",
        limit=_int(query, "limit", min(DEFAULT_LIMIT, max_limit), 0, max_limit),
    )


def _tenant(request: web.Request) -> str | None:
    """The tenant a request may see; None means every tenant (a principal of tenant "*")."""
    return principal(request).tenant_filter


async def _run(request: web.Request, work: Callable[[], T]) -> T:
    """Run blocking lake work in a thread, a bounded number at a time."""
    async with request.app[SLOTS_KEY]:
        return await asyncio.get_running_loop().run_in_executor(None, work)


def _error(exc: Exception) -> web.Response:
    return web.json_response({"error": str(exc)}, status=400)


def _json(data: Any) -> web.Response:
    option = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY
    return web.Response(body=orjson.dumps(data, option=option), content_type="application/json")


@requires(READ)
async def search_handler(request: web.Request) -> web.Response:
    """``GET /v1/search``: matching records as JSON (``format=json|csv|parquet`` exports)."""
    tenant = _tenant(request)
    lake: Lake = request.app[LAKE_KEY]
    fmt = request.query.get("format")
    try:
        wanted = request_from_query(request.query).for_tenant(tenant)
        if fmt is not None and fmt not in FORMATS:
            raise SearchError(f"format must be one of {', '.join(FORMATS)}")
    except SearchError as exc:
        return _error(exc)

    def export() -> bytes:
        buffer = io.BytesIO()
        with open_search(lake, wanted) as reader:
            write_stream(reader, fmt, buffer)
        return buffer.getvalue()

    def records() -> list[dict[str, Any]]:
        with open_search(lake, wanted) as reader:
            return reader.read_all().to_pylist()

    try:
        if fmt is not None:
            return web.Response(body=await _run(request, export), headers={"Content-Type": CONTENT_TYPES[fmt]})
        rows = await _run(request, records)
    except SearchError as exc:
        return _error(exc)
    return _json({"tenant": tenant, "limit": wanted.limit, "count": len(rows), "records": rows})


@requires(READ)
async def count_handler(request: web.Request) -> web.Response:
    """``GET /v1/count``: how many records match."""
    tenant = _tenant(request)
    lake: Lake = request.app[LAKE_KEY]
    try:
        wanted = request_from_query(request.query).for_tenant(tenant)
        return _json({"tenant": tenant, "count": await _run(request, lambda: count(lake, wanted))})
    except SearchError as exc:
        return _error(exc)


@requires(READ)
async def aggregates_handler(request: web.Request) -> web.Response:
    """``GET /v1/aggregates``: counts, error rate and duration percentiles per ``bucket`` (and ``by`` value)."""
    tenant = _tenant(request)
    lake: Lake = request.app[LAKE_KEY]
    query = request.query
    try:
        wanted = request_from_query(query).for_tenant(tenant)
        bucket = int(parse_duration(query.get("bucket", "1m")))
        percentiles = tuple(float(p) for p in _values(query, "percentiles")) or DEFAULT_PERCENTILES
        asked = AggregateRequest(search=wanted, by=query.get("by") or None, bucket_seconds=bucket,
                                 percentiles=percentiles)
        table = await _run(request, lambda: aggregate(lake, asked))
    except (SearchError, ValueError) as exc:
        return _error(exc)
    return _json({"tenant": tenant, "bucket_seconds": bucket, "by": asked.by, "rows": table.to_pylist()})


def install_search(app: web.Application, lake_root: Path, max_concurrent: int = 2) -> web.Application:
    """Add the search routes (``/v1/search``, ``/v1/count``, ``/v1/aggregates``) to ``app``, an
    application behind :func:`logwarden.common.http.protect`."""
    app[LAKE_KEY] = Lake(Path(lake_root))
    app[SLOTS_KEY] = asyncio.Semaphore(max_concurrent)
    app.router.add_get("/v1/search", search_handler)
    app.router.add_get("/v1/count", count_handler)
    app.router.add_get("/v1/aggregates", aggregates_handler)
    return app


def search_app(lake_root: Path, auth: Authenticator | None = None, max_concurrent: int = 2) -> web.Application:
    """The search API over the lake at ``lake_root``, behind ``auth`` (None: loopback clients only)."""
    return install_search(protect(web.Application(), auth), lake_root, max_concurrent)


class SearchServer(BackgroundHttpServer):
    """The search API served from a background thread with its own event loop; ``stop()`` shuts it down."""

    def __init__(self, lake_root: Path, auth: Authenticator | None, host: str = "127.0.0.1",
                 port: int = 8081, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(lambda: search_app(Path(lake_root), auth), host, port, name="search-api",
                         ssl_context=ssl_context)

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return self.base_url

    def start(self, timeout: float = 30.0) -> "SearchServer":
        """Bind and serve; raises OSError when the port is taken."""
        super().start(timeout)
        log.info("search API at %s", self.url)
        return self
