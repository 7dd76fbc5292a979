"""The lake: hive partitions by date and service, atomic idempotent commits, DuckDB reads."""
from __future__ import annotations

import pyarrow as pa

from logwarden.common.records import record_schema
from logwarden.storage import Lake, query

from tests.monitoring.helpers import rec


def records(n: int) -> pa.Table:
    rows = [rec(i * 3600.0 * 5, f"svc-{i % 2}", "ERROR" if i % 4 == 0 else "INFO", f"m{i}") for i in range(n)]
    for i, row in enumerate(rows):
        row["record_id"] = f"r{i}"
    return pa.Table.from_pylist(rows, schema=record_schema())


def test_commit_partitions_by_date_and_service(tmp_path):
    lake = Lake(tmp_path)
    info = lake.commit_batch("b1", records(10))
    assert info.records == 10
    folders = sorted({p.parent.relative_to(lake.logs).as_posix() for p in lake.logs.rglob("*.parquet")})
    assert folders[0] == "date=2026-11-22/service=svc-0"
    assert len(folders) == len(info.files) and all("b1.parquet" in f for f in info.files)
    assert lake.is_committed("b1") and lake.committed_batches() == ["b1"]
    by_partition = query(lake, "SELECT CAST(date AS VARCHAR), service, count(*) FROM logs GROUP BY ALL ORDER BY ALL")
    expected: dict[tuple[str, str], int] = {}
    for row in records(10).to_pylist():
        key = (row["timestamp"].strftime("%Y-%m-%d"), row["service"])
        expected[key] = expected.get(key, 0) + 1
    assert by_partition == sorted((d, s, n) for (d, s), n in expected.items())


def test_recommitting_a_batch_never_duplicates(tmp_path):
    lake = Lake(tmp_path)
    lake.commit_batch("b1", records(10))
    lake.commit_batch("b1", records(10))  # a retried task
    lake.commit_batch("b2", records(4))
    assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(14, 10)]
    assert not list(tmp_path.rglob("*.tmp"))


def test_service_names_are_safe_partition_values(tmp_path):
    lake = Lake(tmp_path)
    row = rec(0, "team/api gateway", record_id="x")
    lake.commit_batch("b1", pa.Table.from_pylist([row], schema=record_schema()))
    assert query(lake, "SELECT service FROM logs") == [("team/api gateway",)]


def test_empty_lake_answers_no_rows(tmp_path):
    assert query(Lake(tmp_path), "SELECT count(*) FROM logs") == []
