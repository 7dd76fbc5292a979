"""Files → chunks → parsed on workers → spool batches in file order (see the package docstring)."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from logwarden.collector.deadletter import DEFAULT_MAX_BYTES, DeadLetter, DeadLetterStore
from logwarden.collector.validation import RecordLimits
from logwarden.common.paths import DataDir
from logwarden.common.records import load_log_schema
from logwarden.processing.chunk_records import ChunkOptions, ParsedChunk, fill_untimed
from logwarden.processing.chunks import CHUNK_BYTES, Chunk, FileKind, read_chunks, sniff_kind
from logwarden.processing.sources import expand_paths
from logwarden.replay.batches import SpoolBatcher
from logwarden.replay.runners import ChunkRunner, InlineRunner


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay as: format, pace, tenant, and the collector's limits (from the configuration)."""

    format_name: str = "auto"
    speed: float | None = None  # None: as fast as it goes
    tenant: str = "default"
    max_line_bytes: int = 1 << 20
    limits: RecordLimits = field(default_factory=RecordLimits)
    max_deadletter_bytes: int | None = DEFAULT_MAX_BYTES
    chunk_bytes: int = CHUNK_BYTES


@dataclass
class ReplaySummary:
    """What a replay did."""

    files: int = 0
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    batches: int = 0
    formats: Counter = field(default_factory=Counter)
    rejected_by_reason: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    parsed_on: str = "this process"

    def add(self, parsed: ParsedChunk) -> None:
        """Count one parsed chunk."""
        self.records += parsed.records
        self.accepted += parsed.table.num_rows
        self.rejected += len(parsed.rejected)
        self.formats.update(parsed.formats)
        self.rejected_by_reason.update(letter.reason for letter in parsed.rejected)

    def to_dict(self) -> dict:
        """Plain data for printing as JSON."""
        rate = self.records / self.seconds if self.seconds else 0.0
        return {"files": self.files, "records": self.records, "accepted": self.accepted,
                "rejected": self.rejected, "rejected_by_reason": dict(self.rejected_by_reason),
                "formats": dict(self.formats), "batches": self.batches, "seconds": round(self.seconds, 2),
                "records_per_second": round(rate), "parsed_on": self.parsed_on}


Progress = Callable[[int, int, ReplaySummary], None]


def replay_files(paths: list[str], data_dir: Path, options: ReplayOptions | None = None,
                 on_progress: Progress | None = None, runner: ChunkRunner | None = None) -> ReplaySummary:
    """Write every record of ``paths`` into the spool under ``data_dir``; returns the summary.

    ``runner`` parses the chunks (default: in this process); the replay command passes the Dask
    workers' runner."""
    options = options or ReplayOptions()
    files = expand_paths(paths)
    data = DataDir.at(data_dir).create()
    replay = _Replay(data, options, runner or InlineRunner(), on_progress,
                     total_bytes=sum(path.stat().st_size for path in files) or 1)
    replay.summary.files = len(files)
    replay.summary.parsed_on = replay.runner.where
    started = time.monotonic()
    for path in files:
        replay.file(path)
    replay.batcher.flush()
    replay.summary.batches = replay.batcher.batches
    replay.summary.seconds = time.monotonic() - started
    if on_progress:
        on_progress(replay.total_bytes, replay.total_bytes, replay.summary)
    return replay.summary


class _Replay:
    """The state of one replay: its batcher, dead-letter store and progress."""

    def __init__(self, data: DataDir, options: ReplayOptions, runner: ChunkRunner,
                 on_progress: Progress | None, total_bytes: int) -> None:
        self.options = options
        self.runner = runner
        self.on_progress = on_progress
        self.total_bytes = total_bytes
        self.done_bytes = 0
        self.summary = ReplaySummary()
        self.batcher = SpoolBatcher(data, options.tenant, options.speed)
        self.deadletter = DeadLetterStore(data.deadletter, max_bytes=options.max_deadletter_bytes)
        self.required = tuple(load_log_schema().get("required", ()))

    def file(self, path: Path) -> None:
        """Replay one file."""
        kind = sniff_kind(path, self.options.format_name, self.required)
        chunk_options = ChunkOptions(self.options.format_name, path.name.split(".")[0] or "replay",
                                     self.options.max_line_bytes, self.options.limits)
        source = f"replay:{path.name}"
        previous_us = int(path.stat().st_mtime * 1_000_000)
        size, read_bytes = path.stat().st_size, 0
        # JSON takes the collector's columnar path here; line formats, parsed record by record, go to the
        # workers; containers (zip, EVTX, documents) are read whole from the file, here
        runner = self.runner if kind in (FileKind.LINES, FileKind.JSON_LINES) else InlineRunner()
        for parsed in runner.run((chunk, chunk_options) for chunk in self._chunks(path, kind)):
            table = fill_untimed(parsed.table, previous_us)
            previous_us = parsed.last_time_us if parsed.last_time_us is not None else previous_us
            self._dead_letters(parsed, source, path)
            self.summary.add(parsed)
            self.batcher.add(table, source)
            read_bytes += parsed.chunk_bytes
            self._progress(min(read_bytes, size))
        self.done_bytes += size
        self._progress(0)

    def _chunks(self, path: Path, kind: FileKind) -> Iterator[Chunk]:
        return read_chunks(path, kind, self.options.chunk_bytes)

    def _dead_letters(self, parsed: ParsedChunk, source: str, path: Path) -> None:
        if parsed.rejected:
            self.deadletter.add([
                DeadLetter(letter.raw, letter.reason, letter.error, letter.field, f"replay:{path}",
                           self.options.tenant, letter.number)
                for letter in parsed.rejected])

    def _progress(self, in_file: int) -> None:
        if self.on_progress:
            self.on_progress(min(self.done_bytes + in_file, self.total_bytes), self.total_bytes, self.summary)

