"""``logwarden replay``: push existing log files through the pipeline.

Records of any supported format are parsed, validated against the log schema (with no clock-skew
limit: the point is old data), and written as spool batches, paced by ``--speed``. The running
stack on the same data dir processes them; when none runs, replay runs the pipeline itself
(Dask, Ray detectors, alerting; no collector) until the spool drains.
"""
from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from logwarden.collector.deadletter import DeadLetter, DeadLetterStore
from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.processing.sources import SourceRecord, expand_paths, file_records

BATCH_RECORDS = 50_000
BATCH_SECONDS = 1.0


def parse_speed(text: str) -> float | None:
    """``max`` -> None (no pacing); ``realtime`` -> 1.0; ``10x`` -> 10.0."""
    text = text.strip().lower()
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    if text.endswith("x"):
        factor = float(text[:-1])
        if factor > 0:
            return factor
    raise ValueError(f"--speed takes max, realtime or Nx (e.g. 10x), not {text!r}")


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

    def to_dict(self) -> dict:
        """Plain data for printing as JSON."""
        rate = self.records / self.seconds if self.seconds else 0.0
        return {"files": self.files, "records": self.records, "accepted": self.accepted,
                "rejected": self.rejected, "rejected_by_reason": dict(self.rejected_by_reason),
                "formats": dict(self.formats), "batches": self.batches, "seconds": round(self.seconds, 2),
                "records_per_second": round(rate)}


class SpoolWriterPacer:
    """Accumulates rows into spool batches, rolling by size and (paced) age."""

    def __init__(self, paths: DataDir, speed: float | None) -> None:
        self.spool = Spool(paths.spool)
        self.deadletter = DeadLetterStore(paths.deadletter)
        self.validator = RecordValidator(skew=SkewLimits(max_future=1e12, max_past=1e12))
        self.speed = speed
        self.instance = f"replay{secrets.token_hex(2)}"
        self.sequence = 0
        self.rows: list[dict] = []
        self.batch_id = self._new_batch_id()
        self.started_wall: float | None = None
        self.first_event: float | None = None
        self.opened_at = time.monotonic()

    def _new_batch_id(self) -> str:
        self.sequence += 1
        return f"{int(time.time() * 1000):013d}-{self.instance}-{self.sequence:06d}"

    def add(self, item: SourceRecord, summary: ReplaySummary) -> None:
        """Validate one record into the open batch (or the dead-letter store); pace and roll."""
        summary.records += 1
        summary.formats[item.format] += 1
        rejection = self.validator.check(item.record)
        if rejection is not None:
            summary.rejected += 1
            summary.rejected_by_reason[rejection.reason] += 1
            self.deadletter.add([DeadLetter(item.raw, rejection.reason, rejection.error, rejection.field,
                                            f"replay:{item.path}", "default", item.number)])
            return
        wait = self._wait_for(item.record["timestamp"])
        if wait > 0:  # the open batch goes out before the pause, so the stream stays timely
            self.flush(summary)
            time.sleep(wait)
        row_id = f"{self.batch_id}-{len(self.rows):06d}"
        self.rows.append(self.validator.normalize(item.record, row_id, "default", f"replay:{item.path.name}",
                                                  int(time.time() * 1_000_000)))
        summary.accepted += 1
        if len(self.rows) >= BATCH_RECORDS or time.monotonic() - self.opened_at >= BATCH_SECONDS:
            self.flush(summary)

    def _wait_for(self, timestamp: str) -> float:
        """Seconds to wait before the record at ``timestamp`` is due at the replay speed."""
        if self.speed is None:
            return 0.0
        event = datetime.fromisoformat(timestamp).timestamp()
        if self.first_event is None:
            self.first_event, self.started_wall = event, time.monotonic()
            return 0.0
        return min(self.started_wall + (event - self.first_event) / self.speed - time.monotonic(), 60.0)

    def flush(self, summary: ReplaySummary) -> None:
        """Write the open batch to the spool."""
        if self.rows:
            self.spool.write(self.batch_id, self.rows)
            summary.batches += 1
        self.rows = []
        self.batch_id = self._new_batch_id()
        self.opened_at = time.monotonic()


def replay_files(paths: list[str], data_dir: Path, format_name: str, speed: float | None,
                 on_progress: Callable[[int, int, ReplaySummary], None] | None = None) -> ReplaySummary:
    """Write every record of ``paths`` into the spool under ``data_dir``; returns the summary."""
    files = expand_paths(paths)
    total_bytes = sum(f.stat().st_size for f in files) or 1
    writer = SpoolWriterPacer(DataDir.at(data_dir).create(), speed)
    summary = ReplaySummary(files=len(files))
    started = time.monotonic()
    done_bytes = 0
    for path in files:
        for item in file_records(path, format_name):
            writer.add(item, summary)
            done_bytes += len(item.raw) + 1
            if on_progress and summary.records % 1000 == 0:
                on_progress(min(done_bytes, total_bytes), total_bytes, summary)
        done_bytes = sum(f.stat().st_size for f in files[: files.index(path) + 1])
    writer.flush(summary)
    summary.seconds = time.monotonic() - started
    if on_progress:
        on_progress(total_bytes, total_bytes, summary)
    return summary
