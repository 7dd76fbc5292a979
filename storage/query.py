"""Read the lake with DuckDB."""
from __future__ import annotations

from typing import Any

import duckdb

from storage.lake import Lake


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views ``logs`` and ``aggregates`` over the lake."""
    con = duckdb.connect()
    if any(lake.logs.rglob("*.parquet")):
        con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet('{lake.logs_glob()}', "
                    "hive_partitioning = true, union_by_name = true)")
    if any(lake.aggregates.rglob("*.parquet")):
        con.execute(f"CREATE VIEW aggregates AS SELECT * FROM read_parquet('{lake.aggregates_glob()}', "
                    "hive_partitioning = true, union_by_name = true)")
    return con


def query(lake: Lake, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Run ``sql`` against the views ``logs`` and ``aggregates``; an empty lake answers no rows."""
    con = connect(lake)
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.CatalogException:
        # Decided by what connect() saw: files committed since must not turn "empty" into an error.
        views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
                 .fetchall()}
        if "logs" not in views:
            return []
        raise
    finally:
        con.close()
