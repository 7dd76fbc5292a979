"""One spool batch through processing: read, order, aggregate, commit to the lake.

``process_spool_batch`` is the unit of work of a Dask task: it is idempotent (the lake
commit is keyed by the batch id), so a retried task never writes a second copy.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from processing.aggregate import minute_aggregates
from storage import Lake

log = logging.getLogger(__name__)


@dataclass
class BatchOutput:
    """What processing hands to monitoring for one batch: its records and its aggregates, as Arrow tables."""

    batch_id: str
    records: pa.Table
    aggregates: pa.Table

    @property
    def num_records(self) -> int:
        """How many records the batch holds."""
        return self.records.num_rows


def batch_id_of(spool_path: str | Path) -> str:
    """The batch id a spool file is named after."""
    return Path(spool_path).stem


def process_records(batch_id: str, records: pa.Table, lake_root: str) -> BatchOutput:
    """Order by event time, aggregate, commit to the lake; safe to repeat."""
    records = records.sort_by([("timestamp", "ascending")])
    aggregates = minute_aggregates(records)
    Lake(Path(lake_root)).commit_batch(batch_id, records, aggregates)
    return BatchOutput(batch_id, records, aggregates)


def process_spool_batch(spool_path: str, lake_root: str) -> BatchOutput:
    """Process the spool file ``spool_path`` into the lake under ``lake_root``."""
    batch_id = batch_id_of(spool_path)
    records = pq.read_table(spool_path)
    output = process_records(batch_id, records, lake_root)
    log.debug("batch %s: %d records committed", batch_id, output.num_records)
    return output
