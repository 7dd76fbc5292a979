"""The normalized record as an Arrow table: the columns every layer exchanges.

The typed columns come from ``schemas/log_schema.yaml``; the system columns
(record id, tenant, source, receive time, attributes) are added by the collector.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from logwarden.common.yamlconf import load_yaml
from logwarden.schemas import LOG_SCHEMA_PATH


TIMESTAMP = pa.timestamp("us", tz="UTC")
SYSTEM_FIELDS: tuple[pa.Field, ...] = (
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("tenant", pa.string()),
    pa.field("source", pa.string()),
    pa.field("received_at", TIMESTAMP),
    pa.field("attributes", pa.string()),
)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _arrow_type(spec: dict[str, Any]) -> pa.DataType:
    kind = spec.get("type")
    if kind == "string" and spec.get("format") == "date-time":
        return TIMESTAMP
    return {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}.get(
        kind, pa.string()
    )


@lru_cache(maxsize=8)
def load_log_schema(path: str | Path = LOG_SCHEMA_PATH) -> dict[str, Any]:
    """The log schema (a JSON Schema dict) from its YAML file."""
    return load_yaml(path).data


def record_schema(log_schema: dict[str, Any] | None = None) -> pa.Schema:
    """The Arrow schema of normalized records: log-schema properties, then system columns."""
    log_schema = log_schema or load_log_schema()
    required = set(log_schema.get("required", ()))
    fields = [
        pa.field(name, _arrow_type(spec), nullable=name not in required)
        for name, spec in log_schema.get("properties", {}).items()
    ]
    return pa.schema(fields + list(SYSTEM_FIELDS))


def schema_field_names(log_schema: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Names of the fields the log schema declares (everything else is an attribute)."""
    log_schema = log_schema or load_log_schema()
    return tuple(log_schema.get("properties", {}))
