"""Search the lake: filters, time range, free text, sort, limit, counts and aggregates, with DuckDB.

Partition pruning happens before DuckDB sees a file: only the ``date=`` folders the time
range touches and the ``service=`` folders the service filter names are listed. Within a
file, the timestamp filter skips row groups by their statistics (batches are sorted by
event time). A tenant's filter is applied in the innermost query, below any condition
the caller adds, and the connection can read nothing but the lake's folder.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa

from logwarden.common.times import parse_time as parse_cli_time
from logwarden.common.records import LEVELS
from logwarden.storage.columns import FILTER_FIELDS, column_names, record_columns
from logwarden.storage.lake import Lake
from logwarden.storage.sqlguard import validate_condition

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
BATCH_ROWS = 65_536
DEFAULT_PERCENTILES = (50.0, 95.0, 99.0)


class SearchError(ValueError):
    """A search request that cannot be answered as asked (bad field, time, condition...)."""


@dataclass(frozen=True)
class SearchRequest:
    """What to find. Empty tuples and None mean "no filter"; ``tenant`` None means every tenant."""

    services: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    template_ids: tuple[str, ...] = ()
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    where: str | None = None
    sort: str = "timestamp"
    descending: bool = True
    limit: int | None = DEFAULT_LIMIT
    tenant: str | None = None

    def for_tenant(self, tenant: str | None) -> "SearchRequest":
        """The same request confined to ``tenant`` (None: no confinement)."""
        return replace(self, tenant=tenant)


@dataclass(frozen=True)
class AggregateRequest:
    """Counts per time bucket (and optionally per field value), with duration percentiles."""

    search: SearchRequest = field(default_factory=SearchRequest)
    by: str | None = None
    bucket_seconds: int = 60
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES


def parse_time(value: str | datetime | None, now: datetime | None = None) -> datetime | None:
    """A point in time from ``value``: a datetime, ``now``, a duration back from now (``15m``, ``2h``,
    ``7d``) or an ISO 8601 date/time (UTC when no zone is given)."""
    if value is None or isinstance(value, datetime):
        return _utc(value) if value is not None else None
    try:
        return parse_cli_time(str(value), now)
    except ValueError:
        raise SearchError(f"not a time: {value!r} (use an ISO time such as 2026-11-22T10:00:00Z, "
                          "or a duration back from now such as 15m, 2h, 7d)") from None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def connect_locked(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection, in UTC, that can read files below the lake root only."""
    con = duckdb.connect()
    root = str(lake.root.resolve())
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET allowed_directories = ['{_sql_string(root.rstrip('/') + '/')}']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def arrow_reader(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
                 rows: int = BATCH_ROWS) -> pa.RecordBatchReader:
    """The result of ``sql`` as an Arrow stream (DuckDB 2 ``to_arrow_reader``, 1.x ``fetch_arrow_reader``)."""
    relation = con.sql(sql, params=params)
    method = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    return method(rows)


def arrow_table(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pa.Table:
    """The result of ``sql`` as one Arrow table."""
    relation = con.sql(sql, params=params)
    method = getattr(relation, "to_arrow_table", None) or relation.arrow
    return method()


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


def _check(request: SearchRequest) -> None:
    names = column_names()
    if request.sort not in names:
        raise SearchError(f"cannot sort by {request.sort!r} (columns: {', '.join(names)})")
    if request.limit is not None and request.limit < 0:
        raise SearchError("limit must be >= 0")
    unknown = [lv for lv in request.levels if lv.upper() not in LEVELS]
    if unknown:
        raise SearchError(f"unknown level(s) {', '.join(unknown)} (levels: {', '.join(LEVELS)})")
    if request.since and request.until and request.since > request.until:
        raise SearchError("since is after until")


def files_for(lake: Lake, request: SearchRequest) -> list[str]:
    """The record files a request can match: only the dates and services it allows."""
    first = request.since.date() if request.since else None
    last = request.until.date() if request.until else None
    services = request.services or None
    return [str(p) for p in lake.log_files(first, last, services)]


def _source(con: duckdb.DuckDBPyConnection, files: list[str], tenant: str | None) -> tuple[str, list[Any]]:
    """SQL of the ``src`` relation (every known column, NULL where absent) and its parameters."""
    if not files:
        cols = ", ".join(f"CAST(NULL AS {kind}) AS \"{name}\"" for name, kind in record_columns())
        return f"SELECT {cols} WHERE false", []
    present = {row[0] for row in con.execute(
        "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)", [files]
    ).fetchall()}
    cols = ", ".join(
        f"CAST(\"{name}\" AS {kind}) AS \"{name}\"" if name in present else f"CAST(NULL AS {kind}) AS \"{name}\""
        for name, kind in record_columns()
    )
    sql = f"SELECT {cols} FROM read_parquet(?, union_by_name = true, hive_partitioning = false)"
    params: list[Any] = [files]
    if tenant is not None:
        sql += " WHERE tenant = ?"
        params.append(tenant)
    return sql, params


def _conditions(request: SearchRequest) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (("service", request.services), ("level", tuple(v.upper() for v in request.levels)),
                           ("user_id", request.user_ids), ("request_id", request.request_ids),
                           ("error_code", request.error_codes), ("template_id", request.template_ids)):
        if values:
            clauses.append(f"\"{column}\" IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if request.since is not None:
        clauses.append("\"timestamp\" >= ?")
        params.append(request.since)
    if request.until is not None:
        clauses.append("\"timestamp\" < ?")
        params.append(request.until)
    if request.text:
        clauses.append("contains(lower(message), lower(?))")
        params.append(request.text)
    if request.tenant is not None:
        clauses.append("tenant = ?")
        params.append(request.tenant)
    if request.where:
        try:
            clauses.append(f"({validate_condition(request.where, column_names())})")
        except ValueError as exc:
            raise SearchError(f"--where: {exc}") from None
    return clauses, params


def _base(con: duckdb.DuckDBPyConnection, lake: Lake, request: SearchRequest) -> tuple[str, list[Any]]:
    """``WITH src AS (...) SELECT * FROM src WHERE ...`` without ORDER BY/LIMIT, and its parameters."""
    _check(request)
    source, params = _source(con, files_for(lake, request), request.tenant)
    clauses, more = _conditions(request)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"WITH src AS ({source}) SELECT * FROM src{where}", params + more


def _select(con: duckdb.DuckDBPyConnection, lake: Lake, request: SearchRequest) -> tuple[str, list[Any]]:
    sql, params = _base(con, lake, request)
    direction = "DESC" if request.descending else "ASC"
    sql += f" ORDER BY \"{request.sort}\" {direction} NULLS LAST, record_id {direction}"
    if request.limit is not None:
        sql += " LIMIT ?"
        params.append(request.limit)
    return sql, params


@contextmanager
def open_search(lake: Lake, request: SearchRequest, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatchReader]:
    """The matching records as a stream of Arrow record batches (the connection lives while it is read)."""
    con = connect_locked(lake)
    try:
        sql, params = _select(con, lake, request)
        log.debug("search: %s %s", sql, params[1:])
        yield arrow_reader(con, sql, params, batch_rows)
    except duckdb.Error as exc:
        raise SearchError(str(exc).splitlines()[0]) from None
    finally:
        con.close()


def search(lake: Lake, request: SearchRequest) -> pa.Table:
    """The matching records as one Arrow table."""
    with open_search(lake, request) as reader:
        return reader.read_all()


def count(lake: Lake, request: SearchRequest) -> int:
    """How many records match (sort and limit ignored)."""
    con = connect_locked(lake)
    try:
        sql, params = _base(con, lake, request)
        return int(con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
    except duckdb.Error as exc:
        raise SearchError(str(exc).splitlines()[0]) from None
    finally:
        con.close()


def _percentile_columns(percentiles: Sequence[float]) -> list[str]:
    cols = []
    for p in percentiles:
        if not 0 < p < 100:
            raise SearchError(f"percentile {p} is not between 0 and 100")
        name = f"duration_p{p:g}".replace(".", "_")
        cols.append(f"quantile_cont(duration_ms, {p / 100!r}) AS \"{name}\"")
    return cols


def aggregate(lake: Lake, request: AggregateRequest) -> pa.Table:
    """Per time bucket (and ``by`` value): count, errors, error rate and duration percentiles."""
    if request.by is not None and request.by not in FILTER_FIELDS:
        raise SearchError(f"cannot group by {request.by!r} (fields: {', '.join(FILTER_FIELDS)})")
    if request.bucket_seconds <= 0:
        raise SearchError("bucket must be longer than 0s")
    con = connect_locked(lake)
    try:
        sql, params = _base(con, lake, replace(request.search, limit=None))
        keys = ["time_bucket(to_seconds(?), \"timestamp\") AS bucket"]
        group_params: list[Any] = [request.bucket_seconds]
        if request.by:
            keys.append(f"\"{request.by}\"")
        measures = ["count(*) AS count",
                    "count(*) FILTER (WHERE level IN ('ERROR', 'CRITICAL')) AS errors",
                    "count(*) FILTER (WHERE level IN ('ERROR', 'CRITICAL')) / count(*) AS error_rate",
                    *_percentile_columns(request.percentiles)]
        order = "bucket" + (f", \"{request.by}\"" if request.by else "")
        full = (f"SELECT {', '.join(keys + measures)} FROM ({sql}) GROUP BY ALL ORDER BY {order}")
        return arrow_table(con, full, group_params + params)
    except duckdb.Error as exc:
        raise SearchError(str(exc).splitlines()[0]) from None
    finally:
        con.close()


__all__ = ["AggregateRequest", "SearchError", "SearchRequest", "aggregate", "arrow_reader", "arrow_table",
           "connect_locked", "count", "files_for", "open_search", "parse_time", "search"]
