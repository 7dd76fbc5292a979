"""The Elasticsearch sink against a real OpenSearch-compatible server (osmem-server, started here)."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import ClientSession, web

from logwarden.common.yamlconf import ConfigError
from logwarden.storage.elasticsearch import ElasticsearchConfig, ElasticsearchSink
from tests.storage.sample import rows, table

osmem = pytest.importorskip("osmem_server", reason="osmem-server is not installed (pip install osmem-server)")
pytest.importorskip("elasticsearch", reason="the elasticsearch client is not installed")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    try:
        running = osmem.OsmemServer.start(japanese=False)
    except osmem.OsmemError as exc:
        pytest.skip(f"osmem-server could not start: {exc}")
    try:
        yield running.url
    finally:
        running.close()


class FaultyProxy:
    """An HTTP proxy in front of the server: refuses some bulk items with 429 and can be slow."""

    def __init__(self, upstream: str, refuse_every: int = 0, refuse_requests: int = 0, delay: float = 0.0) -> None:
        self.upstream = upstream
        self.refuse_every, self.refuse_requests, self.delay = refuse_every, refuse_requests, delay
        self.bulk_requests = 0
        self.bulk_sizes: list[int] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> "FaultyProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        async with ClientSession() as session:
            async with session.request(request.method, self.upstream + request.path_qs, data=body,
                                       headers=headers) as answer:
                return answer.status, await answer.read(), answer.headers.get("Content-Type", "application/json")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not request.path.endswith("/_bulk"):
            status, data, kind = await self._forward(request, body)
            return web.Response(status=status, body=data, headers={"Content-Type": kind,
                                                                   "X-Elastic-Product": "Elasticsearch"})
        await asyncio.sleep(self.delay)
        self.bulk_requests += 1
        lines = body.splitlines()
        pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines), 2)]
        self.bulk_sizes.append(len(pairs))
        refuse = self.bulk_requests <= self.refuse_requests and self.refuse_every
        kept = [p for i, p in enumerate(pairs) if not (refuse and i % self.refuse_every == 0)]
        items = []
        if kept:
            status, data, _ = await self._forward(request, b"\n".join(a + b"\n" + s for a, s in kept) + b"\n")
            items = orjson.loads(data)["items"]
        merged, it = [], iter(items)
        for i, (action, _) in enumerate(pairs):
            if refuse and i % self.refuse_every == 0:
                meta = orjson.loads(action)["index"]
                merged.append({"index": {"_index": meta["_index"], "_id": meta.get("_id"), "status": 429,
                                         "error": {"type": "es_rejected_execution_exception",
                                                   "reason": "rejected execution (queue full)"}}})
            else:
                merged.append(next(it))
        return web.json_response({"took": 1, "errors": len(kept) < len(pairs), "items": merged},
                                 headers={"X-Elastic-Product": "Elasticsearch"})


def config(url: str, prefix: str, **kw) -> ElasticsearchConfig:
    return ElasticsearchConfig(url=url, index_prefix=prefix, initial_backoff_seconds=0.05, max_backoff_seconds=0.2,
                               **kw)


def test_index_template_daily_indices_and_search(server):
    records = rows(200)  # 7-minute steps from T0: two days
    sink = ElasticsearchSink(config(server, "lwa"))
    result = sink.index_batch(table(records, with_templates=True))
    assert (result.indexed, result.rejected) == (200, 0)
    es = sink.client
    es.indices.refresh(index="lwa-*")
    indices = sorted(i["index"] for i in es.cat.indices(index="lwa-*", format="json"))
    days = sorted({r["timestamp"].strftime("%Y.%m.%d") for r in records})
    assert indices == [f"lwa-{d}" for d in days]
    mapping = es.indices.get_mapping(index=indices[0])[indices[0]]["mappings"]["properties"]
    assert {k: mapping[k]["type"] for k in ("service", "level", "user_id", "request_id", "template_id",
                                            "timestamp", "message")} == {
        "service": "keyword", "level": "keyword", "user_id": "keyword", "request_id": "keyword",
        "template_id": "keyword", "timestamp": "date", "message": "text"}
    assert es.count(index="lwa-*")["count"] == 200
    hits = es.search(index="lwa-*", query={"bool": {"filter": [{"term": {"service": "api"}},
                                                               {"match": {"message": "timeout"}}]}},
                     size=500)["hits"]["hits"]
    assert sorted(h["_id"] for h in hits) == sorted(r["record_id"] for r in records
                                                    if r["service"] == "api" and r["level"] == "ERROR")
    sink.index_batch(table(records))  # a retried batch overwrites, never duplicates
    es.indices.refresh(index="lwa-*")
    assert es.count(index="lwa-*")["count"] == 200
    assert es.indices.get_index_template(name="lwa")["index_templates"][0]["name"] == "lwa"


def test_partial_bulk_failures_are_retried_until_all_are_indexed(server):
    records = rows(300, prefix="p")
    with FaultyProxy(server, refuse_every=3, refuse_requests=2) as proxy:
        sink = ElasticsearchSink(config(proxy.url, "lwb", bulk_docs=1000))
        result = sink.index_batch(table(records))
    assert result.indexed == 300 and result.rejected == 0
    assert result.retried > 0 and proxy.bulk_requests >= 3
    es = ElasticsearchSink(config(server, "lwb")).client
    es.indices.refresh(index="lwb-*")
    assert es.count(index="lwb-*")["count"] == 300


def test_mapping_errors_are_counted_not_retried(server):
    import pyarrow as pa

    sink = ElasticsearchSink(config(server, "lwc"))
    first = table(rows(6, prefix="ok"))
    sink.index_batch(first.append_column("http_status", pa.array([200] * 6)))  # maps http_status as a number
    second = table(rows(6, prefix="bad"))
    result = sink.index_batch(second.append_column("http_status", pa.array(["n/a"] * 3 + ["404"] * 3)))
    assert (result.indexed, result.rejected, result.retried) == (3, 3, 0)
    assert all("http_status" in e for e in result.errors)


def test_slow_cluster_shrinks_bulks_and_blocks_the_caller(server):
    records = rows(400, prefix="s")
    with FaultyProxy(server, delay=0.25) as proxy:
        sink = ElasticsearchSink(config(proxy.url, "lwd", bulk_docs=200, min_bulk_docs=25,
                                        slow_request_seconds=0.1))
        started = time.monotonic()
        result = sink.index_batch(table(records))
        took = time.monotonic() - started
    assert result.indexed == 400
    assert proxy.bulk_sizes[0] == 200 and proxy.bulk_sizes[1] == 100 and min(proxy.bulk_sizes) == 25
    assert sink.throttle.slowdowns >= 3 and took >= 0.25 * len(proxy.bulk_sizes)


def test_reindex_from_the_lake_fills_a_gap(server, tmp_path):
    from logwarden.storage import Lake
    from logwarden.storage.elasticsearch import reindex
    from logwarden.storage.search import SearchRequest

    lake = Lake(tmp_path / "lake")
    records = rows(90, prefix="g")
    lake.commit_batch("b1", table(records))
    sink = ElasticsearchSink(config(server, "lwf"))
    result = reindex(lake.root, sink, SearchRequest(services=("billing",), limit=None))
    assert result.indexed == sum(r["service"] == "billing" for r in records) and result.rejected == 0
    sink.client.indices.refresh(index="lwf-*")
    assert sink.client.count(index="lwf-*", query={"term": {"service": "billing"}})["count"] == result.indexed


def test_unreachable_cluster_raises_then_fails_fast():
    from logwarden.storage.elasticsearch import SinkUnavailable

    sink = ElasticsearchSink(config("http://127.0.0.1:9", "lwe", max_retries=2, breaker_cooldown_seconds=60))
    with pytest.raises(SinkUnavailable):
        sink.index_batch(table(rows(3)))
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match="not retrying"):
        sink.index_batch(table(rows(3)))
    assert time.monotonic() - started < 0.1


def test_config_from_dict():
    cfg = ElasticsearchConfig.from_dict({"url": "http://es:9200/", "index_prefix": "logs", "timeout": "10s",
                                         "bulk_docs": 500})
    assert (cfg.url, cfg.index_prefix, cfg.timeout_seconds, cfg.bulk_docs) == ("http://es:9200", "logs", 10.0, 500)
    for bad in ({"url": "es:9200"}, {"url": "http://x", "shards": -1}, {"url": "http://x", "nope": 1},
                {"url": "http://x", "index_prefix": "Logs"}):
        with pytest.raises(ConfigError):
            ElasticsearchConfig.from_dict(bad)
