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
from logwarden.processing.aggregate import minute_aggregates, user_errors
from logwarden.processing.enrich import HOST_FIELD, INVENTORY_FIELDS, Inventory
from logwarden.processing.masking import Masker, MaskingConfig
from logwarden.processing.mining import Unmatched
from logwarden.processing.templates import TemplateInfo
from logwarden.processing.templates.distributed import ColumnMatches, match_column, match_partition
from logwarden.storage import Lake
from logwarden.storage.elasticsearch import ElasticsearchConfig, SinkUnavailable, sink_for

log = logging.getLogger(__name__)

TEMPLATE_FIELDS = (pa.field("template_id", pa.string()), pa.field("template", pa.string()))
# Per worker process: phase one's table and matches, for phase two on the same worker.
_PREPARED: "OrderedDict[str, tuple[pa.Table, ColumnMatches]]" = OrderedDict()
_PREPARED_KEEP = 16


def lake_schema() -> pa.Schema:
    """The columns of the lake: the record layout, the template of each record, and its enrichment."""
    schema = record_schema()
    for extra in (*TEMPLATE_FIELDS, *INVENTORY_FIELDS, HOST_FIELD):
        schema = schema.append(extra)
    return schema


@dataclass
class BatchOutput:
    """What processing hands to monitoring for one batch: its records and aggregates as Arrow tables."""

    batch_id: str
    records: pa.Table
    aggregates: pa.Table
    usage: list[TemplateInfo] = field(default_factory=list)
    new_templates: list[TemplateInfo] = field(default_factory=list)
    user_errors: pa.Table | None = None

    @property
    def num_records(self) -> int:
        """How many records the batch holds."""
        return self.records.num_rows


def batch_id_of(spool_path: str | Path) -> str:
    """The batch id a spool file is named after."""
    return Path(spool_path).stem


def _mask(table: pa.Table, masker: Masker) -> pa.Table:
    for name in ("message", "attributes"):
        table = table.set_column(table.schema.get_field_index(name), name, masker.mask_array(table[name]))
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
    matches = match_column(snapshot, table["message"])
    _PREPARED[batch_id] = (table, matches)
    while len(_PREPARED) > _PREPARED_KEEP:
        _PREPARED.popitem(last=False)
    result = Unmatched(batch_id, rows=table.num_rows)
    missing = matches.unmatched_representatives()
    if len(missing):
        rows = table.select(["message", "timestamp"]).take(pa.array(missing))
        seen: set[str] = set()
        for message, at in zip(rows["message"].to_pylist(), _seconds(rows)):
            if message not in seen:
                seen.add(message)
                result.messages.append(message)
                result.timestamps.append(at)
    return result


def finalize_batch(spool_path: str, lake_root: str, snapshot: bytes, learned: list[str],
                   masking: MaskingConfig | None = None,
                   elasticsearch: ElasticsearchConfig | None = None,
                   inventory: Inventory | None = None,
                   new_template_ids: frozenset[str] = frozenset()) -> BatchOutput:
    """Phase two: template every record against ``snapshot``, enrich, aggregate, commit to the lake."""
    batch_id = batch_id_of(spool_path)
    table, matches = _PREPARED.pop(batch_id, (None, None))
    if table is None:  # another worker ran phase one, or this one restarted
        table = _prepare(spool_path, masking)
    messages = table["message"]
    matches = _complete_matches(snapshot, messages, matches)
    template_ids, templates = matches.columns()
    records = table.append_column(TEMPLATE_FIELDS[0], template_ids).append_column(TEMPLATE_FIELDS[1], templates)
    records = (inventory or Inventory()).enrich(records)
    aggregates = minute_aggregates(records, new_template_ids)
    Lake(Path(lake_root)).commit_batch(batch_id, records, aggregates)
    if elasticsearch is not None:
        _index(elasticsearch, batch_id, records)
    return BatchOutput(batch_id, records, aggregates, usage=_usage(records, messages, learned),
                       user_errors=user_errors(records))


def _index(config: ElasticsearchConfig, batch_id: str, records: pa.Table) -> None:
    """Bulk-index the committed batch; blocks while the cluster is slow (backpressure). The lake holds the
    records either way: an outage is logged and can be refilled with ``storage.elasticsearch.reindex``."""
    try:
        sink_for(config).index_batch(records)
    except SinkUnavailable as exc:
        log.error("batch %s not indexed in Elasticsearch: %s", batch_id, exc)


def _complete_matches(snapshot: bytes, messages: pa.ChunkedArray, earlier: ColumnMatches | None) -> ColumnMatches:
    """Matches for every message: phase one's where it had them, the new snapshot's for the rest.
    (A template only generalizes when it learns, and phase one's ids stay valid: ids never change.)"""
    if earlier is None:
        matches = match_column(snapshot, messages)
    else:
        matches = earlier
        rows = matches.unmatched_representatives()
        if len(rows):
            texts = messages.take(pa.array(rows)).to_pylist()
            matches.settle(rows, match_partition(snapshot, texts, with_params=False))
    missing = matches.unmatched_representatives()
    if len(missing):
        raise RuntimeError(f"{len(missing)} messages match no template, e.g. {messages[int(missing[0])].as_py()!r}")
    return matches


def _usage(records: pa.Table, messages: pa.ChunkedArray, learned: list[str]) -> list[TemplateInfo]:
    """Template counts and first/last event times of the batch, less the first occurrence of each
    message the driver learned (learning counted it already)."""
    seconds = pc.divide(pc.cast(pc.cast(records["timestamp"], pa.int64()), pa.float64()), 1e6)
    grouped = pa.table({"template_id": records["template_id"], "template": records["template"], "at": seconds}) \
        .group_by(["template_id", "template"]).aggregate([([], "count_all"), ("at", "min"), ("at", "max")])
    counted = {row["template_id"]: row for row in grouped.to_pylist()}
    if learned:
        rows = pc.index_in(pa.array(learned, pa.string()), value_set=messages).to_pylist()
        ids = records["template_id"]
        for row in rows:
            counted[ids[row].as_py()]["count_all"] -= 1
    return [TemplateInfo(tid, row["template"], row["count_all"], row["at_min"], row["at_max"])
            for tid, row in counted.items() if row["count_all"] > 0]
