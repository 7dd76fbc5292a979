"""Backfill: reprocess what the lake holds for a time range (after changing masking, template mining
or aggregation). Each affected batch is staged again under its own batch id and recommitted, so its
files are replaced, never duplicated; no alert is raised again."""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from collector.spool import Spool
from logwarden.common.records import record_schema
from storage import Lake, query

log = logging.getLogger(__name__)


def batches_in_range(lake: Lake, since: datetime, until: datetime) -> list[str]:
    """Ids of the committed batches holding records with since <= timestamp < until."""
    sql = (f"SELECT DISTINCT filename FROM read_parquet('{lake.logs_glob()}', hive_partitioning = true, "
           "union_by_name = true, filename = true) WHERE timestamp >= ? AND timestamp < ?")
    rows = query(lake, sql, [since, until]) if lake.logs.exists() else []
    return sorted({Path(name).stem for (name,) in rows if lake.is_committed(Path(name).stem)})


def batch_records(lake: Lake, batch_id: str) -> pa.Table:
    """Every record a committed batch wrote, in the record layout (derived columns dropped)."""
    marker = orjson.loads((lake.commits / f"{batch_id}.json").read_bytes())
    schema = record_schema()
    parts = [pq.read_table(lake.root / name).select(schema.names).cast(schema)
             for name in marker["files"] if name.startswith("logs/")]
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
