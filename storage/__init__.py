"""Storage layer: the Parquet lake (partitioned by date and service, committed atomically per batch)
and DuckDB queries over it."""
from storage.lake import CommitInfo, Lake
from storage.query import connect, query

__all__ = ["CommitInfo", "Lake", "connect", "query"]
