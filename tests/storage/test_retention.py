"""Retention tiers: compaction after 7 days, delete or archive after 30, aggregates kept a year."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import orjson
import pyarrow.parquet as pq
import pytest

from logwarden.common.yamlconf import ConfigError
from logwarden.processing.aggregate import minute_aggregates
from logwarden.storage import Lake, query
from logwarden.storage.retention import JOURNAL, RetentionPolicy, plan, run_retention
from tests.storage.sample import rows, table

NOW = datetime(2027, 1, 31, 12, 0, tzinfo=timezone.utc)
AGES = (1, 8, 10, 40, 400)  # days


def build(root) -> Lake:
    lake = Lake(root / "lake")
    for age in AGES:
        start = NOW - timedelta(days=age, hours=10)
        for batch in range(3):
            records = rows(12, start + timedelta(minutes=batch), timedelta(seconds=30), prefix=f"a{age}b{batch}-")
            t = table(records, with_templates=batch == 2)
            lake.commit_batch(f"age{age}-{batch}", t, minute_aggregates(t))
    return lake


def partition_files(lake: Lake, age: int) -> list[str]:
    day = (NOW - timedelta(days=age)).date().isoformat()
    return sorted(p.name for p in (lake.logs / f"date={day}").rglob("*.parquet"))


def test_dry_run_changes_nothing_and_lists_the_tiers(tmp_path):
    lake = build(tmp_path)
    before = sorted(p.relative_to(lake.root) for p in lake.root.rglob("*"))
    report = run_retention(lake, RetentionPolicy(), NOW, dry_run=True)
    assert sorted(p.relative_to(lake.root) for p in lake.root.rglob("*")) == before
    kinds = {(a.kind, a.age_days) for a in report.actions}
    assert kinds == {("compact", 8), ("compact", 10), ("delete", 40), ("delete", 400), ("delete-aggregates", 400)}


def test_apply_compacts_deletes_and_is_idempotent(tmp_path):
    lake = build(tmp_path)
    rows_before = dict(query(lake, "SELECT service, count(*) FROM logs WHERE timestamp >= ? GROUP BY 1",
                             [NOW - timedelta(days=20)]))
    run_retention(lake, RetentionPolicy(compression_level=15), NOW)
    assert len(partition_files(lake, 1)) == 3 * 3  # young: untouched (3 services x 3 batches)
    for age in (8, 10):
        files = partition_files(lake, age)
        assert len(files) == 3 and all(f.startswith("compacted-") for f in files)
        one = next((lake.logs / f"date={(NOW - timedelta(days=age)).date()}").rglob("*.parquet"))
        meta = pq.ParquetFile(one).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        stamps = pq.read_table(one).column("timestamp").to_pylist()
        assert stamps == sorted(stamps) and "template_id" in pq.read_schema(one).names
    assert partition_files(lake, 40) == [] and partition_files(lake, 400) == []
    assert dict(query(lake, "SELECT service, count(*) FROM logs GROUP BY 1")) == rows_before
    agg_dates = {str(d) for (d,) in query(lake, "SELECT DISTINCT CAST(bucket AS DATE) FROM aggregates")}
    assert (NOW - timedelta(days=40)).date().isoformat() in agg_dates  # aggregates outlive raw records
    assert (NOW - timedelta(days=400)).date().isoformat() not in agg_dates
    assert plan(lake, RetentionPolicy(), NOW) == []  # nothing left to do
    assert run_retention(lake, RetentionPolicy(), NOW).actions == []


def test_archive_moves_old_partitions_in_the_same_layout(tmp_path):
    lake = build(tmp_path)
    policy = RetentionPolicy(raw_action="archive", archive_dir=tmp_path / "cold")
    run_retention(lake, policy, NOW)
    day = (NOW - timedelta(days=40)).date().isoformat()
    archived = sorted(p.relative_to(tmp_path / "cold").as_posix() for p in (tmp_path / "cold").rglob("*.parquet"))
    assert f"logs/date={day}/service=api/age40-0.parquet" in archived and len(archived) == 2 * 3 * 3
    assert partition_files(lake, 40) == []


def test_a_compaction_cut_short_is_finished_by_the_next_run(tmp_path):
    lake = build(tmp_path)
    policy = RetentionPolicy()
    folder = next((lake.logs / f"date={(NOW - timedelta(days=8)).date()}").iterdir())
    saved = {p.name: p.read_bytes() for p in folder.glob("*.parquet")}
    run_retention(lake, policy, NOW)
    target = next(folder.glob("compacted-*.parquet")).name
    for name, data in saved.items():  # crash after the merged file landed, before the sources were deleted
        (folder / name).write_bytes(data)
    (folder / JOURNAL).write_bytes(orjson.dumps({"target": target, "sources": sorted(saved)}))
    assert [a.kind for a in plan(lake, policy, NOW)] == ["resume-compaction"]
    run_retention(lake, policy, NOW)
    assert sorted(p.name for p in folder.iterdir()) == [target]


def test_policy_from_config():
    policy = RetentionPolicy.from_dict({"compact_after": "3d", "raw_after": "14d", "raw_action": "archive",
                                        "aggregates_after": "180d", "compression_level": 19, "interval": "30m"})
    assert (policy.compact_after_days, policy.raw_after_days, policy.aggregates_after_days) == (3, 14, 180)
    assert policy.interval_seconds == 1800 and policy.compression_level == 19
    for bad in ({"keep": "1d"}, {"raw_after": "2d"}, {"raw_action": "shred"}, {"compact_after": "36h"},
                {"compression_level": 40}):
        with pytest.raises(ConfigError):
            RetentionPolicy.from_dict(bad)


def test_cli_dry_run(tmp_path):
    lake = build(tmp_path)  # the lake of data dir tmp_path
    data_dir = tmp_path
    result = subprocess.run([sys.executable, "-c", "import sys; from logwarden.commands import retention; "
                             "import argparse; p = argparse.ArgumentParser(); s = p.add_subparsers(); "
                             "retention.register(s); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))",
                             "retention", "--data-dir", str(data_dir), "--dry-run", "--now", NOW.isoformat()],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "would compact" in result.stdout and "would delete" in result.stdout
    assert len(partition_files(lake, 8)) == 9
