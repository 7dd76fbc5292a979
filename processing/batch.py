"""One spool batch through processing, in two Dask tasks per batch.

``prepare_batch`` (phase one) reads the spool file, masks secrets, orders by event time and
matches messages against the template snapshot; it keeps the prepared table in the worker
and returns only the messages no template covered. The driver learns those (see
``processing.mining``). ``finalize_batch`` (phase two, on the same worker when it can)
assigns every record its template against the new snapshot, aggregates, and commits the
batch to the lake. Both are idempotent: the lake commit is keyed by the batch id, so a
retried task never writes a second copy, and a lost worker only costs a recomputation.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from logwarden.common.records import record_schema
from processing.aggregate import minute_aggregates
from processing.masking import Masker, MaskingConfig
from processing.mining import Unmatched
from processing.templates import TemplateInfo, TemplateMiner
from processing.templates.distributed import match_partition
from storage import Lake

log = logging.getLogger(__name__)

TEMPLATE_FIELDS = (pa.field("template_id", pa.string()), pa.field("template", pa.string()))
_PREPARED: "OrderedDict[str, pa.Table]" = OrderedDict()  # per worker process: phase one's tables
_PREPARED_KEEP = 16


def lake_schema() -> pa.Schema:
    """The columns of the lake: the record layout plus the template of each record."""
    schema = record_schema()
    for template_field in TEMPLATE_FIELDS:
        schema = schema.append(template_field)
    return schema


@dataclass
class BatchOutput:
    """What processing hands to monitoring for one batch: its records and aggregates as Arrow tables."""

    batch_id: str
    records: pa.Table
    aggregates: pa.Table
    usage: list[TemplateInfo] = field(default_factory=list)
    new_templates: list[TemplateInfo] = field(default_factory=list)

    @property
    def num_records(self) -> int:
        """How many records the batch holds."""
        return self.records.num_rows


def batch_id_of(spool_path: str | Path) -> str:
    """The batch id a spool file is named after."""
    return Path(spool_path).stem


def _mask(table: pa.Table, masker: Masker) -> pa.Table:
    for name in ("message", "attributes"):
        index = table.schema.get_field_index(name)
        values = [None if v is None else masker.mask_text(v) for v in table[name].to_pylist()]
        table = table.set_column(index, name, pa.array(values, pa.string()))
    return table


def _prepare(spool_path: str, masking: MaskingConfig | None) -> pa.Table:
    table = pq.read_table(spool_path).cast(record_schema())
    if masking is None or masking.enabled:
        table = _mask(table, Masker(masking))
    return table.sort_by([("timestamp", "ascending")])


def _seconds(table: pa.Table) -> list[float]:
    return pc.divide(pc.cast(pc.cast(table["timestamp"], pa.int64()), pa.float64()), 1e6).to_pylist()


def prepare_batch(spool_path: str, snapshot: bytes, masking: MaskingConfig | None = None) -> Unmatched:
    """Phase one: mask, order and match; the distinct messages no template covers, in order."""
    batch_id = batch_id_of(spool_path)
    table = _prepare(spool_path, masking)
    _PREPARED[batch_id] = table
    while len(_PREPARED) > _PREPARED_KEEP:
        _PREPARED.popitem(last=False)
    messages = table["message"].to_pylist()
    result = Unmatched(batch_id, rows=table.num_rows)
    seen: set[str] = set()
    for message, match, at in zip(messages, match_partition(snapshot, messages), _seconds(table)):
        if match is None and message not in seen:
            seen.add(message)
            result.messages.append(message)
            result.timestamps.append(at)
    return result


def finalize_batch(spool_path: str, lake_root: str, snapshot: bytes, learned: list[str],
                   masking: MaskingConfig | None = None) -> BatchOutput:
    """Phase two: template every record against ``snapshot``, aggregate, commit to the lake."""
    batch_id = batch_id_of(spool_path)
    table = _PREPARED.pop(batch_id, None)
    if table is None:  # another worker ran phase one, or this one restarted
        table = _prepare(spool_path, masking)
    messages = table["message"].to_pylist()
    matches = match_partition(snapshot, messages)
    missing = [m for m, match in zip(messages, matches) if match is None]
    if missing:
        raise RuntimeError(f"batch {batch_id}: {len(missing)} messages match no template, e.g. {missing[0]!r}")
    records = table.append_column(TEMPLATE_FIELDS[0], pa.array([m.template_id for m in matches], pa.string()))
    records = records.append_column(TEMPLATE_FIELDS[1], pa.array([m.template for m in matches], pa.string()))
    aggregates = minute_aggregates(records)
    Lake(Path(lake_root)).commit_batch(batch_id, records, aggregates)
    return BatchOutput(batch_id, records, aggregates, usage=_usage(messages, matches, _seconds(table), set(learned)))


def _usage(messages: list[str], matches: list, seconds: list[float], learned: set[str]) -> list[TemplateInfo]:
    """Template counts of the batch, less the first occurrence of each message the driver learned
    (learning counted it already)."""
    pending = set(learned)
    kept_matches, kept_seconds = [], []
    for message, match, at in zip(messages, matches, seconds):
        if message in pending:
            pending.discard(message)
            continue
        kept_matches.append(match)
        kept_seconds.append(at)
    return TemplateMiner.usage_of(kept_matches, kept_seconds)
