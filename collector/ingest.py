"""The ingestion core shared by every protocol: validate, dead-letter, write ahead, acknowledge, spool."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import orjson

from collector.deadletter import DeadLetter, DeadLetterStore
from collector.decoding import RawRecord
from collector.metrics import CollectorMetrics
from collector.spool import Spool
from collector.validation import RecordValidator
from collector.wal import WriteAheadLog, read_segment
from logwarden.common.paths import DataDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPolicy:
    """When the open batch rolls over into a spool file."""

    max_records: int = 50_000
    max_age: float = 1.0


@dataclass
class IngestResult:
    """What happened to one request's records."""

    accepted: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The HTTP answer body."""
        return {"accepted": self.accepted, "rejected": self.rejected, "errors": self.errors}


class Ingestor:
    """Turns decoded records into acknowledged, durable rows and rolls them into spool batches."""

    def __init__(self, paths: DataDir, validator: RecordValidator, policy: BatchPolicy,
                 metrics: CollectorMetrics, is_committed: Callable[[str], bool]) -> None:
        self.paths = paths
        self.validator = validator
        self.policy = policy
        self.metrics = metrics
        self.spool = Spool(paths.spool)
        self.deadletter = DeadLetterStore(paths.deadletter)
        self._is_committed = is_committed
        self._instance = secrets.token_hex(3)
        self._sequence = 0
        self._rows: dict[str, list[dict]] = {}
        self._opened_at = 0.0
        self.wal = WriteAheadLog(paths.wal, self._on_segment_closed)
        self._spool_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-writer")
        self._pending_spool: set[asyncio.Future] = set()
        self._roller: asyncio.Task | None = None

    def _new_batch_id(self) -> str:
        self._sequence += 1
        return f"{int(time.time() * 1000):013d}-{self._instance}-{self._sequence:06d}"

    def recover(self) -> int:
        """Turn write-ahead segments left by a previous run into spool batches, once; returns how many."""
        recovered = 0
        for segment_id in self.wal.existing_segments():
            path = self.wal.path_of(segment_id)
            if not self.spool.has(segment_id) and not self._is_committed(segment_id):
                rows = list(read_segment(path))
                if rows:
                    self.spool.write(segment_id, rows)
                    recovered += 1
                    log.info("recovered batch %s (%d records) from the write-ahead log", segment_id, len(rows))
            path.unlink(missing_ok=True)
        return recovered

    async def start(self) -> None:
        """Recover, then open the first segment and start the roll-over timer."""
        self.recover()
        self.wal.start()
        self._open_segment()
        self._roller = asyncio.get_running_loop().create_task(self._roll_on_age(), name="batch-roller")

    def _open_segment(self) -> None:
        batch_id = self._new_batch_id()
        self._rows[batch_id] = []
        self._opened_at = time.monotonic()
        self.wal.open_segment(batch_id)

    def rotate(self) -> None:
        """Close the open batch (if it holds anything) and open a new one."""
        if self._rows.get(self.wal.segment_id):
            self._open_segment()

    async def _roll_on_age(self) -> None:
        while True:
            await asyncio.sleep(min(0.1, self.policy.max_age / 4))
            self.metrics.spool_depth.set(self.spool.depth())
            if time.monotonic() - self._opened_at >= self.policy.max_age:
                self.rotate()

    def _on_segment_closed(self, segment_id: str) -> None:
        rows = self._rows.pop(segment_id, [])
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._spool_executor, self._spool_segment, segment_id, rows)
        self._pending_spool.add(future)
        future.add_done_callback(self._pending_spool.discard)

    def _spool_segment(self, segment_id: str, rows: list[dict]) -> None:
        if rows:
            self.spool.write(segment_id, rows)
            self.metrics.batches.inc()
        self.wal.path_of(segment_id).unlink(missing_ok=True)

    async def ingest(self, records: list[RawRecord], protocol: str, source: str, tenant: str) -> IngestResult:
        """Validate ``records``; make the valid ones durable before returning; dead-letter the rest."""
        result = IngestResult()
        letters: list[DeadLetter] = []
        lines: list[bytes] = []
        segment_id = self.wal.segment_id
        rows = self._rows[segment_id]
        received_us = int(time.time() * 1_000_000)
        for record in records:
            problem = self._problem(record)
            if problem is not None:
                field_name, error, reason = problem
                letters.append(DeadLetter(record.raw, reason, error, field_name, source, tenant, record.index))
                result.errors.append({"index": record.index, "field": field_name, "error": error})
                self.metrics.rejected.labels(protocol, reason).inc()
                continue
            row = self.validator.normalize(record.value, f"{segment_id}-{len(rows):06d}", tenant, source,
                                           received_us)
            rows.append(row)
            lines.append(orjson.dumps(row) + b"\n")
        result.accepted, result.rejected = len(lines), len(letters)
        # Append before any await, so the rows and their lines land in the same segment.
        durable = self.wal.append(b"".join(lines)) if lines else None
        if len(rows) >= self.policy.max_records:
            self.rotate()
        if letters:
            await asyncio.get_running_loop().run_in_executor(None, self.deadletter.add, letters)
        if durable is not None:
            await durable
            self.metrics.accepted.labels(protocol).inc(len(lines))
        return result

    def _problem(self, record: RawRecord) -> tuple[str, str, str] | None:
        if record.error is not None:
            return "", record.error, "malformed"
        rejection = self.validator.check(record.value)
        if rejection is None:
            return None
        return rejection.field, rejection.error, rejection.reason

    async def stop(self) -> None:
        """Flush the open batch to the spool and stop."""
        if self._roller:
            self._roller.cancel()
        self.rotate()
        await self.wal.close()
        if self._pending_spool:
            await asyncio.gather(*self._pending_spool)
        self._spool_executor.shutdown(wait=True)
