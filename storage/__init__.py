"""Storage layer: the Parquet lake (partitioned by date and service, committed atomically per batch),
DuckDB search over it, retention tiers, the search API and an optional Elasticsearch sink."""
from logwarden.storage.lake import CommitInfo, Lake
from logwarden.storage.query import connect, query

__all__ = ["CommitInfo", "Lake", "connect", "query"]
