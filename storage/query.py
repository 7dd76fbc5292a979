"""Read the lake with DuckDB.

Columns come from the files, never from the folder names: a ``service=`` folder may hold a bounded
name (``storage.lake.service_partition``) while the files hold the exact service. The ``date`` of a
``date=`` folder is still offered as a column, taken from the file's path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from logwarden.storage.lake import Lake


DATE_OF_PATH = r"TRY_CAST(NULLIF(regexp_extract(filename, '[/\\]date=([0-9-]+)[/\\]', 1), '') AS DATE)"


def parquet_source(files: list[Path], options: str = "", filename: bool = False) -> str:
    """A relation over exactly ``files``: their columns united by name, plus ``date`` (from a ``date=``
    folder in the path) and, with ``filename``, the file's path; more ``read_parquet`` ``options``."""
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    keep = "" if filename else " EXCLUDE (filename)"
    return (f"(SELECT *{keep}, {DATE_OF_PATH} AS date FROM read_parquet([{listed}], hive_partitioning = false, "
            f"union_by_name = true, filename = true{options}))")


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
