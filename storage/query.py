"""Read the lake with DuckDB."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from logwarden.storage.lake import Lake


def parquet_source(files: list[Path], options: str = "") -> str:
    """A ``read_parquet`` over exactly ``files`` (hive partitions, columns united by name; more ``options``)."""
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true{options})"


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views ``logs`` and ``aggregates`` over the files that are part
    of the lake now (a compaction's replaced files, still on disk for a while, are not)."""
    con = duckdb.connect()
    for view, files in (("logs", lake.log_files()), ("aggregates", lake.aggregate_files())):
        if files:
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM {parquet_source(files)}")
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
