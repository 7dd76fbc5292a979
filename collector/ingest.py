"""The ingestion core of every protocol: write ahead, acknowledge, dead-letter, roll into spool batches.

Every accepted chunk of records is appended to the open write-ahead segment and kept in
memory as an Arrow table. A request is answered only once an fsync covers its entry. When
the open batch reaches its size (records or bytes) or age limit, its segment is closed; the
spool writer then concatenates its tables, adds the system columns and writes one Parquet
batch named after the segment, then deletes the segment. After a crash, segments left on
disk are turned into batches by ``recover`` unless the spool or the lake already has them,
so every acknowledged record reaches the spool exactly once.

Faults: below ``min_free_disk_bytes`` of free space on the data disk, and for a moment after a
write-ahead write or fsync failed, ``submit`` raises ``WalFailure`` (the protocols answer 503 with
``Retry-After``) having kept nothing of the request; the write-ahead log cuts off any torn entry
first (see ``collector/wal.py``), so a full disk costs no acknowledged record and the collector
takes records again by itself once space returns. A dead-letter write that fails does not undo
the request's accepted records: the answer reports it, and a metric counts the lost letters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.budget import MemoryBudget
from logwarden.collector.deadletter import DeadLetter, DeadLetterStore
from logwarden.collector.decoding import RawRecord
from logwarden.collector.metrics import CollectorMetrics
from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator
from logwarden.collector.wal import (
    WalFailure, WriteAheadLog, is_legacy_segment, read_entries, read_legacy_segment,
)
from logwarden.common.paths import DataDir
from logwarden.common.records import TIMESTAMP

log = logging.getLogger(__name__)
MAX_REPORTED_ERRORS = 1000
SPOOL_RETRY_SECONDS = 5.0
FREE_SPACE_CHECK_SECONDS = 0.25  # how long a reading of the data disk's free space is trusted


@dataclass(frozen=True)
class BatchPolicy:
    """When the open batch rolls over into a spool file."""

    max_records: int = 50_000
    max_age: float = 0.25  # seconds; the largest share of the time from acknowledgement to alert
    max_bytes: int = 64 * 1024 * 1024


@dataclass
class IngestResult:
    """What happened to one request's records."""

    accepted: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    #: The index of every rejected record (``errors`` names at most MAX_REPORTED_ERRORS of them); protocols
    #: with per-item answers (Elasticsearch bulk, Splunk HEC) read it. Not part of the native answer.
    rejected_indexes: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The HTTP answer body (``errors`` lists at most MAX_REPORTED_ERRORS entries)."""
        body: dict[str, Any] = {"accepted": self.accepted, "rejected": self.rejected, "errors": self.errors}
        if self.rejected > sum(1 for error in self.errors if error.get("index") is not None):
            body["errors_truncated"] = True
        return body


@dataclass(frozen=True)
class BatchPart:
    """One acknowledged chunk of the open batch."""

    table: pa.Table
    tenant: str
    source: str
    received_us: int


def assemble_batch(segment_id: str, parts: list[BatchPart]) -> pa.Table:
    """The rows of a batch in the record layout: data columns plus record id, tenant, source, receive time."""
    tables = []
    offset = 0
    for part in parts:
        n = part.table.num_rows
        numbers = pc.utf8_lpad(
            pc.cast(pa.array(np.arange(offset, offset + n, dtype=np.int64)), pa.string()), 6, "0"
        )
        system = {
            "record_id": pc.binary_join_element_wise(f"{segment_id}-", numbers, ""),
            "tenant": pa.array([part.tenant] * n, pa.string()),
            "source": pa.array([part.source] * n, pa.string()),
            "received_at": pa.array([part.received_us] * n, pa.int64()).cast(TIMESTAMP),
        }
        table = part.table
        for name, column in system.items():
            table = table.append_column(name, column)
        tables.append(table)
        offset += n
    return pa.concat_tables(tables)


class Ingestor:
    """Turns decoded batches into acknowledged, durable rows and rolls them into spool batches."""

    def __init__(
        self,
        paths: DataDir,
        validator: RecordValidator,
        policy: BatchPolicy,
        metrics: CollectorMetrics,
        is_committed: Callable[[str], bool],
        budget: MemoryBudget | None = None,
        decoder: BatchDecoder | None = None,
        min_free_disk_bytes: int = 0,
        max_deadletter_bytes: int | None = None,
    ) -> None:
        self.paths = paths
        self.validator = validator
        self.decoder = decoder or BatchDecoder(validator, max_line_bytes=1 << 20, max_body_bytes=64 << 20)
        self.policy = policy
        self.metrics = metrics
        self.budget = budget or MemoryBudget(1 << 62)
        self.spool = Spool(paths.spool)
        self.deadletter = (
            DeadLetterStore(paths.deadletter, on_evicted=metrics.deadletters_evicted.inc)
            if max_deadletter_bytes is None
            else DeadLetterStore(paths.deadletter, max_deadletter_bytes, metrics.deadletters_evicted.inc)
        )
        self.min_free_disk_bytes = min_free_disk_bytes
        self._free_bytes: int | None = None
        self._free_checked = float("-inf")
        self._is_committed = is_committed
        self._instance = secrets.token_hex(3)
        self._sequence = 0
        self._parts: dict[str, list[BatchPart]] = {}
        self._rows = 0
        self._bytes = 0
        self._opened_at = 0.0
        self.spool_depth = 0
        self.wal = WriteAheadLog(
            paths.wal, self._on_segment_closed, self._on_fsync, self._on_discarded,
            lambda kind: metrics.wal_errors.labels(kind).inc(),
        )
        self._spool_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-writer")
        self._pending_spool: set[asyncio.Future] = set()
        self._roller: asyncio.Task | None = None
        self._stopping = False
        self.spool_retry_seconds = SPOOL_RETRY_SECONDS

    def _new_batch_id(self) -> str:
        self._sequence += 1
        return f"{time.time_ns() // 1_000_000:013d}-{self._instance}-{self._sequence:06d}"

    # recovery -------------------------------------------------------------------------------
    def recover(self) -> int:
        """Turn write-ahead segments left by a previous run into spool batches, once; returns how many."""
        return sum(self._recover_segment(segment_id) for segment_id in self.wal.existing_segments())

    def _recover_segment(self, segment_id: str) -> bool:
        """Spool segment ``segment_id`` from disk unless the spool or the lake has it; then delete it."""
        path = self.wal.path_of(segment_id)
        recovered = False
        if path.exists() and not self.spool.has(segment_id) and not self._is_committed(segment_id):
            if is_legacy_segment(path):
                rows = list(read_legacy_segment(path))
                if rows:
                    self.spool.write(segment_id, rows)
                    recovered = True
            else:
                parts = self._recover_parts(segment_id, path)
                if parts:
                    table = assemble_batch(segment_id, parts)
                    self.spool.write_table(segment_id, table)
                    recovered = True
                    log.info(
                        "recovered batch %s (%d records) from the write-ahead log", segment_id, table.num_rows
                    )
        path.unlink(missing_ok=True)
        return recovered

    def _recover_parts(self, segment_id: str, path: Path) -> list[BatchPart]:
        parts = []
        for entry in read_entries(path, lambda offset, size: self.metrics.wal_skipped_bytes.inc(size)):
            header = entry.header
            batch = self.decoder.ndjson(entry.payload, skew=False)
            if batch.rejected:
                log.error(
                    "segment %s: %d acknowledged records no longer pass the schema; dead-lettered",
                    segment_id,
                    len(batch.rejected),
                )
                self.deadletter.add(
                    [
                        DeadLetter(
                            raw.raw,
                            f"recovery_{why.reason}",
                            why.error,
                            why.field,
                            header["source"],
                            header["tenant"],
                            raw.index,
                            protocol=header.get("protocol", ""),
                        )
                        for raw, why in batch.rejected
                    ]
                )
            if batch.accepted:
                parts.append(BatchPart(batch.table, header["tenant"], header["source"], header["received_us"]))
        return parts

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Recover, then open the first segment and start the roll-over timer.

        A segment that cannot be spooled now (a full disk) stays on disk and is retried every
        ``spool_retry_seconds``."""
        for segment_id in self.wal.existing_segments():
            try:
                self._recover_segment(segment_id)
            except OSError as exc:
                log.error(
                    "recovering write-ahead segment %s failed: %s; it stays on disk, retried in %gs",
                    segment_id,
                    exc,
                    self.spool_retry_seconds,
                )
                self._retry_later(segment_id)
        self.spool_depth = self.spool.depth()
        self.wal.start()
        self._open_segment()
        self._roller = asyncio.get_running_loop().create_task(self._roll_on_age(), name="batch-roller")

    def _open_segment(self) -> None:
        batch_id = self._new_batch_id()
        self.wal.open_segment(batch_id)  # OSError (a full disk): the open segment stays open
        self._parts[batch_id] = []
        self._rows = self._bytes = 0
        self._opened_at = time.monotonic()

    def rotate(self) -> None:
        """Close the open batch (if it holds anything) and open a new one (if a new segment cannot be
        created, the open batch goes on and the next roll-over tries again)."""
        if self._parts.get(self.wal.segment_id):
            try:
                self._open_segment()
            except OSError as exc:
                log.error("cannot open a new write-ahead segment: %s; the open batch stays open", exc)

    async def _roll_on_age(self) -> None:
        last_depth_check = 0.0
        while True:
            await asyncio.sleep(min(0.1, self.policy.max_age / 4))
            now = time.monotonic()
            if now - self._opened_at >= self.policy.max_age:
                self.rotate()
            if now - last_depth_check >= 0.5:
                self.spool_depth = self.spool.depth()
                self.metrics.spool_depth.set(self.spool_depth)
                self.metrics.memory_used.set(self.budget.used)
                last_depth_check = now

    def _on_fsync(self, waiters: int) -> None:
        self.metrics.fsyncs.inc()
        self.metrics.group_size.observe(waiters)

    def _on_discarded(self, segment_id: str, part: BatchPart) -> None:
        """A failed fsync took back ``part``'s entry: it was never acknowledged, drop it from its batch."""
        parts = self._parts.get(segment_id, [])
        for position, candidate in enumerate(parts):
            if candidate is part:
                del parts[position]
                self.budget.release(part.table.nbytes)
                if segment_id == self.wal.segment_id:
                    self._rows -= part.table.num_rows
                    self._bytes -= part.table.nbytes
                return

    def _on_segment_closed(self, segment_id: str) -> None:
        parts = self._parts.pop(segment_id, [])
        size = sum(part.table.nbytes for part in parts)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._spool_executor, self._spool_segment, segment_id, parts)
        self._pending_spool.add(future)

        def done(fut: asyncio.Future) -> None:
            self._pending_spool.discard(fut)
            self.budget.release(size)
            if not fut.cancelled() and fut.exception() is not None:
                log.error(
                    "spooling batch %s failed: %s; retrying from its write-ahead segment in %.0fs",
                    segment_id,
                    fut.exception(),
                    SPOOL_RETRY_SECONDS,
                )
                self._retry_later(segment_id)

        future.add_done_callback(done)

    def _retry_later(self, segment_id: str) -> None:
        """Spool a segment from disk after a failed write (e.g. a full disk), until it succeeds."""
        loop = asyncio.get_running_loop()

        def retry() -> None:
            if self._stopping:
                return  # stopping: the segment stays on disk for the next start
            future = loop.run_in_executor(self._spool_executor, self._recover_segment, segment_id)
            self._pending_spool.add(future)

            def done(fut: asyncio.Future) -> None:
                self._pending_spool.discard(fut)
                if not fut.cancelled() and fut.exception() is not None:
                    log.error("spooling batch %s failed again: %s", segment_id, fut.exception())
                    self._retry_later(segment_id)

            future.add_done_callback(done)

        loop.call_later(self.spool_retry_seconds, retry)

    def _spool_segment(self, segment_id: str, parts: list[BatchPart]) -> None:
        if parts:
            started = time.perf_counter()
            self.spool.write_table(segment_id, assemble_batch(segment_id, parts))
            self.metrics.batches.inc()
            self.metrics.flush_seconds.observe(time.perf_counter() - started)
        self.wal.path_of(segment_id).unlink(missing_ok=True)

    async def stop(self) -> None:
        """Flush the open batch to the spool and stop."""
        self._stopping = True
        if self._roller:
            self._roller.cancel()
        self.rotate()
        await self.wal.close()
        if self._pending_spool:
            await asyncio.gather(*self._pending_spool, return_exceptions=True)
        self._spool_executor.shutdown(wait=True)

    # ingestion ------------------------------------------------------------------------------
    async def ingest(self, records: list[RawRecord], protocol: str, source: str, tenant: str) -> IngestResult:
        """Check ``records`` (decoded objects, as a protocol builds them: ``BatchDecoder.mapped``), then
        ``submit`` them."""
        return await self.submit(self.decoder.mapped(records), protocol, source, tenant)

    async def submit(
        self, batch: DecodedBatch, protocol: str, source: str, tenant: str, dead_letter: bool = True
    ) -> IngestResult:
        """Make the accepted records of ``batch`` durable before returning; dead-letter the rejected ones
        (unless ``dead_letter`` is False: a replay of letters that are still in the store)."""
        result = IngestResult(accepted=batch.accepted, rejected=len(batch.rejected))
        durable = None
        if batch.accepted or (batch.rejected and dead_letter):  # it would write: refused on a low disk
            low = self._low_disk()
            if low is not None:
                self.metrics.low_disk_refusals.labels(protocol).inc()
                raise WalFailure(low)
        if batch.accepted:
            received_us = time.time_ns() // 1000
            header = {"tenant": tenant, "source": source, "protocol": protocol, "received_us": received_us}
            part = BatchPart(batch.table, tenant, source, received_us)
            # Append and record the part before any await, so both land in the same segment.
            segment_id = self.wal.segment_id
            try:
                durable = self.wal.append(header, batch.payload, batch.payload_crc, part)
            except WalFailure:
                self._free_checked = float("-inf")  # read the free space afresh
                raise
            self._parts[segment_id].append(part)
            if self._free_bytes is not None:
                self._free_bytes -= len(batch.payload)
            self.budget.force(batch.table.nbytes)
            self._rows += batch.accepted
            self._bytes += batch.table.nbytes
            if self._rows >= self.policy.max_records or self._bytes >= self.policy.max_bytes:
                self.rotate()
        if batch.rejected:
            letters = []
            for raw, why in batch.rejected:
                letters.append(
                    DeadLetter(
                        raw.raw,
                        why.reason,
                        why.error,
                        why.field,
                        source,
                        tenant,
                        raw.index,
                        protocol=protocol,
                    )
                )
                if len(result.errors) < MAX_REPORTED_ERRORS:
                    result.errors.append({"index": raw.index, "field": why.field, "error": why.error})
                result.rejected_indexes.append(raw.index)
                self.metrics.rejected.labels(protocol, why.reason).inc()
            if dead_letter:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.deadletter.add, letters)
                except OSError as exc:
                    # The accepted records stand (a retry would duplicate them): say the letters are lost.
                    self.metrics.deadletter_failures.labels(protocol).inc(len(letters))
                    log.error("%d rejected %s records from %s not dead-lettered: %s", len(letters), protocol,
                              source, exc)
                    result.errors.append({
                        "index": None,
                        "field": "",
                        "error": f"the {len(letters)} rejected records of this request could not be kept in "
                                 f"the dead-letter store: {exc}",
                    })
        if durable is not None:
            await durable
            self.metrics.accepted.labels(protocol).inc(batch.accepted)
        return result

    def _low_disk(self) -> str | None:
        """Why new records are refused for want of disk space, if they are."""
        if self.min_free_disk_bytes <= 0:
            return None
        now = time.monotonic()
        if now - self._free_checked >= FREE_SPACE_CHECK_SECONDS:
            try:
                stats = os.statvfs(self.paths.wal)
                self._free_bytes = stats.f_bavail * stats.f_frsize
            except OSError:
                self._free_bytes = None
            self._free_checked = now
        free = self._free_bytes
        if free is None or free >= self.min_free_disk_bytes:
            return None
        return (
            f"only {max(free, 0)} bytes free on the data disk ({self.paths.wal}), under the low-water mark "
            f"of {self.min_free_disk_bytes} bytes (min_free_disk_bytes): nothing was kept, retry later"
        )

    @property
    def failure(self) -> str | None:
        """Why the collector cannot make records durable now, if it cannot (a write-ahead failure in the
        last moment, or free disk space under ``min_free_disk_bytes``)."""
        return self.wal.failed or self._low_disk()
