"""``logwarden rules test``: replays a log file (or the lake) through the rules offline; the JSON lines are
the alerts the engine raises on the same data, byte-identical across runs and batch sizes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa

from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.monitoring import DetectorSet, load_rules
from logwarden.monitoring.replay import alert_lines

from tests.monitoring.helpers import T0, rec, table

ROOT = Path(__file__).resolve().parents[2]


def write_logs(path: Path) -> list[dict]:
    rows = []
    for i in range(1200):
        service = ["api", "pay", "db"][i % 3]
        if service == "db" and i > 300:
            continue
        level, message = "INFO", f"request {i} served"
        if service == "pay" and 600 <= i < 660:
            level, message = "ERROR", "Database connection failed"
        rows.append(rec(i * 1.0, service, level, message, duration_ms=8000.0 if i == 501 else 12.0))
    with path.open("wb") as out:
        for row in rows:
            record = {k: v for k, v in row.items() if k != "record_id"}
            record["timestamp"] = row["timestamp"].isoformat().replace("+00:00", "Z")
            out.write(orjson.dumps(record) + b"\n")
    return rows


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logwarden", "rules", "test", *args], cwd=ROOT,
                          capture_output=True, timeout=120, check=True)


def test_rules_test_prints_the_engine_alerts_deterministically(tmp_path):
    logs = tmp_path / "app.ndjson"
    rows = write_logs(logs)
    first = run_cli(str(ANOMALY_SCHEMA_PATH), "--data", str(logs))
    again = run_cli(str(ANOMALY_SCHEMA_PATH), "--data", str(logs), "--batch-records", "97")
    assert first.stdout == again.stdout
    lines = [orjson.loads(line) for line in first.stdout.splitlines()]
    assert {(a["rule"], a["key"]) for a in lines} == {("slow_response", "api"), ("db_connection_failure", "pay"),
                                                      ("service_down", "db")}
    assert all(list(a) == ["rule", "severity", "key", "window_start", "window_end", "value"] for a in lines)
    detectors = DetectorSet(load_rules(ANOMALY_SCHEMA_PATH).by_name().values())
    live = []
    for n in range(0, len(rows), 50):  # live-sized batches
        live += detectors.process(f"b{n}", table(rows[n:n + 50]))
    assert "\n".join(alert_lines(live)) + "\n" == first.stdout.decode()
    assert b"records (0 rejected)" in first.stderr


def test_rules_test_reads_the_lake_between_since_and_until(tmp_path):
    from logwarden.storage.lake import Lake

    rows = write_logs(tmp_path / "app.ndjson")
    lake = Lake(tmp_path / "data" / "lake")
    records = table(rows)
    records = records.append_column("template_id", pa.array(["t"] * records.num_rows))
    records = records.append_column("template", pa.array(["x"] * records.num_rows))
    lake.commit_batch("batch-1", records)
    everything = run_cli(str(ANOMALY_SCHEMA_PATH), "--lake", "--data-dir", str(tmp_path / "data"))
    from_file = run_cli(str(ANOMALY_SCHEMA_PATH), "--data", str(tmp_path / "app.ndjson"))
    assert everything.stdout == from_file.stdout
    early = run_cli(str(ANOMALY_SCHEMA_PATH), "--lake", "--data-dir", str(tmp_path / "data"),
                    "--since", T0.isoformat(), "--until", "2026-11-22T10:09:00Z")
    assert [orjson.loads(line)["rule"] for line in early.stdout.splitlines()] == ["slow_response"]
