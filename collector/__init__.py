"""Collector layer: receive logs over HTTP, TCP and syslog, validate them against the log schema,
make them durable (write-ahead log, group commit) and roll them into Parquet spool batches.
Rejected records go to the dead-letter store with their original bytes.

The names below are imported when first used, so that importing a light part of the layer (the
file sources of the node agent, ``logwarden.collector.sources``) does not load the servers, Arrow
and the lake."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CollectorConfig": "logwarden.collector.config",
    "CollectorServer": "logwarden.collector.server",
    "DeadLetter": "logwarden.collector.deadletter",
    "DeadLetterStore": "logwarden.collector.deadletter",
    "RecordValidator": "logwarden.collector.validation",
    "Spool": "logwarden.collector.spool",
    "run_collector": "logwarden.collector.server",
}

__all__ = [
    "CollectorConfig",
    "CollectorServer",
    "DeadLetter",
    "DeadLetterStore",
    "RecordValidator",
    "Spool",
    "run_collector",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'logwarden.collector' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
