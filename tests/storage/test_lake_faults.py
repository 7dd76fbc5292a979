"""Faults of the lake (issue 16): any service the schema accepts can be committed and found by service,
and readers never see part of a batch whose commit failed."""
from __future__ import annotations

import errno
import re
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logwarden.common.records import record_schema
from logwarden.storage import Lake, lake as lake_module, query
from logwarden.storage.lake import MAX_PARTITION_VALUE, partition_value, service_partition
from logwarden.storage.search import SearchRequest, count, files_for, search

from tests.storage.sample import rows

CJK = "日本語のサービス名前" * 3  # 30 characters, 90 UTF-8 bytes: 270 bytes URL-quoted


def batch(services: list[str], n: int = 12, prefix: str = "r") -> pa.Table:
    records = rows(n, prefix=prefix)
    for i, row in enumerate(records):
        row["service"] = services[i % len(services)]
    return pa.Table.from_pylist(records, schema=record_schema())


def visible_files(lake: Lake) -> list[str]:
    return sorted(str(p.relative_to(lake.root)) for p in lake.logs.rglob("*.parquet") if not p.name.startswith("."))


def test_a_batch_with_a_30_character_cjk_service_commits_whole_and_is_found_by_service(tmp_path):
    assert len(CJK) == 30 and len(f"service={quote(CJK, safe='-._~')}") > 255  # the old folder name
    lake = Lake(tmp_path)
    table = batch([CJK, "api", "billing"], n=30)
    lake.commit_batch("b1", table)  # raised ENAMETOOLONG on every attempt before the fix
    assert lake.is_committed("b1")
    assert query(lake, "SELECT count(*) FROM logs") == [(30,)]
    assert query(lake, "SELECT count(*) FROM logs WHERE service = ?", [CJK]) == [(10,)]
    found = search(lake, SearchRequest(services=(CJK,), limit=None))
    assert found.num_rows == 10 and set(found["service"].to_pylist()) == {CJK}
    assert count(lake, SearchRequest(services=(CJK,))) == 10
    # pruning: a query by that service lists its own folder only
    listed = files_for(lake, SearchRequest(services=(CJK,)))
    assert listed and all(f"/{service_partition(CJK)}/" in name for name in listed)
    for path in lake.root.rglob("*"):
        assert len(path.name.encode()) <= 255


def test_partition_names_are_bounded_safe_and_distinct(tmp_path):
    services = [CJK, CJK + "x", "🚀" * 127, "a" * 127, "a" * 126 + "b", "team/api gateway", "..", ".", "a+b",
                "100%", "~home", "svc-0", "ünïcödé", " ", "x" * 96, "x" * 97]
    names = [partition_value(s) for s in services]
    for service, name in zip(services, names):
        assert len(name.encode()) <= MAX_PARTITION_VALUE, service
        assert re.fullmatch(r"[A-Za-z0-9._~%+-]+", name), name
        assert service_partition(service).startswith("service=")  # never "." or ".." as a folder
    assert len(set(names)) == len(names)
    # short names keep the readable hive form they always had (existing lakes keep pruning)
    assert partition_value("svc-0") == "svc-0" and partition_value("team/api gateway") == "team%2Fapi%20gateway"
    assert "+" in partition_value(CJK) and partition_value(CJK).startswith("%E6%97%A5")
    lake = Lake(tmp_path)
    lake.commit_batch("b1", batch(services, n=len(services) * 2))
    assert query(lake, "SELECT count(DISTINCT service), count(*) FROM logs") == [(len(services), len(services) * 2)]
    for service in services:
        assert count(lake, SearchRequest(services=(service,))) == 2, service


def test_services_sharing_a_folder_share_its_file(tmp_path, monkeypatch):
    """A folder collision (two services, one bounded name) must not let one partition overwrite the other."""
    real = lake_module.partition_value
    monkeypatch.setattr(lake_module, "partition_value", lambda v: "shared" if v in ("a", "b") else real(v))
    lake = Lake(tmp_path)
    lake.commit_batch("b1", batch(["a", "b", "c"], n=9))
    assert query(lake, "SELECT service, count(*) FROM logs GROUP BY 1 ORDER BY 1") == [("a", 3), ("b", 3), ("c", 3)]
    assert count(lake, SearchRequest(services=("a",))) == 3
    assert count(lake, SearchRequest(services=("a", "b"))) == 6  # the shared folder is read once


def test_a_query_during_a_failing_commit_never_sees_part_of_the_batch(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.commit_batch("b0", batch(["api"], n=5, prefix="old"))
    table = batch(["api", "billing", "search"], n=30)
    seen_during: list[int] = []
    real_write = pq.write_table
    writes = {"n": 0}

    def write_then_fail(data, where, *args, **kwargs):
        writes["n"] += 1
        if writes["n"] == 3:  # the third file of the batch: two partitions are written by now
            seen_during.append(query(lake, "SELECT count(*) FROM logs")[0][0])
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        return real_write(data, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_then_fail)
    with pytest.raises(OSError):
        lake.commit_batch("b1", table)
    assert seen_during == [5]  # only the committed batch b0, not the two partitions of b1
    assert query(lake, "SELECT count(*) FROM logs") == [(5,)]
    assert not lake.is_committed("b1")
    assert [name for name in visible_files(lake) if "b1" in name] == []
    assert not [p for p in lake.root.rglob("*") if p.is_file() and "b1" in p.name]  # staged files removed
    monkeypatch.setattr(pq, "write_table", real_write)
    lake.commit_batch("b1", table)  # the retry
    assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(35, 35)]


def test_date_column_still_comes_from_the_folder(tmp_path):
    lake = Lake(tmp_path)
    lake.commit_batch("b1", batch([CJK], n=3))
    assert query(lake, "SELECT DISTINCT CAST(date AS VARCHAR), service FROM logs") == [("2026-11-20", CJK)]
