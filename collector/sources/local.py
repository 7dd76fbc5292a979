"""The file sources of a collector process: records written ahead through its ingestor, exactly once.

One task on the collector's event loop runs rounds: scan (every second, or when inotify reports a
file created, moved or deleted), read and parse in worker threads (``Tailer.poll``, then one
:class:`~logwarden.collector.batch.DecodedBatch` per file: the columnar fast path for whole blocks of
native JSON lines, ``BatchDecoder.mapped`` for parsed ones), then for each file: journal an intent
(``CheckpointStore.intent``), ``Ingestor.submit`` (write-ahead, fsync; rejected records and the cut
parts of overlong lines to the dead-letter store), and once it returns, the ack that advances the
file's checkpoint. The files of one round go to the write-ahead log together, so one fsync covers
them (group commit).

Constructed before the ingestor recovers its write-ahead log (``CollectorServer.__init__``), it
resolves the intents a crash left unacknowledged against the segments still on disk
(:func:`resolve_intents`), so that a ``kill -9`` between the write-ahead log's fsync and the ack
neither repeats nor loses a line.
"""
from __future__ import annotations

import asyncio
import logging
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pyarrow as pa

from logwarden.collector.batch import DecodedBatch
from logwarden.collector.decoding import RawRecord
from logwarden.collector.ingest import Ingestor
from logwarden.collector.sources.checkpoint import CheckpointStore
from logwarden.collector.sources.config import SourcesConfig
from logwarden.collector.sources.framing import Block, Dead, Entry
from logwarden.collector.sources.records import json_line
from logwarden.collector.sources.tailer import Chunk, Tailer
from logwarden.collector.sources.watch import Watcher
from logwarden.collector.validation import Rejection
from logwarden.collector.wal import SEGMENT_SUFFIX, is_legacy_segment, read_entries
from logwarden.common.paths import DataDir

log = logging.getLogger(__name__)

PROTOCOL = "file"
CHECKPOINT_FOLDER = "sources"
IDLE_SECONDS = 0.2
DECODE_THREADS = 2
RETRY_SECONDS = 1.0


def resolve_intents(store: CheckpointStore, wal_dir: Path, spool_has: Callable[[str], bool],
                    is_committed: Callable[[str], bool]) -> tuple[int, int]:
    """Settle the intents left without ack: durable (the ack applies) when the write-ahead log holds their
    entry (source, payload CRC-32 and length), or when their segment is gone to the spool or the lake;
    otherwise cancelled (their lines are read again). Returns (durable, cancelled)."""
    pending = store.unresolved()
    if not pending:
        return 0, 0
    segments = {path.name[: -len(SEGMENT_SUFFIX)]: path for path in Path(wal_dir).glob(f"*{SEGMENT_SUFFIX}")}
    written: set[tuple[str, int, int]] = set()
    for path in segments.values():
        if is_legacy_segment(path):
            continue
        for entry in read_entries(path):
            if entry.header.get("protocol") == PROTOCOL:
                written.add((entry.header.get("source"), zlib.crc32(entry.payload), len(entry.payload)))
    durable = cancelled = 0
    for intent in pending:
        segment = intent.get("segment")
        if (intent["source"], intent["crc"], intent["length"]) in written:
            done = True
        elif segment in segments or not segment:
            done = False
        else:  # its segment went on: to the spool, or through it to the lake
            done = spool_has(segment) or is_committed(segment)
        if done:
            store.ack(intent["n"])
            durable += 1
        else:
            store.cancel(intent["n"])
            cancelled += 1
    log.info("file sources: %d interrupted writes were durable, %d are read again", durable, cancelled)
    return durable, cancelled


class FileSources:
    """The ``sources:`` of a collector, feeding its ingestor (see the module docstring)."""

    def __init__(self, config: SourcesConfig, ingestor: Ingestor, paths: DataDir, default_tenant: str = "default",
                 spool_high_water: int | None = None) -> None:
        self.config = config
        self.ingestor = ingestor
        self.default_tenant = default_tenant
        self.spool_high_water = spool_high_water
        self.store = CheckpointStore(paths.root / CHECKPOINT_FOLDER)
        if self.store.unresolved():
            from logwarden.storage import Lake

            resolve_intents(self.store, paths.wal, ingestor.spool.has, Lake(paths.lake).is_committed)
        self.tailer = Tailer(config.files, self.store)
        self.watcher = Watcher([pattern for source in config.files for pattern in source.paths], self._wake_up)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-sources")
        self._decoders = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="file-decode")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._scan_now = True
        self._stopping = False
        self._task: asyncio.Task | None = None
        self.records = 0  # records made durable (accepted or dead-lettered), for tests and benchmarks

    @classmethod
    def for_collector(cls, config: SourcesConfig | None, ingestor: Ingestor, paths: DataDir,
                      default_tenant: str = "default", spool_high_water: int | None = None) -> "FileSources | None":
        """The file sources of a collector, or None when the configuration has none."""
        return cls(config, ingestor, paths, default_tenant, spool_high_water) if config else None

    # lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start following (the ingestor must be started)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.watcher.start()
        self._task = self._loop.create_task(self._run(), name="file-sources")

    async def stop(self) -> None:
        """Finish the round under way, then stop (before the ingestor stops)."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        self.watcher.stop()
        self._executor.shutdown(wait=True)
        self._decoders.shutdown(wait=True)
        self.tailer.close()
        self.store.close()

    def _wake_up(self) -> None:  # watchdog's thread
        self._scan_now = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    # rounds -------------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                if self.ingestor.failure or self._spool_full():
                    await self._sleep(RETRY_SECONDS)
                    continue
                scan = self.tailer.scan_due(self._scan_now)
                if scan:
                    self._scan_now = False
                work = await loop.run_in_executor(self._executor, self._prepare, scan)
                if not work:
                    await self._sleep(IDLE_SECONDS)
                    continue
                await asyncio.gather(*(self._ingest(chunk, batch) for chunk, batch in work))
                self.store.maybe_snapshot()
            except Exception:  # noqa: BLE001 - a bad round must not end the sources
                log.exception("file sources: round failed; retrying")
                await self._sleep(RETRY_SECONDS)

    def _spool_full(self) -> bool:
        return self.spool_high_water is not None and self.ingestor.spool_depth > self.spool_high_water

    def _prepare(self, scan: bool) -> list[tuple[Chunk, DecodedBatch | None]]:
        """(worker thread) Scan if due, read, and decode each file's chunk."""
        if scan:
            self.tailer.scan()
            self.watcher.refresh()
        chunks = self.tailer.poll()
        if len(chunks) == 1:
            return [(chunks[0], self._batch(chunks[0]))]
        return list(zip(chunks, self._decoders.map(self._batch, chunks)))  # files decoded side by side

    def _batch(self, chunk: Chunk) -> DecodedBatch | None:
        """The chunk's records checked and normalized (None: no records)."""
        if not chunk.items:
            return None
        decoder = self.ingestor.decoder
        f = chunk.file
        maker = f.maker
        fast = decoder.columnar is not None and f.format == "json" and f.source.multiline is None and maker.plain
        now = decoder.validator.clock()
        parts: list[DecodedBatch] = []
        records: list[RawRecord] = []
        dead: list[tuple[RawRecord, Rejection]] = []
        for item in chunk.items:
            if isinstance(item, Block):
                if fast:
                    table = decoder.columnar.decode(item.data, now, f.source.max_line_bytes)
                    if table is not None:
                        parts.append(DecodedBatch(table, item.data, fast=True))
                        continue
                for line, value in maker.block(item.data, f.format, f.detected, chunk.read_time):
                    records.append(_raw(len(records), line, value))
            elif isinstance(item, Entry):
                value = maker.entry(item, f.format, f.detected, chunk.read_time)
                records.append(_raw(len(records), b"\n".join(item.lines), value))
            elif isinstance(item, Dead):
                dead.append((RawRecord(len(dead), item.raw, error=item.error),
                             Rejection("", item.error, "line_too_long")))
        if records:
            parts.append(decoder.mapped(records))
        if not parts:
            parts.append(decoder.records([]))
        if len(parts) == 1:
            batch = parts[0]
        else:
            batch = DecodedBatch(pa.concat_tables([part.table for part in parts]),
                                 b"".join(part.payload for part in parts),
                                 [item for part in parts for item in part.rejected], fast=all(p.fast for p in parts))
        batch.rejected.extend(dead)
        return batch

    async def _ingest(self, chunk: Chunk, batch: DecodedBatch | None) -> None:
        """Write one file's chunk ahead, then advance its checkpoint; on failure it is read again."""
        if batch is None or (not batch.accepted and not batch.rejected):
            self.tailer.commit(chunk)
            return
        path = chunk.file.path
        tenant = chunk.file.source.tenant or self.default_tenant
        number = None
        if batch.accepted:  # the intent and the append are one synchronous step: no await in between
            number = self.store.intent(chunk.entry, path, self.ingestor.wal.segment_id, batch.payload_crc,
                                       len(batch.payload), batch.accepted)
        try:
            await self.ingestor.submit(batch, PROTOCOL, path, tenant)
        except Exception as exc:  # noqa: BLE001 - e.g. the write-ahead log failed: read it again later
            if number is not None:
                self.store.cancel(number)
            self.tailer.rewind(chunk)
            log.error("%s: records not written ahead (%s); they will be read again", path, exc)
            return
        if number is not None:
            self.store.ack(number)
        self.tailer.commit(chunk, saved=number is not None)
        self.records += batch.accepted + len(batch.rejected)


def _raw(index: int, line: bytes, value: dict) -> RawRecord:
    return RawRecord(index, line, value, line=json_line(value, newline=False))


__all__ = ["CHECKPOINT_FOLDER", "FileSources", "PROTOCOL", "resolve_intents"]
