"""Benchmark lake queries: a one-service, one-hour search with partition pruning against a full scan.

Generates ``--records`` records (default 10 million) across ``--services`` services and ``--days``
days in the real lake layout (``logs/date=D/service=S/<batch>.parquet``, ``--batches`` files per
partition) under a temporary folder in /tmp, runs each query ``--repeat`` times, prints JSON and
deletes the data (unless ``--keep``).

    python bench/query.py [--records 10000000] [--services 40] [--days 25] [--batches 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from logwarden.common.records import LEVELS, record_schema  # noqa: E402
from logwarden.storage import Lake  # noqa: E402
from logwarden.storage.lake import partition_value  # noqa: E402
from logwarden.storage.search import SearchRequest, arrow_table, connect_locked, count, files_for, search  # noqa: E402

DAY0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
MESSAGES = [f"GET /api/v1/resource/{i} completed" for i in range(30)] + [
    f"db query {i} timed out after retries" for i in range(10)] + [f"cache miss for key group {i}" for i in range(10)]
LEVEL_WEIGHTS = np.array([0.05, 0.8, 0.1, 0.04, 0.01])


def generate(root: Path, records: int, services: int, days: int, batches: int, seed: int = 7) -> Lake:
    """Write ``records`` records, evenly over services x days x batches files, vectorized."""
    lake = Lake(root)
    rng = np.random.default_rng(seed)
    per_file = records // (services * days * batches)
    schema = record_schema()
    messages = pa.array(MESSAGES)
    levels = pa.array(LEVELS)
    users = pa.array([f"user-{i}" for i in range(5000)])
    serial = 0
    for day in range(days):
        start_us = int((DAY0 + timedelta(days=day)).timestamp() * 1_000_000)
        date = (DAY0 + timedelta(days=day)).date().isoformat()
        for s in range(services):
            service = f"svc-{s:02d}"
            folder = lake.logs / f"date={date}" / f"service={partition_value(service)}"
            folder.mkdir(parents=True, exist_ok=True)
            for b in range(batches):
                n = per_file
                stamps = np.sort(rng.integers(start_us, start_us + 86_400_000_000, n))
                ids = pc.binary_join_element_wise(f"{service}-{day}-{b}-", pc.cast(pa.array(np.arange(n)), pa.string()),
                                                  "")
                level_idx = rng.choice(len(LEVELS), n, p=LEVEL_WEIGHTS)
                columns = {
                    "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                    "level": levels.take(pa.array(level_idx)),
                    "service": pa.array(np.full(n, service)),
                    "message": messages.take(pa.array(rng.integers(0, len(MESSAGES), n))),
                    "user_id": users.take(pa.array(rng.integers(0, len(users), n))),
                    "request_id": ids,
                    "error_code": pa.nulls(n, pa.string()),
                    "duration_ms": pa.array(rng.gamma(2.0, 40.0, n)),
                    "record_id": ids,
                    "tenant": pa.array(np.full(n, "default")),
                    "source": pa.array(np.full(n, "bench")),
                    "received_at": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                    "attributes": pa.nulls(n, pa.string()),
                }
                table = pa.table(columns).cast(schema)
                pq.write_table(table, folder / f"batch-{serial:06d}.parquet", compression="zstd")
                serial += 1
    return lake


def timed(repeat: int, fn) -> tuple[float, float, object]:
    """Fastest and first wall time of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), times[0], result


def full_scan(lake: Lake, service: str, since: datetime, until: datetime) -> int:
    """The same question without partition pruning: every file of the lake, filtered in DuckDB."""
    con = connect_locked(lake)
    try:
        sql = ("SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false) "
               "WHERE service = ? AND \"timestamp\" >= ? AND \"timestamp\" < ? ORDER BY \"timestamp\" DESC")
        return arrow_table(con, sql, [lake.logs_glob(), service, since, until]).num_rows
    finally:
        con.close()


def full_read(lake: Lake, service: str, since: datetime, until: datetime) -> int:
    """A full scan whose filter DuckDB cannot check against Parquet statistics: every row is read."""
    con = connect_locked(lake)
    try:
        sql = ("SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false) "
               "WHERE lower(service) = ? AND epoch_us(\"timestamp\") >= ? AND epoch_us(\"timestamp\") < ? "
               "ORDER BY \"timestamp\" DESC")
        us = 1_000_000
        return arrow_table(con, sql, [lake.logs_glob(), service, int(since.timestamp() * us),
                                      int(until.timestamp() * us)]).num_rows
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--batches", type=int, default=2, help="files per date/service partition")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated lake (its path is printed)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="logwarden-bench-query-", dir="/tmp"))
    try:
        started = time.perf_counter()
        lake = generate(root / "lake", args.records, args.services, args.days, args.batches)
        generate_s = time.perf_counter() - started
        files = sum(1 for _ in lake.logs.rglob("*.parquet"))
        stored = sum(p.stat().st_size for p in lake.logs.rglob("*.parquet"))
        service = f"svc-{args.services // 2:02d}"
        since = DAY0 + timedelta(days=args.days // 2, hours=12)
        until = since + timedelta(hours=1)
        request = SearchRequest(services=(service,), since=since, until=until, limit=None)

        pruned_s, pruned_first, result = timed(args.repeat, lambda: search(lake, request))
        count_s, _, counted = timed(args.repeat, lambda: count(lake, request))
        scan_s, scan_first, scanned = timed(args.repeat, lambda: full_scan(lake, service, since, until))
        read_s, read_first, read_rows = timed(args.repeat, lambda: full_read(lake, service, since, until))
        day_request = SearchRequest(services=(service,), since=DAY0 + timedelta(days=args.days // 2),
                                    until=DAY0 + timedelta(days=args.days // 2 + 1), levels=("ERROR",), limit=None)
        day_s, _, day_rows = timed(args.repeat, lambda: search(lake, day_request).num_rows)
        report = {
            "benchmark": "lake query: one service, one hour (partition pruning) vs full scan",
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
            "lake": {"records": files * (args.records // (args.services * args.days * args.batches)),
                     "services": args.services, "days": args.days, "files": files, "bytes": stored,
                     "generate_seconds": round(generate_s, 1)},
            "query": {"service": service, "since": since.isoformat(), "until": until.isoformat()},
            "pruned_search": {"seconds": round(pruned_s, 4), "first_run_seconds": round(pruned_first, 4),
                              "rows": result.num_rows, "files_read": len(files_for(lake, request))},
            "pruned_count": {"seconds": round(count_s, 4), "count": counted},
            "pruned_one_day_errors": {"seconds": round(day_s, 4), "rows": day_rows},
            "reference_full_scan": {"seconds": round(scan_s, 4), "first_run_seconds": round(scan_first, 4),
                                    "rows": scanned, "files_read": files,
                                    "note": "every file's footer read; row groups skipped by their statistics"},
            "reference_full_read": {"seconds": round(read_s, 4), "first_run_seconds": round(read_first, 4),
                                    "rows": read_rows, "files_read": files,
                                    "note": "filter DuckDB cannot check against statistics: every row read"},
            "speedup_vs_full_scan": round(scan_s / pruned_s, 1) if pruned_s else None,
            "speedup_vs_full_read": round(read_s / pruned_s, 1) if pruned_s else None,
            "same_answer": result.num_rows == scanned == counted == read_rows,
            "under_one_second": pruned_s < 1.0,
        }
        print(json.dumps(report, indent=2))
        return 0 if report["same_answer"] and report["under_one_second"] else 1
    finally:
        if args.keep:
            print(f"lake kept at {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
