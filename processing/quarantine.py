"""The quarantine of the spool: batches processing gave up on, each with the reason beside it.

A batch lands in ``spool/failed/`` when its Parquet file cannot be read (at once: retrying cannot
help) or when it failed every attempt (``pipeline.MAX_ATTEMPTS``; a batch lost to an outage of the Dask
scheduler or of a worker, or to a full disk, is not charged an attempt: ``counts_as_attempt``). Beside ``<batch>.parquet`` lies
``<batch>.reason.json``: the kind (``unreadable`` or ``failed``), the reason, the last error, the
attempts, the time, the size and the record count. ``retry`` moves a batch back into the spool,
where a running stack picks it up, and keeps its reason as ``<batch>.retried.json`` until the batch
goes through (then the self-alert it raised is resolved).
"""
from __future__ import annotations

import errno
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from logwarden.collector.spool import SPOOL_SUFFIX
from logwarden.common.atomic import fsync_path, write_bytes_atomic

FAILED_DIR = "failed"
REASON_SUFFIX = ".reason.json"
RETRIED_SUFFIX = ".retried.json"
UNREADABLE = "unreadable"
FAILED = "failed"
FIRING = "firing"
RESOLVED = "resolved"
#: States of a batch's Dask future that say nothing about the batch: the client lost the scheduler (it
#: cancels every future it held) or a worker holding a result went away. Such a batch goes back to the
#: spool and is submitted again without an attempt counted against it.
OUTAGE_STATES = frozenset({"cancelled", "lost"})
#: Errors of a batch's task that are the environment's, not the batch's: a full data disk.
OUTAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass
class QuarantinedBatch:
    """One batch in quarantine (or, with ``status`` resolved, one that went through after a retry)."""

    batch_id: str
    kind: str
    reason: str
    error: str = ""
    attempts: int = 0
    time: float = field(default_factory=time.time)
    size: int = 0
    records: int | None = None
    path: str = ""
    status: str = FIRING

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the reason file's content)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuarantinedBatch":
        """The inverse of ``to_dict`` (unknown keys ignored)."""
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in known})


def counts_as_attempt(status: str, error: BaseException | None = None) -> bool:
    """Whether a batch whose task ended in ``status`` (with ``error``) used up one of its attempts
    (``pipeline.MAX_ATTEMPTS``): only an error of the batch's own task does; an outage of the cluster
    (``OUTAGE_STATES``) or a full disk (``OUTAGE_ERRNOS``) does not."""
    if status in OUTAGE_STATES:
        return False
    return not (isinstance(error, OSError) and error.errno in OUTAGE_ERRNOS)


def record_count(path: Path) -> int | None:
    """Rows of a Parquet file from its footer; None when the file cannot be read."""
    try:
        return pq.read_metadata(path).num_rows
    except Exception:  # noqa: BLE001 - any unreadable file
        return None


def first_records(path: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` records of a batch (raises when it cannot be read)."""
    parquet = pq.ParquetFile(path)
    rows: list[dict[str, Any]] = []
    for batch in parquet.iter_batches(batch_size=max(1, limit)):
        rows.extend(batch.to_pylist())
        if len(rows) >= limit:
            break
    return rows[:limit]


class Quarantine:
    """``<spool>/failed``: quarantined batches and their reasons."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = Path(spool_dir)
        self.folder = self.spool_dir / FAILED_DIR

    def _reason_path(self, batch_id: str, suffix: str = REASON_SUFFIX) -> Path:
        return self.folder / f"{batch_id}{suffix}"

    def add(self, path: Path, kind: str, reason: str, error: str = "", attempts: int = 0) -> QuarantinedBatch:
        """Move spool batch ``path`` into quarantine, its reason written first (a listed batch always
        has one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        batch_id = path.name[:-len(SPOOL_SUFFIX)] if path.name.endswith(SPOOL_SUFFIX) else path.stem
        target = self.folder / path.name
        entry = QuarantinedBatch(batch_id, kind, reason, error[:4000], attempts, time.time(), path.stat().st_size,
                                 record_count(path), str(target))
        write_bytes_atomic(orjson.dumps(entry.to_dict(), option=orjson.OPT_INDENT_2), self._reason_path(batch_id))
        self._reason_path(batch_id, RETRIED_SUFFIX).unlink(missing_ok=True)
        os.replace(path, target)
        fsync_path(self.folder)
        fsync_path(path.parent)
        return entry

    def _read(self, path: Path) -> QuarantinedBatch:
        batch_id = path.name[:-len(SPOOL_SUFFIX)]
        try:
            entry = QuarantinedBatch.from_dict(orjson.loads(self._reason_path(batch_id).read_bytes()))
        except (OSError, ValueError, TypeError):
            stat = path.stat()
            entry = QuarantinedBatch(batch_id, FAILED, "reason unknown (no readable reason file)",
                                     time=stat.st_mtime, size=stat.st_size, records=record_count(path))
        entry.path = str(path)
        return entry

    def batches(self) -> list[QuarantinedBatch]:
        """Every quarantined batch, oldest quarantine first."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob(f"*{SPOOL_SUFFIX}"):
            if path.name.startswith("."):
                continue
            try:
                found.append(self._read(path))
            except FileNotFoundError:  # retried meanwhile
                continue
        return sorted(found, key=lambda entry: (entry.time, entry.batch_id))

    def count(self) -> int:
        """How many batches are in quarantine."""
        if not self.folder.is_dir():
            return 0
        with os.scandir(self.folder) as entries:
            return sum(1 for e in entries if e.name.endswith(SPOOL_SUFFIX) and not e.name.startswith("."))

    def get(self, ref: str) -> QuarantinedBatch | None:
        """The batch with id ``ref``, or the only one whose id starts with ``ref``."""
        exact = self.folder / f"{ref}{SPOOL_SUFFIX}"
        if ref and exact.exists():
            return self._read(exact)
        matches = [entry for entry in self.batches() if ref and entry.batch_id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def retry(self, batch_id: str) -> Path:
        """Move a quarantined batch back into the spool; its reason is kept as ``<batch>.retried.json``
        until the batch goes through. Returns its spool path."""
        source = self.folder / f"{batch_id}{SPOOL_SUFFIX}"
        target = self.spool_dir / source.name
        if target.exists():
            raise FileExistsError(f"batch {batch_id} is in the spool already")
        reason = self._reason_path(batch_id)
        if reason.exists():
            os.replace(reason, self._reason_path(batch_id, RETRIED_SUFFIX))
        os.replace(source, target)
        fsync_path(self.spool_dir)
        fsync_path(self.folder)
        return target

    def take_retried(self, batch_id: str) -> QuarantinedBatch | None:
        """The quarantine entry of a retried batch that has now gone through (removed), or None."""
        path = self._reason_path(batch_id, RETRIED_SUFFIX)
        if not self.folder.is_dir() or not path.exists():
            return None
        try:
            entry = QuarantinedBatch.from_dict(orjson.loads(path.read_bytes()))
        except (OSError, ValueError, TypeError):
            entry = QuarantinedBatch(batch_id, FAILED, "reason unknown")
        path.unlink(missing_ok=True)
        entry.status = RESOLVED
        return entry
