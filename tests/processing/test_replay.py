"""``logwarden replay``: files of any format become spool batches; bad records are dead-lettered."""
from __future__ import annotations

import gzip

import orjson
import pyarrow.parquet as pq
import pytest

from logwarden.collector.deadletter import DeadLetterStore
from logwarden.replay import ReplayOptions, parse_speed, replay_files


def test_speed_forms():
    assert parse_speed("max") is None
    assert parse_speed("realtime") == 1.0
    assert parse_speed("25x") == 25.0
    with pytest.raises(ValueError, match="max, realtime or Nx"):
        parse_speed("fast")


def test_mixed_formats_and_compression_land_in_the_spool(tmp_path, shared_data):
    logs = tmp_path / "in"
    logs.mkdir()
    lines = [orjson.dumps({"time": "2026-11-22T10:00:0%dZ" % i, "level": "error", "msg": f"boom {i}",
                           "name": "billing"}) for i in range(5)]
    (logs / "app.json.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    cloudtrail = next((shared_data / "formats" / "cloudtrail").rglob("*.json"))
    summary = replay_files([str(logs), str(cloudtrail)], tmp_path / "data")
    assert summary.records == summary.accepted + summary.rejected
    assert summary.formats["json"] == 5 and summary.formats["cloudtrail"] > 0
    rows = [r for p in sorted((tmp_path / "data" / "spool").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert len(rows) == summary.accepted
    billing = [r for r in rows if r["service"] == "billing"]
    assert [r["level"] for r in billing] == ["ERROR"] * 5 and billing[0]["message"] == "boom 0"
    assert len({r["record_id"] for r in rows}) == len(rows)


def test_records_the_schema_refuses_are_dead_lettered_with_their_bytes(tmp_path):
    source = tmp_path / "svc.log"
    source.write_bytes(b'{"timestamp": "2026-11-22T10:00:00Z", "level": "INFO", "service": "a", "message": "ok"}\n'
                       b'{"timestamp": "2026-11-22T10:00:01Z", "level": "INFO", "service": "'
                       + b"s" * 200 + b'", "message": "too long a service name"}\n')
    summary = replay_files([str(source)], tmp_path / "data", ReplayOptions(format_name="json"))
    assert (summary.accepted, summary.rejected) == (1, 1)
    letters = list(DeadLetterStore(tmp_path / "data" / "deadletter"))
    assert len(letters) == 1 and letters[0].field == "service" and b"s" * 200 in letters[0].raw
