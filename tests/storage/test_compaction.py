"""Background compaction of small files: merged once settled, never a row twice or lost, and a batch
committed again replaces its rows inside merged files."""
from __future__ import annotations

import os
import time

import orjson
import pyarrow as pa
import pytest

from logwarden.common.records import record_schema
from logwarden.common.yamlconf import ConfigError
from logwarden.processing.aggregate import minute_aggregates
from logwarden.processing.backfill import batch_records, batches_in_range
from logwarden.storage import Lake, query
from logwarden.storage.compaction import CompactionPolicy, compact_small_files
from logwarden.storage.journal import JOURNAL
from logwarden.storage.lake import parquet_files
from tests.monitoring.helpers import rec

POLICY = CompactionPolicy(min_files=4, settle_seconds=60, grace_seconds=300)
SERVICES = ("svc-a", "svc-b")


def batch(b: int, size: int = 10, message: str = "m") -> pa.Table:
    rows = [rec(b * 60.0 + i, SERVICES[i % 2], "ERROR" if i % 3 == 0 else "INFO", f"{message}{i}",
                record_id=f"b{b:03d}-{i:06d}") for i in range(size)]
    return pa.Table.from_pylist(rows, schema=record_schema())


def fill(lake: Lake, batches: int, age: float = 3600) -> float:
    """Commit ``batches`` batches whose files are ``age`` seconds old; returns now."""
    for b in range(batches):
        records = batch(b)
        lake.commit_batch(f"b{b:03d}", records, minute_aggregates(records))
    now = time.time()
    for path in (lake.root).rglob("*.parquet"):
        os.utime(path, (now - age, now - age))
    return now


def files_on_disk(lake: Lake) -> list[str]:
    return sorted(p.name for p in lake.logs.rglob("*.parquet"))


def counts(lake: Lake) -> list[tuple]:
    return query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs")


def test_settled_small_files_are_merged_and_replaced_files_hidden_then_deleted(tmp_path):
    lake = Lake(tmp_path)
    now = fill(lake, 6)
    merged = compact_small_files(lake, POLICY, now)
    assert len(merged) == 3  # two service partitions and one aggregates partition
    assert counts(lake) == [(60, 60)]
    assert query(lake, "SELECT sum(count) FROM aggregates") == [(60,)]
    for folder in {p.parent for p in merged}:
        assert [p.name for p in parquet_files(folder)] == [p.name for p in merged if p.parent == folder]
    assert len(files_on_disk(lake)) == 2 * 6 + 2  # the replaced files stay during the grace period
    assert compact_small_files(lake, POLICY, now + 10) == []
    assert len(files_on_disk(lake)) == 14
    compact_small_files(lake, POLICY, now + POLICY.grace_seconds + 1)
    assert all(name.startswith("compacted-") for name in files_on_disk(lake))
    assert counts(lake) == [(60, 60)]
    assert not list(tmp_path.rglob(JOURNAL))


def test_recent_or_few_files_are_left_alone(tmp_path):
    lake = Lake(tmp_path)
    now = fill(lake, 3)
    assert compact_small_files(lake, POLICY, now) == []  # fewer than min_files
    records = batch(9)
    lake.commit_batch("b009", records)  # fresh: not settled
    assert compact_small_files(lake, POLICY, time.time()) == []


def test_a_batch_committed_again_replaces_its_rows_inside_merged_files(tmp_path):
    lake = Lake(tmp_path)
    now = fill(lake, 6)
    compact_small_files(lake, POLICY, now)
    lake.commit_batch("b002", batch(2))  # a retried task, within the grace period
    assert counts(lake) == [(60, 60)]
    compact_small_files(lake, POLICY, now + POLICY.grace_seconds + 1)
    lake.commit_batch("b003", batch(3, message="fixed"))  # a backfill, after the grace period
    assert counts(lake) == [(60, 60)]
    assert query(lake, "SELECT count(*) FROM logs WHERE message LIKE 'fixed%'") == [(10,)]
    assert query(lake, "SELECT count(*) FROM logs WHERE batch_id = 'b003' AND message LIKE 'm%'") == [(0,)]


def test_backfill_finds_and_reads_batches_inside_merged_files(tmp_path):
    lake = Lake(tmp_path)
    now = fill(lake, 6)
    compact_small_files(lake, POLICY, now + POLICY.grace_seconds + 1)
    compact_small_files(lake, POLICY, now + 2 * POLICY.grace_seconds + 2)
    assert all(name.startswith("compacted-") for name in files_on_disk(lake))
    first = batch(2)["timestamp"][0].as_py()
    last = batch(3)["timestamp"][-1].as_py()
    assert batches_in_range(lake, first, last) == ["b002", "b003"]
    again = batch_records(lake, "b002")
    assert sorted(again["record_id"].to_pylist()) == sorted(batch(2)["record_id"].to_pylist())


def test_a_compaction_that_never_landed_is_undone(tmp_path):
    lake = Lake(tmp_path)
    now = fill(lake, 6)
    folder = next(p.parent for p in lake.logs.rglob("*.parquet"))
    names = [p.name for p in parquet_files(folder)]
    (folder / JOURNAL).write_bytes(orjson.dumps({"target": "compacted-x.parquet", "sources": names}))
    assert [p.name for p in parquet_files(folder)] == names  # target absent: nothing is hidden
    assert counts(lake) == [(60, 60)]
    compact_small_files(lake, POLICY, now)
    assert counts(lake) == [(60, 60)]
    assert not (folder / JOURNAL).exists() or orjson.loads((folder / JOURNAL).read_bytes())["target"] != \
        "compacted-x.parquet"


def test_policy_is_checked_on_load():
    assert CompactionPolicy.from_dict({"min_files": 8, "settle": "2m", "interval": "30s"}) == \
        CompactionPolicy(min_files=8, settle_seconds=120, interval_seconds=30)
    for bad in ({"min_files": 1}, {"min_files": True}, {"settle": "soon"}, {"every": "1m"}):
        with pytest.raises(ConfigError):
            CompactionPolicy.from_dict(bad)


def test_the_scheduler_merges_in_the_background_and_storage_config_sets_it(tmp_path):
    from logwarden.storage.compaction import CompactionScheduler
    from logwarden.storage.config import StorageConfig

    config = StorageConfig.from_dict({"compaction": {"min_files": 4, "settle": "0s", "interval": "1s"}})
    assert config.compaction == CompactionPolicy(min_files=4, settle_seconds=0, interval_seconds=1)
    lake = Lake(tmp_path)
    fill(lake, 5, age=0)
    scheduler = CompactionScheduler(tmp_path, config.compaction).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(n.startswith("compacted-") for n in files_on_disk(lake)):
            time.sleep(0.1)
    finally:
        scheduler.stop()
    assert scheduler.merged == 3 and counts(lake) == [(50, 50)]
