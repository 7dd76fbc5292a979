"""One spool batch through processing, in three Dask tasks per batch.

``prepare_batch`` (phase one) reads the spool file, masks secrets, orders by event time and
matches messages against the template snapshot; it keeps the prepared table in the worker
and returns only the messages no template covered. The driver learns those (see
``processing.mining``). ``transform_batch`` (phase two, on the same worker when it can)
assigns every record its template against the new snapshot, enriches and aggregates; it keeps
the result in the worker and returns the records the detectors need, so that detection does not
wait for the lake. ``commit_transformed`` (phase three, on the same worker) commits the batch to
the lake. ``finalize_batch`` does phases two and three in one call (backfill, tests, benchmarks).
All are idempotent: the lake commit is keyed by the batch id, so a retried task never writes a
second copy, and a lost worker only costs a recomputation.

A commit that fails for a reason other than the machine's (a full disk, an I/O error: those are
retried) is bisected: halves of the batch are tried until the records the lake cannot take are
isolated. Those go to the dead-letter store with the error, and the rest of the batch commits. A
spool file that cannot be read at all raises ``CorruptBatch``: processing quarantines it at once.
"""
from __future__ import annotations

import errno
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from logwarden.collector.deadletter import DEFAULT_MAX_BYTES, DeadLetter, DeadLetterStore
from logwarden.common.records import record_schema, schema_field_names
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
# Per worker process: phase two's result, for phase three (the lake commit) on the same worker.
_TRANSFORMED: "OrderedDict[str, Transformed]" = OrderedDict()
DEAD_LETTER_REASON = "lake_commit"
# Errors of the machine, not of a record: the batch is retried whole, never split.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE,
                              errno.ENFILE, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ESTALE, errno.ETIMEDOUT})
_TRANSIENT_TEXTS = ("No space left on device", "Disk quota exceeded", "Input/output error", "Read-only file system",
                    "Cannot allocate memory", "Too many open files", "Stale file handle")


class CorruptBatch(ValueError):
    """A spool batch that cannot be read as records: retrying cannot help, it is quarantined."""


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
    dead_lettered: int = 0  # records the lake could not take, moved to the dead-letter store

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


def _read_spool(spool_path: str) -> pa.Table:
    """The records of a spool batch; CorruptBatch when the file is not a readable batch of records."""
    try:
        return pq.read_table(spool_path).cast(record_schema())
    except (pa.ArrowException, ValueError, KeyError, OSError) as exc:
        if isinstance(exc, OSError) and (exc.errno is not None or _is_transient(exc)):
            raise  # the file system's error (missing file, permissions, I/O), not the file's content
        raise CorruptBatch(f"unreadable spool batch {Path(spool_path).name}: {type(exc).__name__}: {exc}") from None


def _prepare(spool_path: str, masking: MaskingConfig | None) -> pa.Table:
    table = _read_spool(spool_path)
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


@dataclass
class Transformed:
    """A batch templated, enriched and aggregated, kept on its worker between ``transform_batch`` and
    ``commit_transformed``."""

    records: pa.Table
    aggregates: pa.Table
    messages: pa.ChunkedArray
    learned: list[str]
    new_template_ids: frozenset[str]


@dataclass
class Committed:
    """What the lake commit of a batch did: how many records it committed, how many it refused (moved
    to the dead-letter store), and the template usage of the committed records."""

    batch_id: str
    records: int
    dead_lettered: int
    usage: list[TemplateInfo] = field(default_factory=list)


def transform_batch(spool_path: str, snapshot: bytes, learned: list[str], masking: MaskingConfig | None = None,
                    inventory: Inventory | None = None, new_template_ids: frozenset[str] = frozenset(),
                    columns: tuple[str, ...] | None = None) -> BatchOutput:
    """Phase two: template every record against ``snapshot``, enrich and aggregate; keep the result on
    this worker for ``commit_transformed``. Returns what the sink (the detectors) needs at once: the
    records, only ``columns`` of them when given (in that order, those the table has)."""
    batch_id = batch_id_of(spool_path)
    transformed = _transform(spool_path, snapshot, learned, masking, inventory, new_template_ids)
    _TRANSFORMED[batch_id] = transformed
    while len(_TRANSFORMED) > _PREPARED_KEEP:
        _TRANSFORMED.popitem(last=False)
    records = transformed.records
    if columns is not None:
        records = records.select([name for name in columns if name in records.column_names])
    return BatchOutput(batch_id, records, transformed.aggregates.slice(0, 0))


def commit_transformed(spool_path: str, lake_root: str, snapshot: bytes, learned: list[str],
                       masking: MaskingConfig | None = None, elasticsearch: ElasticsearchConfig | None = None,
                       inventory: Inventory | None = None, new_template_ids: frozenset[str] = frozenset(),
                       deadletter_dir: str | None = None,
                       deadletter_max_bytes: int | None = DEFAULT_MAX_BYTES) -> Committed:
    """Phase three: commit the batch ``transform_batch`` kept on this worker to the lake (transforming it
    again when this worker does not hold it: another worker did phase two, or this one restarted). Records
    the lake cannot take go to the dead-letter store in ``deadletter_dir`` (capped at
    ``deadletter_max_bytes``; None as the folder: the commit error is raised instead)."""
    batch_id = batch_id_of(spool_path)
    transformed = _TRANSFORMED.pop(batch_id, None)
    if transformed is None:
        transformed = _transform(spool_path, snapshot, learned, masking, inventory, new_template_ids)
    records, _aggregates, refused = _commit(batch_id, lake_root, transformed, deadletter_dir, deadletter_max_bytes)
    if elasticsearch is not None:
        _index(elasticsearch, batch_id, records)
    messages = records["message"] if refused else transformed.messages
    return Committed(batch_id, records.num_rows, refused, usage=_usage(records, messages, transformed.learned))


def finalize_batch(spool_path: str, lake_root: str, snapshot: bytes, learned: list[str],
                   masking: MaskingConfig | None = None,
                   elasticsearch: ElasticsearchConfig | None = None,
                   inventory: Inventory | None = None,
                   new_template_ids: frozenset[str] = frozenset(),
                   deadletter_dir: str | None = None,
                   deadletter_max_bytes: int | None = DEFAULT_MAX_BYTES) -> BatchOutput:
    """Phases two and three in one call: template every record against ``snapshot``, enrich, aggregate,
    commit to the lake; the whole output. Records the lake cannot take go to the dead-letter store in
    ``deadletter_dir`` (capped at ``deadletter_max_bytes``; None as the folder: the commit error is raised
    instead)."""
    batch_id = batch_id_of(spool_path)
    transformed = _transform(spool_path, snapshot, learned, masking, inventory, new_template_ids)
    records, aggregates, refused = _commit(batch_id, lake_root, transformed, deadletter_dir, deadletter_max_bytes)
    if elasticsearch is not None:
        _index(elasticsearch, batch_id, records)
    messages = records["message"] if refused else transformed.messages
    return BatchOutput(batch_id, records, aggregates, usage=_usage(records, messages, learned),
                       user_errors=user_errors(records), dead_lettered=refused)


def _transform(spool_path: str, snapshot: bytes, learned: list[str], masking: MaskingConfig | None,
               inventory: Inventory | None, new_template_ids: frozenset[str]) -> Transformed:
    """Template (phase one's matches when this worker holds them), enrich and aggregate a batch."""
    table, matches = _PREPARED.pop(batch_id_of(spool_path), (None, None))
    if table is None:  # another worker ran phase one, or this one restarted
        table = _prepare(spool_path, masking)
    messages = table["message"]
    matches = _complete_matches(snapshot, messages, matches)
    template_ids, templates = matches.columns()
    records = table.append_column(TEMPLATE_FIELDS[0], template_ids).append_column(TEMPLATE_FIELDS[1], templates)
    records = (inventory or Inventory()).enrich(records)
    return Transformed(records, minute_aggregates(records, new_template_ids), messages, learned, new_template_ids)


def _commit(batch_id: str, lake_root: str, transformed: Transformed, deadletter_dir: str | None,
            deadletter_max_bytes: int | None) -> tuple[pa.Table, pa.Table, int]:
    """Commit a transformed batch; the records and aggregates committed, and how many records were refused."""
    records, aggregates = transformed.records, transformed.aggregates
    lake = Lake(Path(lake_root))
    committed_before = lake.is_committed(batch_id)  # a retry: letters of an earlier attempt may exist
    try:
        lake.commit_batch(batch_id, records, aggregates)
        return records, aggregates, 0
    except Exception as exc:  # noqa: BLE001 - any failure may be one record's: isolate it
        if deadletter_dir is None or _is_transient(exc):
            raise
        store = DeadLetterStore(Path(deadletter_dir), max_bytes=deadletter_max_bytes)
        records, refused = _commit_isolating(lake, batch_id, records, transformed.new_template_ids, store, exc,
                                             committed_before)
        return records, minute_aggregates(records, transformed.new_template_ids), refused


def _is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the machine's trouble (disk full, I/O error...), not a record's."""
    if isinstance(exc, MemoryError):
        return True
    if not isinstance(exc, OSError):
        return False
    return exc.errno in TRANSIENT_ERRNOS or any(text in str(exc) for text in _TRANSIENT_TEXTS)


def failing_rows(records: pa.Table, attempt: Callable[[pa.Table], None]) -> list[tuple[int, BaseException]]:
    """The rows ``attempt`` fails on, each with its error, found by bisection: a slice that fails is
    split in halves until single rows. Transient errors are raised, never blamed on a row."""
    found: list[tuple[int, BaseException]] = []

    def probe(start: int, stop: int) -> BaseException | None:
        try:
            attempt(records.slice(start, stop - start))
        except Exception as exc:  # noqa: BLE001
            if _is_transient(exc):
                raise
            return exc
        return None

    def split(start: int, stop: int, error: BaseException) -> None:
        if stop - start == 1:
            found.append((start, error))
            return
        middle = (start + stop) // 2
        for low, high in ((start, middle), (middle, stop)):
            failure = probe(low, high)
            if failure is not None:
                split(low, high, failure)

    if records.num_rows:
        failure = probe(0, records.num_rows)
        if failure is not None:
            split(0, records.num_rows, failure)
    return found


def _commit_isolating(lake: Lake, batch_id: str, records: pa.Table, new_template_ids: frozenset[str],
                      store: DeadLetterStore, error: BaseException, retry: bool = False) -> tuple[pa.Table, int]:
    """Commit what the lake takes of a batch whose commit failed; the rest to the dead-letter store.
    Returns the committed records and how many went to the dead-letter store. Raises ``error`` when no
    single record is to blame, or when every record is (that is the lake's trouble, not a record's).
    On a ``retry`` (the batch was committed before), letters an earlier attempt stored are not added
    again (their ids are derived from the batch and record ids)."""
    bad = failing_rows(records, lambda part: lake.check_writable(batch_id, part,
                                                                 minute_aggregates(part, new_template_ids)))
    if not bad or len(bad) == records.num_rows:
        raise error
    rows = [row for row, _ in bad]
    keep = pa.array(sorted(set(range(records.num_rows)) - set(rows)), pa.int64())
    good = records.take(keep)
    lake.commit_batch(batch_id, good, minute_aggregates(good, new_template_ids))
    # After the commit: a crash in between redoes both, and the retry does not store a letter twice.
    letters = [_letter(batch_id, records, row, failure) for row, failure in bad]
    if retry:
        wanted = {letter.id for letter in letters}
        stored = {letter.id for letter in store if letter.id in wanted}
        letters = [letter for letter in letters if letter.id not in stored]
    store.add(letters)
    log.error("batch %s: %d record(s) the lake cannot take moved to the dead-letter store (%s); %d committed",
              batch_id, len(bad), _describe(bad[0][1]), good.num_rows)
    return good, len(bad)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


def _letter(batch_id: str, records: pa.Table, row: int, error: BaseException) -> DeadLetter:
    """A dead letter of one record: the record as a JSON line the collector accepts (masked, as the
    lake would have held it), the commit error, its tenant and source."""
    record = records.slice(row, 1).to_pylist()[0]
    body: dict = {}
    for name in schema_field_names():
        value = record.get(name)
        if value is not None:
            body[name] = value
    try:
        extra = orjson.loads(record.get("attributes") or "{}")
    except orjson.JSONDecodeError:
        extra = {}
    if isinstance(extra, dict):
        body = {**{k: v for k, v in extra.items() if k not in body}, **body}
    raw = orjson.dumps(body, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z, default=str)
    record_id = record.get("record_id") or str(row)
    return DeadLetter(raw=raw, reason=DEAD_LETTER_REASON, error=_describe(error), field="",
                      source=record.get("source") or "", tenant=record.get("tenant") or "", index=row,
                      id=hashlib.sha256(f"{batch_id}\x1f{record_id}".encode()).hexdigest()[:32],
                      protocol="lake")


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
            if row is not None:  # None: its record went to the dead-letter store
                counted[ids[row].as_py()]["count_all"] -= 1
    return [TemplateInfo(tid, row["template"], row["count_all"], row["at_min"], row["at_max"])
            for tid, row in counted.items() if row["count_all"] > 0]
