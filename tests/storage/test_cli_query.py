"""``logwarden query``: filters, counts, aggregates and exports from the command line."""
from __future__ import annotations

import argparse
from datetime import timedelta

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from logwarden.commands import query as query_command
from logwarden.storage import Lake
from tests.storage.sample import T0, rows, table


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="logwarden")
    query_command.register(parser.add_subparsers())
    args = parser.parse_args(["query", *argv])
    return args.func(args)


@pytest.fixture()
def data_dir(tmp_path):
    Lake(tmp_path / "lake").commit_batch("b1", table(rows(300)))
    return tmp_path


def test_count_with_every_cli_filter(data_dir, capsys):
    argv = ["--data-dir", str(data_dir), "--service", "api", "--level", "error", "--user", "user-0", "--user",
            "user-2", "--since", "2026-11-20T10:00:00Z", "--until", "2026-11-21T10:00:00Z", "--grep", "TIMEOUT",
            "--where", "duration_ms < 50", "--count"]
    assert run(argv) == 0
    want = [r for r in rows(300) if r["service"] == "api" and r["level"] == "ERROR" and r["user_id"] in
            ("user-0", "user-2") and T0 <= r["timestamp"] < T0 + timedelta(days=1) and "timeout" in r["message"]
            and r["duration_ms"] < 50]
    assert capsys.readouterr().out.strip() == str(len(want)) and want


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_formats(data_dir, tmp_path, fmt):
    out = tmp_path / f"errors.{'jsonl' if fmt == 'json' else fmt}"
    assert run(["--data-dir", str(data_dir), "--level", "ERROR", "--format", fmt, "--out", str(out)]) == 0
    if fmt == "csv":
        ids = pacsv.read_csv(out).column("record_id").to_pylist()
    elif fmt == "parquet":
        ids = pq.read_table(out).column("record_id").to_pylist()
    else:
        ids = [orjson.loads(line)["record_id"] for line in out.read_bytes().splitlines()]
    assert sorted(ids) == sorted(r["record_id"] for r in rows(300) if r["level"] == "ERROR")


def test_table_output_and_aggregates(data_dir, capsys):
    assert run(["--data-dir", str(data_dir), "--service", "billing", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(" billing " in line for line in lines)
    assert run(["--data-dir", str(data_dir), "--by", "level", "--bucket", "1d", "--format", "json"]) == 0
    got = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sum(r["count"] for r in got) == 300 and {"duration_p95", "error_rate"} <= set(got[0])


def test_bad_where_is_refused(data_dir, capsys):
    assert run(["--data-dir", str(data_dir), "--where", "1=1; DELETE FROM x", "--count"]) == 2
    assert "not allowed" in capsys.readouterr().err
    assert run(["--data-dir", str(data_dir), "--format", "parquet"]) == 2
