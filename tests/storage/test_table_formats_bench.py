"""bench/table_formats.py with tiny arguments on local files: its JSON has every measurement, every batch
landed once in each format, and a re-commit of a committed batch added no row. Iceberg is measured when
pyiceberg is installed (it is not in the ``bench`` extra: see the benchmark's ``unavailable``)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "table_formats.py"
PHASES = ("append_1", "append_2", "read", "idempotence", "compaction")
ARGS = ["--batches", "2", "--rows", "2000", "--services", "2", "--growth", "12", "--compaction-batches", "3",
        "--compaction-rows", "500", "--compaction-appends", "2", "--no-s3"]


@pytest.fixture(scope="module")
def report() -> dict:
    if importlib.util.find_spec("deltalake") is None:
        pytest.skip("deltalake not installed (pip install -e '.[bench]'): the table-format benchmark needs it")
    run = subprocess.run([sys.executable, str(BENCH), *ARGS], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_every_format_and_phase_is_reported(report: dict) -> None:
    assert set(report["formats"]) | set(report["not_measured"]) == {"lake", "delta", "iceberg"}
    assert {"lake", "delta"} <= set(report["formats"])
    for phases in report["formats"].values():
        assert set(PHASES) <= set(phases)
    assert report["checks"] and all(report["checks"].values()), report["checks"]
    assert "s3" not in report  # --no-s3: local files only


def test_appends_from_one_and_two_writers_all_land(report: dict) -> None:
    for kind, phases in report["formats"].items():
        one, two = phases["append_1"], phases["append_2"]
        assert one["rows_counted"] == one["rows_expected"] == 2 * 2000, kind
        assert two["rows_counted"] == two["rows_expected"] == 2 * 2 * 2000, kind
        assert two["commits"] == 4 and two["failed_attempts"] == 0, kind
        assert 0 < one["p50_ms"] <= one["max_ms"], kind
        assert one["commits_per_second"] > 0, kind


def test_recommit_adds_nothing_and_growth_is_measured(report: dict) -> None:
    for kind, phases in report["formats"].items():
        idem = phases["idempotence"]
        assert idem["recommit_skipped"], kind
        assert idem["rows_after_recommit"] == idem["rows_expected"] == 2000, kind
        assert [point["commits"] for point in idem["growth"]] == [3, 6, 10, 12], kind
        assert all(point["check_found"] for point in idem["growth"]), kind
    # A transaction identifier makes Delta refuse the second of two racing commits of one batch; the
    # check-then-append of Iceberg cannot: the race lands the batch twice (what the benchmark reports).
    assert not report["formats"]["delta"]["idempotence"]["race"]["duplicated"]
    assert not report["formats"]["lake"]["idempotence"]["race"]["duplicated"]
    if "iceberg" in report["formats"]:
        assert report["formats"]["iceberg"]["idempotence"]["race"]["duplicated"]


def test_compaction_keeps_every_row_once_and_readers_never_over_count(report: dict) -> None:
    for kind, phases in report["formats"].items():
        compaction = phases["compaction"]
        assert compaction["rows_after"] == compaction["rows_expected"] == (3 + 2) * 500, kind
        assert compaction["reader_partial_batches"] == 0, kind
        assert compaction["reader_max_over"] is None or compaction["reader_max_over"] <= 0, kind


def test_duckdb_reads_the_same_answer_through_every_format(report: dict) -> None:
    answers = {kind: (phases["read"]["count"]["rows"], phases["read"]["filtered"]["rows"])
               for kind, phases in report["formats"].items()}
    assert len(set(answers.values())) == 1, answers
    total, filtered = answers["delta"]
    assert total == 4 * 2000 and 0 < filtered < total
    for kind, phases in report["formats"].items():
        assert phases["read"]["filtered"]["files"] < phases["read"]["count"]["files"], kind  # pruned
