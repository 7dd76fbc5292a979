"""Backfill: reprocess what the lake holds for a time range (after changing masking, template mining
or aggregation). Each affected batch is staged again under its own batch id and recommitted, so its
files are replaced, never duplicated; no alert is raised again."""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from logwarden.collector.spool import Spool
from logwarden.common.records import record_schema
from logwarden.storage import Lake, query
from logwarden.storage.lake import BATCH_COLUMN, COMPACTED_PREFIX, parquet_files
from logwarden.storage.query import parquet_source

log = logging.getLogger(__name__)


def batches_in_range(lake: Lake, since: datetime, until: datetime) -> list[str]:
    """Ids of the committed batches holding records with since <= timestamp < until (also the batches
    whose files compaction merged: every row carries its batch id; older files are named after it)."""
    files = lake.log_files()
    if not files:
        return []
    source = parquet_source(files, filename=True)
    stem = r"regexp_extract(filename, '([^/]+)\.parquet$', 1)"
    try:
        rows = query(lake, f"SELECT DISTINCT coalesce({BATCH_COLUMN}, {stem}) FROM {source} "
                           "WHERE timestamp >= ? AND timestamp < ?", [since, until])
    except duckdb.BinderException:  # a lake written before rows carried their batch id
        rows = query(lake, f"SELECT DISTINCT {stem} FROM {source} WHERE timestamp >= ? AND timestamp < ?",
                     [since, until])
    return sorted({batch_id for (batch_id,) in rows if batch_id and lake.is_committed(batch_id)})


def batch_records(lake: Lake, batch_id: str) -> pa.Table:
    """Every record a committed batch wrote, in the record layout (derived columns dropped): from its own
    files, or from the compacted files its rows were merged into."""
    schema = record_schema()
    parts = []
    for name in lake.marker_files(batch_id):
        path = lake.root / name
        if not name.startswith("logs/"):
            continue
        visible = parquet_files(path.parent)
        if path in visible:
            parts.append(pq.read_table(path))
            continue
        for merged in visible:
            if merged.name.startswith(COMPACTED_PREFIX) and BATCH_COLUMN in pq.read_schema(merged).names:
                parts.append(pq.read_table(merged, filters=[(BATCH_COLUMN, "=", batch_id)]))
    parts = [part.select(schema.names).cast(schema) for part in parts]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def stage_batches(lake: Lake, batch_ids: list[str], spool_dir: Path) -> int:
    """Write each batch back as a spool batch of the same id into ``spool_dir``; returns the records."""
    spool = Spool(spool_dir)
    total = 0
    for batch_id in batch_ids:
        table = batch_records(lake, batch_id)
        spool.write(batch_id, table.to_pylist())
        total += table.num_rows
    return total
