"""The columns a lake query can see, with their DuckDB types.

Lake files written at different times hold different columns (template mining added
``template_id`` and ``template``; the log schema may gain fields). Queries read with
``union_by_name`` and project every known column, as NULL where no file has it.
"""
from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

from logwarden.common.records import record_schema

EXTRA_COLUMNS: tuple[tuple[str, str], ...] = (("template_id", "VARCHAR"), ("template", "VARCHAR"))
FILTER_FIELDS = ("service", "level", "user_id", "request_id", "error_code", "template_id", "tenant", "source",
                 "record_id")


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type name of an Arrow type of the record layout."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    return "VARCHAR"


@lru_cache(maxsize=1)
def record_columns() -> tuple[tuple[str, str], ...]:
    """(name, DuckDB type) of every column a search returns, in order."""
    base = tuple((f.name, duckdb_type(f.type)) for f in record_schema())
    names = {name for name, _ in base}
    return base + tuple(c for c in EXTRA_COLUMNS if c[0] not in names)


def column_names() -> tuple[str, ...]:
    """Names of :func:`record_columns`."""
    return tuple(name for name, _ in record_columns())
