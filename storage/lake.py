"""The Parquet lake: records partitioned by date and service (hive style), committed atomically per batch.

Every batch is written under deterministic file names derived from its batch id. A commit first
writes every file of the batch under a hidden staging name (which no reader lists); only when all
of them are written are they renamed into place, and the commit marker is written last. A commit
that fails part-way removes what it staged, so readers never see part of a batch that failed. (Only
a crash in the middle of the renames can leave part of a batch visible without its marker, until
the batch, still in the spool, is committed again on restart.) A retried batch rewrites the same
names, so the lake never holds a second copy. Every row carries its batch id (``batch_id``), so a
batch stays identifiable after compaction has merged its files (``storage.compaction``): committing
such a batch again first takes its rows out of the merged files.

A ``service=`` folder name is bounded whatever the service: the URL-quoted service when that is at
most ``MAX_PARTITION_VALUE`` bytes, else a quoted prefix, ``+`` and a hash of the whole value
(:func:`service_partition`, the one mapping writers and readers share). The exact service is a
column of every file, which is what queries read; the folder only prunes. Services that share a
folder (a hash collision) share its files, so no mapping can make two partitions overwrite each other.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
import datetime as dt
import hashlib
import logging
import os
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from logwarden.common.atomic import fsync_path, write_bytes_atomic, write_parquet_atomic
from logwarden.storage import journal

log = logging.getLogger(__name__)

PARTITION_SAFE = "-._~"
BATCH_COLUMN = "batch_id"
COMPACTED_PREFIX = "compacted-"
# Columns that repeat within a batch are dictionary-encoded; unique ones (ids, times, attributes) are not,
# which writes a batch about 15% faster and smaller (bench/processing.py).
DICTIONARY_COLUMNS = frozenset({"level", "service", "message", "template_id", "template", "team", "tier",
                                "environment", "host", "tenant", "source", "error_code", "user_id", BATCH_COLUMN})
DATE_PREFIX = "date="
SERVICE_PREFIX = "service="
UNKNOWN_SERVICE = "_unknown"
# A folder value stays under this many bytes (file systems allow 255 per name component).
MAX_PARTITION_VALUE = 96
HASH_MARK = "+"  # never produced by the quoting: marks a bounded name (readable prefix + hash)
HASH_LENGTH = 16
STAGED_SUFFIX = ".staged"  # hidden ".<batch>.parquet.staged": written, not yet part of the lake


@dataclass(frozen=True)
class CommitInfo:
    """What one batch commit wrote."""

    batch_id: str
    records: int
    files: tuple[str, ...]


def partition_value(value: str | None) -> str:
    """A partition folder value of at most ``MAX_PARTITION_VALUE`` bytes: the URL-quoted value when it
    fits; else the quoted value cut at a character boundary, ``+`` and 16 hex digits of its SHA-256.
    Only ``[A-Za-z0-9-._~%+]`` appear, and ``+`` only in a bounded name, so the two forms never meet."""
    value = value or UNKNOWN_SERVICE
    quoted = quote(value, safe=PARTITION_SAFE)
    if len(quoted) <= MAX_PARTITION_VALUE:
        return quoted
    budget = MAX_PARTITION_VALUE - len(HASH_MARK) - HASH_LENGTH
    prefix, size = [], 0
    for char in value:
        piece = quote(char, safe=PARTITION_SAFE)
        if size + len(piece) > budget:
            break
        prefix.append(piece)
        size += len(piece)
    digest = hashlib.sha256(value.encode()).hexdigest()[:HASH_LENGTH]
    return f"{''.join(prefix)}{HASH_MARK}{digest}"


def service_partition(service: str | None) -> str:
    """The ``service=`` folder name of ``service``: where the lake writes its records and where a query
    by service looks for them."""
    return f"{SERVICE_PREFIX}{partition_value(service)}"


def partition_date(folder: Path) -> dt.date | None:
    """The date of a ``date=YYYY-MM-DD`` folder, None for any other name."""
    if not folder.name.startswith(DATE_PREFIX):
        return None
    try:
        return dt.date.fromisoformat(folder.name[len(DATE_PREFIX):])
    except ValueError:
        return None


def partition_service(folder: Path) -> str | None:
    """The service of a ``service=NAME`` folder (URL-decoded), None for any other name. A bounded name
    (a long service) gives its readable prefix and hash: the exact value is in the files."""
    if not folder.name.startswith(SERVICE_PREFIX):
        return None
    return unquote(folder.name[len(SERVICE_PREFIX):])


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of one partition folder that are part of the lake, sorted: temporary files and
    the files a landed compaction replaced are left out."""
    replaced = journal.replaced_names(folder) if (folder / journal.JOURNAL).exists() else frozenset()
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(".") and p.name not in replaced)


def constant_column(value: str, rows: int) -> pa.Array:
    """A string column holding ``value`` ``rows`` times (built from buffers, not Python objects)."""
    data = value.encode()
    offsets = np.arange(rows + 1, dtype=np.int32) * len(data)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data * rows))


class Lake:
    """The lake below one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.logs = self.root / "logs"
        self.aggregates = self.root / "aggregates"
        self.commits = self.root / "_commits"

    def _marker(self, batch_id: str) -> Path:
        return self.commits / f"{batch_id}.json"

    def is_committed(self, batch_id: str) -> bool:
        """Whether batch ``batch_id`` has been committed."""
        return self._marker(batch_id).exists()

    def committed_batches(self) -> list[str]:
        """Ids of every committed batch."""
        return sorted(p.stem for p in self.commits.glob("*.json"))

    def commit_batch(self, batch_id: str, records: pa.Table, aggregates: pa.Table | None = None) -> CommitInfo:
        """Write a batch's records (and aggregates) into their partitions, then mark it committed. A batch
        committed before (a retry, a backfill) replaces its earlier rows, also inside compacted files."""
        if self.is_committed(batch_id):
            with journal.lake_lock(self.root, wait=True):  # not while compaction merges files
                earlier = self.marker_files(batch_id)
                self._take_out_compacted(batch_id)
                info = self._commit(batch_id, records, aggregates)
                for name in set(earlier) - set(info.files):  # partitions the batch no longer touches
                    (self.root / name).unlink(missing_ok=True)
                return info
        return self._commit(batch_id, records, aggregates)

    def _commit(self, batch_id: str, records: pa.Table, aggregates: pa.Table | None) -> CommitInfo:
        staged = self._stage_all(batch_id, records, aggregates)
        # Every file is written: the batch appears in one step (renames in place, then the marker).
        files = []
        for path in staged:
            final = path.parent / f"{batch_id}.parquet"
            os.replace(path, final)
            files.append(str(final.relative_to(self.root)))
        for folder in dict.fromkeys(path.parent for path in staged):
            fsync_path(folder)
        info = CommitInfo(batch_id, records.num_rows, tuple(files))
        self.commits.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(orjson.dumps({"batch_id": batch_id, "records": info.records, "files": files}),
                           self._marker(batch_id))
        return info

    def _stage_all(self, batch_id: str, records: pa.Table, aggregates: pa.Table | None) -> list[Path]:
        """Write every file of a batch under its hidden staging name; on any failure remove what was
        staged and re-raise (nothing of the batch becomes visible)."""
        parts = [(self.logs / f"{DATE_PREFIX}{date}" / folder, part) for date, folder, part in _partitions(records)]
        if aggregates is not None and aggregates.num_rows:
            parts += [(self.aggregates / f"{DATE_PREFIX}{date}", part) for date, part in _by_date(aggregates, "bucket")]
        staged: list[Path] = []
        try:
            for folder, part in parts:
                staged.append(self._stage(folder, batch_id, part))
        except BaseException:
            for path in staged:
                path.unlink(missing_ok=True)
            raise
        return staged

    def check_writable(self, batch_id: str, records: pa.Table, aggregates: pa.Table | None = None) -> None:
        """Raise what committing ``records`` (and ``aggregates``) would raise, without committing
        anything: every file is staged, then removed. Used to find the records a commit fails on."""
        for path in self._stage_all(batch_id, records, aggregates):
            path.unlink(missing_ok=True)

    def _stage(self, folder: Path, batch_id: str, part: pa.Table) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".{batch_id}.parquet{STAGED_SUFFIX}"
        table = part.append_column(BATCH_COLUMN, constant_column(batch_id, part.num_rows))
        try:
            pq.write_table(table, path, compression="zstd",
                           use_dictionary=[n for n in table.column_names if n in DICTIONARY_COLUMNS])
            fsync_path(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def marker_files(self, batch_id: str) -> list[str]:
        """The files (relative to the root) the commit of ``batch_id`` wrote; [] when it is not committed."""
        try:
            return list(orjson.loads(self._marker(batch_id).read_bytes())["files"])
        except FileNotFoundError:
            return []

    def _take_out_compacted(self, batch_id: str) -> None:
        """Remove the rows of ``batch_id`` from the compacted files of the folders where its own files
        were merged away."""
        for name in self.marker_files(batch_id):
            path = self.root / name
            if path not in parquet_files(path.parent):
                remove_batch_rows(path.parent, batch_id)

    def logs_glob(self) -> str:
        """The glob DuckDB reads the records from."""
        return str(self.logs / "**" / "*.parquet")

    def aggregates_glob(self) -> str:
        """The glob DuckDB reads the aggregates from."""
        return str(self.aggregates / "**" / "*.parquet")

    # partition pruning ---------------------------------------------------------------------
    def date_folders(self, top: Path, first: dt.date | None = None,
                     last: dt.date | None = None) -> Iterator[tuple[dt.date, Path]]:
        """``(date, folder)`` of every ``date=`` folder below ``top`` within [first, last], oldest first."""
        if not top.is_dir():
            return
        dated = sorted((d, f) for f in top.iterdir() if f.is_dir() and (d := partition_date(f)) is not None)
        for day, folder in dated:
            if (first is None or day >= first) and (last is None or day <= last):
                yield day, folder

    def service_folders(self, first: dt.date | None = None, last: dt.date | None = None,
                        services: Collection[str] | None = None) -> Iterator[tuple[dt.date, str, Path]]:
        """``(date, service, folder)`` of the record partitions within the dates and services asked for."""
        for day, folder in self.date_folders(self.logs, first, last):
            if services is not None:
                seen: set[str] = set()
                for service in sorted(set(services)):
                    name = service_partition(service)
                    candidate = folder / name
                    if name not in seen and candidate.is_dir():
                        seen.add(name)  # services sharing a folder: its files once
                        yield day, service, candidate
                continue
            for sub in sorted(folder.iterdir()):
                service = partition_service(sub)
                if service is not None and sub.is_dir():
                    yield day, service, sub

    def log_files(self, first: dt.date | None = None, last: dt.date | None = None,
                  services: Collection[str] | None = None) -> list[Path]:
        """Record files of the partitions within [first, last] and ``services`` (None: all)."""
        return [f for _, _, folder in self.service_folders(first, last, services) for f in parquet_files(folder)]

    def aggregate_files(self, first: dt.date | None = None, last: dt.date | None = None) -> list[Path]:
        """Aggregate files of the dates within [first, last]."""
        return [f for _, folder in self.date_folders(self.aggregates, first, last) for f in parquet_files(folder)]


US_PER_DAY = 86_400_000_000
EPOCH = dt.date(1970, 1, 1)


def remove_batch_rows(folder: Path, batch_id: str) -> None:
    """Rewrite the compacted files of ``folder`` that hold rows of ``batch_id`` without them (each through
    the compaction journal, so readers never see a row twice)."""
    journal.settle(folder)
    for path in parquet_files(folder):
        if not path.name.startswith(COMPACTED_PREFIX):
            continue
        ids = pq.read_table(path, columns=[BATCH_COLUMN])[BATCH_COLUMN] \
            if BATCH_COLUMN in pq.read_schema(path).names else None
        if ids is None or not pc.any(pc.equal(ids, batch_id)).as_py():
            continue
        table = pq.read_table(path)
        kept = table.filter(pc.invert(pc.fill_null(pc.equal(table[BATCH_COLUMN], batch_id), False)))
        if kept.num_rows == 0:
            path.unlink()
            continue
        digest = hashlib.sha256(f"{path.name}\n-{batch_id}".encode()).hexdigest()[:20]
        target = folder / f"{COMPACTED_PREFIX}{digest}.parquet"
        journal.write_journal(folder, target.name, [path.name])
        write_parquet_atomic(kept, target)
        journal.finish(folder, {"target": target.name, "sources": [path.name]})
        log.info("took batch %s out of %s (%d rows left)", batch_id, path, kept.num_rows)


def _days(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Days since the epoch (UTC) of a timestamp column."""
    if column.null_count:
        raise ValueError("a record without a timestamp cannot be placed in a date partition")
    micros = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
    return micros.to_numpy() // US_PER_DAY


def _date_string(day: int) -> str:
    return (EPOCH + dt.timedelta(days=int(day))).isoformat()


def _groups(table: pa.Table, keys: np.ndarray):
    """(key, rows) per distinct key, rows in their original order: one take and zero-copy slices."""
    if len(keys) == 0:
        return
    if (keys == keys[0]).all():
        yield int(keys[0]), table
        return
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    bounds = [0, *(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1).tolist(), len(keys)]
    taken = table.take(pa.array(order))
    for start, end in zip(bounds[:-1], bounds[1:]):
        yield int(ordered[start]), taken.slice(start, end - start)


def _by_date(table: pa.Table, column: str):
    for day, part in _groups(table, _days(table[column])):
        yield _date_string(day), part


def _partitions(records: pa.Table):
    """(date, service folder name, rows) for every partition the batch touches: the rows of services
    that map to one folder go into one file."""
    if records.num_rows == 0:
        return
    services = pc.dictionary_encode(records["service"].combine_chunks(), null_encoding="encode")
    folders = [service_partition(name) for name in services.dictionary.to_pylist()]
    names = sorted(set(folders))
    index = {name: number for number, name in enumerate(names)}
    folder_of = np.array([index[name] for name in folders], dtype=np.int64)
    codes = folder_of[services.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
    for key, part in _groups(records, _days(records["timestamp"]) * len(names) + codes):
        day, folder = divmod(key, len(names))
        yield _date_string(day), names[folder], part
