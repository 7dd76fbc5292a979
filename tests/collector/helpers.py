"""Shared helpers of the collector tests: records, spool reading, a collector running in a thread."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from logwarden.collector import CollectorConfig, CollectorServer
from logwarden.collector.validation import SkewLimits
from logwarden.common.auth import AuthConfig
from logwarden.common.paths import DataDir


def record(n: int, **extra: Any) -> dict:
    return {
        "timestamp": f"2026-11-22T10:00:{n % 60:02d}Z",
        "level": "INFO",
        "service": "svc",
        "message": f"m{n}",
        **extra,
    }


def ndjson(records: list[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def spooled_rows(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "spool").glob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def collector_config(**changes: Any) -> CollectorConfig:
    config = CollectorConfig(http_port=0, tcp_port=0, syslog_port=0, syslog_port_required=True)
    config.skew = SkewLimits(max_future=1e10, max_past=1e10)
    config.batch = replace(config.batch, max_age=3600.0)
    for name, value in changes.items():
        setattr(config, name, value)
    return config


class RunningCollector:
    """A CollectorServer on its own event loop in a background thread."""

    def __init__(self, root: Path, config: CollectorConfig, auth: AuthConfig | None = None) -> None:
        self.root = root
        self.server = CollectorServer(DataDir.at(root), config, auth)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "RunningCollector":
        self.thread.start()
        self.call(self.server.start())
        return self

    def call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __exit__(self, *exc: Any) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"
