"""Search over the lake: every filter, time range with partition pruning, sort, limit, aggregates, export."""
from __future__ import annotations

import io
from datetime import timedelta

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from logwarden.storage import Lake
from logwarden.storage.export import write_file, write_stream
from logwarden.storage.search import (AggregateRequest, SearchError, SearchRequest, aggregate, count, files_for,
                            open_search, parse_time, search)
from tests.storage.sample import T0, rows, table

N = 600  # 7-minute steps: ~70 hours, three dates


@pytest.fixture()
def lake(tmp_path):
    lake = Lake(tmp_path / "lake")
    records = rows(N)
    lake.commit_batch("old", table(records[:300]))  # written before template mining: no template columns
    lake.commit_batch("new", table(records[300:], with_templates=True))
    return lake


def expected(pred) -> list[dict]:
    return [r for r in rows(N) if pred(r)]


def ids(result: pa.Table) -> set[str]:
    return set(result.column("record_id").to_pylist())


@pytest.mark.parametrize("request_, pred", [
    (SearchRequest(services=("billing",)), lambda r: r["service"] == "billing"),
    (SearchRequest(levels=("error",)), lambda r: r["level"] == "ERROR"),
    (SearchRequest(user_ids=("user-1", "user-2")), lambda r: r["user_id"] in ("user-1", "user-2")),
    (SearchRequest(request_ids=("req-42",)), lambda r: r["request_id"] == "req-42"),
    (SearchRequest(error_codes=("DB_TIMEOUT",), services=("api",)),
     lambda r: r["error_code"] == "DB_TIMEOUT" and r["service"] == "api"),
    (SearchRequest(text="TIMEOUT talking"), lambda r: "timeout talking" in r["message"]),
    (SearchRequest(where="duration_ms >= 90 AND level <> 'ERROR'"),
     lambda r: r["duration_ms"] >= 90 and r["level"] != "ERROR"),
    (SearchRequest(tenant="globex", levels=("WARNING",)),
     lambda r: r["tenant"] == "globex" and r["level"] == "WARNING"),
])
def test_every_filter_matches_exactly_the_records_it_names(lake, request_, pred):
    found = search(lake, SearchRequest(**{**request_.__dict__, "limit": None}))
    assert ids(found) == {r["record_id"] for r in expected(pred)}
    assert count(lake, request_) == len(expected(pred))


def test_template_id_filter_reads_old_files_without_the_column(lake):
    found = search(lake, SearchRequest(template_ids=("T1",), limit=None))
    assert ids(found) == {r["record_id"] for r in rows(N)[300:] if r["level"] == "ERROR"}
    old = search(lake, SearchRequest(request_ids=("req-1",)))
    assert old.column("template_id").to_pylist() == [None]


def test_time_range_prunes_partitions_and_bounds_rows(lake):
    since, until = T0 + timedelta(hours=20), T0 + timedelta(hours=21)
    request = SearchRequest(services=("api",), since=since, until=until, limit=None)
    assert [p.split("/lake/")[1] for p in files_for(lake, request)] == [
        "logs/date=2026-11-21/service=api/new.parquet", "logs/date=2026-11-21/service=api/old.parquet"]
    found = search(lake, request)
    assert ids(found) == {r["record_id"] for r in expected(
        lambda r: r["service"] == "api" and since <= r["timestamp"] < until)}
    assert len(files_for(lake, SearchRequest())) == len(list(lake.logs.rglob("*.parquet"))) == 15


def test_sort_and_limit(lake):
    newest = search(lake, SearchRequest(limit=5))
    assert newest.column("record_id").to_pylist() == [f"r{i}" for i in range(N - 1, N - 6, -1)]
    slowest = search(lake, SearchRequest(sort="duration_ms", descending=True, limit=3))
    assert slowest.column("duration_ms").to_pylist() == [99.0, 99.0, 99.0]
    oldest = search(lake, SearchRequest(descending=False, limit=2))
    assert oldest.column("record_id").to_pylist() == ["r0", "r1"]


def test_aggregates_count_by_field_per_bucket_with_percentiles(lake):
    result = aggregate(lake, AggregateRequest(SearchRequest(services=("search",)), by="level", bucket_seconds=86400))
    got = {(r["bucket"].date().isoformat(), r["level"]): r for r in result.to_pylist()}
    want: dict = {}
    for r in expected(lambda r: r["service"] == "search"):
        want.setdefault((r["timestamp"].date().isoformat(), r["level"]), []).append(r["duration_ms"])
    assert {k: v["count"] for k, v in got.items()} == {k: len(v) for k, v in want.items()}
    key = max(want, key=lambda k: len(want[k]))
    durations = sorted(want[key])
    assert got[key]["duration_p50"] == pytest.approx(
        (durations[(len(durations) - 1) // 2] + durations[len(durations) // 2]) / 2)
    assert got[key]["error_rate"] == (1.0 if key[1] == "ERROR" else 0.0)


def test_unsafe_or_bad_requests_are_refused(lake):
    for where in ("1=1; DROP TABLE x", "EXISTS (SELECT * FROM src)", "read_parquet('/etc/passwd') IS NULL",
                  "tenant = 'acme' -- comment", "nosuchcolumn = 1", "1=1) UNION SELECT * FROM src WHERE (1=1"):
        with pytest.raises(SearchError):
            count(lake, SearchRequest(where=where))
    with pytest.raises(SearchError):
        search(lake, SearchRequest(sort="password"))
    with pytest.raises(SearchError):
        search(lake, SearchRequest(levels=("LOUD",)))
    with pytest.raises(SearchError):
        parse_time("yesterday-ish")


def test_parse_time_accepts_durations_and_iso():
    now = T0
    assert parse_time("2h", now) == T0 - timedelta(hours=2)
    assert parse_time("2026-11-20T08:00:00", now) == T0 - timedelta(hours=2)
    assert parse_time("2026-11-20T10:00:00+02:00", now) == T0 - timedelta(hours=2)


def test_empty_lake_answers_empty_results_with_all_columns(tmp_path):
    lake = Lake(tmp_path)
    result = search(lake, SearchRequest(services=("api",)))
    assert result.num_rows == 0 and "template_id" in result.column_names
    assert count(lake, SearchRequest()) == 0


def test_export_csv_json_parquet(lake, tmp_path):
    request = SearchRequest(services=("api",), levels=("ERROR",), limit=None)
    want = {r["record_id"] for r in expected(lambda r: r["service"] == "api" and r["level"] == "ERROR")}
    with open_search(lake, request) as reader:
        assert write_file(reader, "parquet", tmp_path / "out.parquet") == len(want)
    assert set(pq.read_table(tmp_path / "out.parquet").column("record_id").to_pylist()) == want
    with open_search(lake, request) as reader:
        write_file(reader, "csv", tmp_path / "out.csv")
    assert set(pacsv.read_csv(tmp_path / "out.csv").column("record_id").to_pylist()) == want
    buffer = io.BytesIO()
    with open_search(lake, request) as reader:
        write_stream(reader, "json", buffer)
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    assert {line["record_id"] for line in lines} == want
    assert lines[0]["timestamp"].endswith("Z")
