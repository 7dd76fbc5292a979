"""Validated rows into spool batches: in file order, a batch rolled by size and (paced) age."""
from __future__ import annotations

import secrets
import time

import numpy as np
import pyarrow as pa

from logwarden.collector.ingest import BatchPart, assemble_batch
from logwarden.collector.spool import Spool
from logwarden.common.paths import DataDir
from logwarden.replay.pacing import Pacer

BATCH_RECORDS = 50_000
BATCH_SECONDS = 1.0


class SpoolBatcher:
    """Accumulates tables of rows (declared columns and ``attributes``) and writes spool batches."""

    def __init__(self, paths: DataDir, tenant: str, speed: float | None,
                 batch_records: int = BATCH_RECORDS, batch_seconds: float = BATCH_SECONDS) -> None:
        self.spool = Spool(paths.spool)
        self.tenant = tenant
        self.pacer = Pacer(speed) if speed is not None else None
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.instance = f"replay{secrets.token_hex(2)}"
        self.sequence = 0
        self.parts: list[BatchPart] = []
        self.rows = 0
        self.opened_at = time.monotonic()
        self.batches = 0

    def _batch_id(self) -> str:
        self.sequence += 1
        return f"{int(time.time() * 1000):013d}-{self.instance}-{self.sequence:06d}"

    def add(self, table: pa.Table, source: str) -> None:
        """Queue ``table``'s rows (from ``source``), waiting for each to be due at the replay speed."""
        if not table.num_rows:
            return
        if self.pacer is None:
            self._append(table, source)
            return
        due = self.pacer.due(table.column("timestamp"))
        start = 0
        while start < table.num_rows:
            now = time.monotonic()
            end = int(np.searchsorted(due, now, side="right"))
            if end > start:
                self._append(table.slice(start, end - start), source)
                start = end
                continue
            self.flush()  # the open batch goes out before the pause, so the stream stays timely
            time.sleep(max(float(due[start]) - now, 0.0))

    def _append(self, table: pa.Table, source: str) -> None:
        received = int(time.time() * 1_000_000)
        while table.num_rows:
            room = self.batch_records - self.rows
            piece, table = table.slice(0, room), table.slice(room)
            self.parts.append(BatchPart(piece, self.tenant, source, received))
            self.rows += piece.num_rows
            if self.rows >= self.batch_records:
                self.flush()
        if self.pacer is not None and time.monotonic() - self.opened_at >= self.batch_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the open batch to the spool."""
        if self.parts:
            batch_id = self._batch_id()
            self.spool.write_table(batch_id, assemble_batch(batch_id, self.parts))
            self.batches += 1
        self.parts, self.rows = [], 0
        self.opened_at = time.monotonic()
