"""Optional sink: bulk-index committed records into Elasticsearch (or OpenSearch), daily indices.

Uses the official ``elasticsearch`` client (8.x), with plain ``application/json`` media types
instead of the client's ``vnd.elasticsearch+json; compatible-with=8`` ones: Elasticsearch 7.14+,
8 and 9 accept both, OpenSearch-compatible servers (osmem-server in the tests) only the plain
ones (see :func:`make_client`).

- An index template with explicit mappings (keyword: service, level, ids; date: timestamp;
  text: message) is installed once per sink; indices are ``<prefix>-YYYY.MM.DD`` by event time.
- Each record is indexed under its ``record_id``: re-indexing a batch (a retried task) overwrites.
- Partial bulk failures: items refused with 429/502/503/504 are sent again (only those), with
  exponential backoff; other refusals (mapping errors) are counted and logged, never retried.
- Backpressure: ``index_batch`` returns only when the cluster has taken the batch, so a slow
  cluster slows the processing task calling it (and through it the spool and the collector).
  Bulk size adapts to the cluster's speed: halved when a request is slower than
  ``slow_request`` or is throttled (429), grown again while requests are fast.
- A cluster that stays unreachable: ``index_batch`` raises SinkUnavailable after ``max_retries``,
  then fails fast for ``breaker_cooldown``; :func:`reindex` fills a gap from the lake afterwards.
"""
from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.yamlconf import (
    ConfigError, check_bool, check_duration, check_int, check_mapping, check_str, describe,
)
from logwarden.storage.lake import Lake
from logwarden.storage.search import SearchRequest, open_search

log = logging.getLogger(__name__)

RETRIABLE_STATUS = frozenset({429, 502, 503, 504})
KEYWORD_FIELDS = ("service", "level", "record_id", "tenant", "source", "user_id", "request_id", "error_code",
                  "template_id")


_COMPAT_MEDIA_TYPE = re.compile(r"application/vnd\.elasticsearch\+([\w-]+)(?:;\s*compatible-with=\d+)?")


def _plain_json_node_class() -> type:
    from elastic_transport import Urllib3HttpNode

    class PlainJsonNode(Urllib3HttpNode):
        """An HTTP node that sends ``application/json``/``x-ndjson`` rather than the compatibility types."""

        def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                            **kwargs: Any) -> Any:
            if headers is not None:
                headers = headers.copy()
                for name in ("accept", "content-type"):
                    if name in headers:
                        headers[name] = _COMPAT_MEDIA_TYPE.sub(r"application/\1", headers[name])
            return super().perform_request(method, target, body=body, headers=headers, **kwargs)

    return PlainJsonNode


def make_client(config: "ElasticsearchConfig") -> Any:
    """An ``elasticsearch.Elasticsearch`` client for ``config`` (no client-side retries: the sink retries)."""
    from elasticsearch import Elasticsearch

    kwargs: dict[str, Any] = {"request_timeout": config.timeout_seconds, "max_retries": 0, "retry_on_timeout": False,
                              "node_class": _plain_json_node_class()}
    if config.url.startswith("https://"):
        kwargs["verify_certs"] = config.verify_certs
    if config.username is not None:
        kwargs["basic_auth"] = (config.username, config.password or "")
    if config.api_key is not None:
        kwargs["api_key"] = config.api_key
    return Elasticsearch(config.url, **kwargs)


class SinkUnavailable(RuntimeError):
    """The cluster did not take a batch within the retries allowed."""


@dataclass(frozen=True)
class ElasticsearchConfig:
    """``storage.elasticsearch`` settings."""

    url: str
    index_prefix: str = "logwarden"
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    verify_certs: bool = True
    timeout_seconds: float = 30.0
    max_retries: int = 8
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    bulk_docs: int = 1000
    min_bulk_docs: int = 50
    slow_request_seconds: float = 2.0
    shards: int = 1
    replicas: int = 1
    breaker_cooldown_seconds: float = 30.0

    KEYS = ("url", "index_prefix", "username", "password", "api_key", "verify_certs", "timeout", "max_retries",
            "initial_backoff", "max_backoff", "bulk_docs", "min_bulk_docs", "slow_request", "shards", "replicas",
            "breaker_cooldown")

    @classmethod
    def from_dict(cls, section: Any) -> "ElasticsearchConfig":
        """The settings from a ``storage.elasticsearch`` mapping (with a ``url``); raises ConfigError with the
        key path (``storage.elasticsearch.bulk_docs``) on an unknown key or a bad value."""
        where = ("storage", "elasticsearch")
        section = check_mapping(section, where, cls.KEYS)
        url = section.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError.at((*where, "url") if "url" in section else where,
                                 f"expected an http:// or https:// URL, got {describe(url)}")
        kwargs: dict[str, Any] = {"url": url.rstrip("/")}
        if "index_prefix" in section:
            prefix = check_str(section["index_prefix"], (*where, "index_prefix"))
            if prefix != prefix.lower():
                raise ConfigError.at((*where, "index_prefix"), f"expected a lower-case name, got {describe(prefix)}")
            kwargs["index_prefix"] = prefix
        for key in ("username", "password", "api_key"):
            if section.get(key) is not None:
                kwargs[key] = check_str(section[key], (*where, key), secret=key != "username")
        for key, attr in (("timeout", "timeout_seconds"), ("initial_backoff", "initial_backoff_seconds"),
                          ("max_backoff", "max_backoff_seconds"), ("slow_request", "slow_request_seconds"),
                          ("breaker_cooldown", "breaker_cooldown_seconds")):
            if key in section:
                kwargs[attr] = check_duration(section[key], (*where, key))
        for key in ("max_retries", "bulk_docs", "min_bulk_docs", "shards", "replicas"):
            if key in section:
                kwargs[key] = check_int(section[key], (*where, key), minimum=0)
        if "verify_certs" in section:
            kwargs["verify_certs"] = check_bool(section["verify_certs"], (*where, "verify_certs"))
        config = cls(**kwargs)
        if not 1 <= config.min_bulk_docs <= config.bulk_docs:
            raise ConfigError.at((*where, "min_bulk_docs" if "min_bulk_docs" in section else "bulk_docs"),
                                 f"need 1 <= min_bulk_docs <= bulk_docs, got min_bulk_docs {config.min_bulk_docs} "
                                 f"and bulk_docs {config.bulk_docs}")
        return config


@dataclass
class IndexResult:
    """What one ``index_batch`` call did."""

    indexed: int = 0
    rejected: int = 0
    retried: int = 0
    requests: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def index_template(config: ElasticsearchConfig) -> dict[str, Any]:
    """The composable index template body for ``<prefix>-*``."""
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in KEYWORD_FIELDS}
    properties.update({
        "timestamp": {"type": "date"},
        "received_at": {"type": "date"},
        "message": {"type": "text"},
        "template": {"type": "text"},
        "duration_ms": {"type": "double"},
        "attributes": {"type": "text"},
    })
    return {
        "index_patterns": [f"{config.index_prefix}-*"],
        "priority": 100,
        "template": {
            "settings": {"number_of_shards": config.shards, "number_of_replicas": config.replicas},
            "mappings": {
                "dynamic_templates": [{"strings_as_keywords": {
                    "match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}],
                "properties": properties,
            },
        },
    }


class Throttle:
    """Bulk size that follows the cluster's speed (additive increase, multiplicative decrease)."""

    def __init__(self, config: ElasticsearchConfig) -> None:
        self.config = config
        self.docs = config.bulk_docs
        self.slowdowns = 0

    def observe(self, seconds: float, throttled: bool) -> None:
        """Adapt the bulk size after a request that took ``seconds`` (``throttled``: got 429s)."""
        if throttled or seconds > self.config.slow_request_seconds:
            self.docs = max(self.config.min_bulk_docs, self.docs // 2)
            self.slowdowns += 1
        elif seconds < self.config.slow_request_seconds / 2:
            self.docs = min(self.config.bulk_docs, self.docs + max(1, self.config.bulk_docs // 10))


def _documents(table: pa.Table, prefix: str) -> list[tuple[bytes, bytes]]:
    """(action line, source line) per record."""
    days = pc.strftime(table["timestamp"], format="%Y.%m.%d").to_pylist()
    option = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    out = []
    for day, row in zip(days, table.to_pylist()):
        row = {k: v for k, v in row.items() if v is not None}
        action = {"index": {"_index": f"{prefix}-{day or 'undated'}", "_id": row.get("record_id")}}
        if action["index"]["_id"] is None:
            del action["index"]["_id"]
        out.append((orjson.dumps(action), orjson.dumps(row, option=option)))
    return out


class ElasticsearchSink:
    """Bulk-indexes record tables; one per process (see :func:`sink_for`), safe to share between threads."""

    def __init__(self, config: ElasticsearchConfig, client: Any | None = None) -> None:
        self.config = config
        self.client = client if client is not None else make_client(config)
        self.throttle = Throttle(config)
        self._template_ready = False
        self._lock = threading.Lock()
        self._open_until = 0.0  # circuit breaker: fail fast until then after the cluster was unavailable

    def ensure_template(self) -> None:
        """Install (or update) the index template; done once per sink."""
        if self._template_ready:
            return
        self._with_retries(lambda: self.client.indices.put_index_template(
            name=self.config.index_prefix, **index_template(self.config)), "install the index template")
        self._template_ready = True

    def index_batch(self, table: pa.Table) -> IndexResult:
        """Index every record of ``table``; blocks until the cluster took them.

        Raises SinkUnavailable when the cluster still refuses after ``max_retries``; for
        ``breaker_cooldown`` seconds after that, calls raise SinkUnavailable at once instead of
        waiting through the retries again (the lake holds the records: re-index them from it).
        """
        started = time.monotonic()
        result = IndexResult()
        if table.num_rows == 0:
            return result
        with self._lock:
            if started < self._open_until:
                raise SinkUnavailable(f"elasticsearch at {self.config.url} unavailable; not retrying for "
                                      f"{self._open_until - started:.0f}s more")
            try:
                self.ensure_template()
                pending = _documents(table, self.config.index_prefix)
                while pending:
                    chunk, pending = pending[:self.throttle.docs], pending[self.throttle.docs:]
                    self._send(chunk, result)
            except SinkUnavailable:
                self._open_until = time.monotonic() + self.config.breaker_cooldown_seconds
                raise
        result.seconds = time.monotonic() - started
        if result.rejected:
            log.warning("elasticsearch: %d of %d records refused: %s", result.rejected, table.num_rows,
                        "; ".join(result.errors[:3]))
        return result

    def _send(self, items: list[tuple[bytes, bytes]], result: IndexResult) -> None:
        attempt = 0
        while items:
            body = b"".join(action + b"\n" + source + b"\n" for action, source in items)
            begun = time.monotonic()
            response = self._with_retries(lambda: self.client.bulk(operations=body), "bulk-index")
            result.requests += 1
            retry: list[tuple[bytes, bytes]] = []
            for item, answer in zip(items, response.get("items", [])):
                outcome = next(iter(answer.values()))
                status = int(outcome.get("status", 500))
                if status < 300:
                    result.indexed += 1
                elif status in RETRIABLE_STATUS:
                    retry.append(item)
                else:
                    result.rejected += 1
                    if len(result.errors) < 20:
                        error = outcome.get("error") or {}
                        result.errors.append(f"{outcome.get('_id')}: {error.get('type')}: {error.get('reason')}")
            self.throttle.observe(time.monotonic() - begun, throttled=bool(retry))
            if not retry:
                return
            attempt += 1
            if attempt > self.config.max_retries:
                raise SinkUnavailable(f"{len(retry)} records still refused after {attempt - 1} retries")
            result.retried += len(retry)
            log.info("elasticsearch: %d of %d items refused this round, retrying", len(retry), len(items))
            items = retry
            self._backoff(attempt)

    def _with_retries(self, call: Any, what: str) -> Any:
        from elasticsearch import ApiError, ConnectionError as EsConnectionError, ConnectionTimeout

        attempt = 0
        while True:
            try:
                return call()
            except (EsConnectionError, ConnectionTimeout) as exc:
                error: Exception = exc
            except ApiError as exc:
                if exc.status_code not in RETRIABLE_STATUS:
                    raise
                error = exc
            attempt += 1
            self.throttle.observe(self.config.slow_request_seconds * 2, throttled=True)
            if attempt > self.config.max_retries:
                raise SinkUnavailable(f"could not {what} at {self.config.url}: {error}") from error
            log.warning("elasticsearch: %s failed (%s), retry %d", what, error, attempt)
            self._backoff(attempt)

    def _backoff(self, attempt: int) -> None:
        delay = min(self.config.max_backoff_seconds, self.config.initial_backoff_seconds * 2 ** (attempt - 1))
        time.sleep(delay * random.uniform(0.5, 1.0))

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


@functools.lru_cache(maxsize=4)
def sink_for(config: ElasticsearchConfig) -> ElasticsearchSink:
    """The process-wide sink for ``config`` (created on first use, e.g. once per Dask worker)."""
    return ElasticsearchSink(config)


def reindex(lake_root: Path, sink: ElasticsearchSink, request: SearchRequest) -> IndexResult:
    """Index the lake's records matching ``request``, batch by batch.

    Fills the gap an outage left: records keep their ids, so what was already indexed is overwritten.
    """
    total = IndexResult()
    started = time.monotonic()
    with open_search(Lake(Path(lake_root)), request, batch_rows=5000) as reader:
        for batch in reader:
            done = sink.index_batch(pa.Table.from_batches([batch]))
            total.indexed += done.indexed
            total.rejected += done.rejected
            total.retried += done.retried
            total.requests += done.requests
            total.errors.extend(done.errors[:max(0, 20 - len(total.errors))])
    total.seconds = time.monotonic() - started
    return total
