"""End to end: logs in over HTTP and TCP, alerts out, through every layer, on real Dask and Ray processes."""
from __future__ import annotations

import json
import time
import subprocess
import sys

import orjson
import pytest

from logwarden.storage import Lake, query
from logwarden.storage.journal import JOURNAL
from tests.e2e.cluster import StackProcess
from tests.e2e.traffic import incident_records, ndjson, normal_records, time_chunks

pytestmark = pytest.mark.cluster
SEED_RULES = {"error_spike", "service_down", "slow_response", "suspicious_user", "db_connection_failure"}
EXPECTED_KEYS = {
    ("error_spike", "HIGH", "payment-service", "slack"),
    ("service_down", "CRITICAL", "inventory-service", "pagerduty"),
    ("slow_response", "MEDIUM", "api-gateway", "email"),
    ("suspicious_user", "MEDIUM", "u-666", "email"),
    ("db_connection_failure", "CRITICAL", "orders-service", "pagerduty"),
}


def lake_count(stack: StackProcess) -> int:
    rows = query(Lake(stack.data_dir / "lake"), "SELECT count(DISTINCT record_id) FROM logs")
    return rows[0][0] if rows else 0


def send_incidents(stack: StackProcess, pause: float = 0.0) -> int:
    """In event-time order, as live services would: 20-second slices rotating over HTTP NDJSON, an HTTP
    JSON array and TCP NDJSON, ``pause`` seconds apart; returns how many records were sent."""
    records = incident_records()
    for n, chunk in enumerate(time_chunks(records)):
        time.sleep(pause)
        if n % 3 == 0:
            assert stack.post(ndjson(chunk))["accepted"] == len(chunk)
        elif n % 3 == 1:
            assert stack.post(orjson.dumps(chunk), "application/json")["accepted"] == len(chunk)
        else:
            stack.send_tcp([orjson.dumps(r) for r in chunk])
            stack.wait_for(lambda: stack.accepted("tcp") >= sum(map(len, time_chunks(records)[2:n + 1:3])),
                           timeout=30, what="the TCP slice to be acknowledged", interval=0.05)
    return len(records)


def assert_all_five_alerts(stack: StackProcess) -> None:
    def firing():
        return {(a["rule"], a["severity"], a["key"], a["channel"]) for a in stack.outbox() if a["status"] == "firing"}

    stack.wait_for(lambda: firing() >= EXPECTED_KEYS, timeout=90, what="an alert of each of the five rules")
    assert firing() == EXPECTED_KEYS  # and nothing else fired
    for alert in stack.outbox():
        assert {"rule", "severity", "key", "window_start", "window_end", "value", "channel"} <= alert.keys()


def run_incidents(stack: StackProcess) -> None:
    sent = send_incidents(stack)
    assert_all_five_alerts(stack)
    stack.wait_for(lambda: lake_count(stack) == sent, timeout=60, what=f"{sent} records in the lake")
    lake = Lake(stack.data_dir / "lake")
    services = {s for (s,) in query(lake, "SELECT DISTINCT service FROM logs")}
    assert services == {"api-gateway", "auth-service", "inventory-service", "payment-service", "orders-service"}
    assert stack.accepted("tcp") > 0 and stack.accepted("http") > 0
    assert query(lake, "SELECT count(*) FROM logs WHERE user_id = 'u-666' AND level = 'ERROR'") == [(50,)]
    teams = dict(query(lake, "SELECT service, any_value(team) FROM logs GROUP BY 1"))
    assert teams["payment-service"] == "payments" and teams["orders-service"] == "unassigned"
    assert query(lake, "SELECT count(*) FROM logs WHERE template_id IS NULL") == [(0,)]


def test_http_and_tcp_logs_fire_all_five_rules_on_local_dask(tmp_path, ray_head):
    stack = StackProcess(tmp_path / "data", ray_head).start()
    try:
        run_incidents(stack)
        assert stack.stop() == 0
        assert stack.stray_processes() == []
    finally:
        stack.kill()


def test_cluster_mode_on_dask_scheduler_and_worker(tmp_path, ray_head, dask_pair):
    stack = StackProcess(tmp_path / "data", ray_head, ["--dask-scheduler", dask_pair.address]).start()
    try:
        run_incidents(stack)
        assert stack.stop() == 0
    finally:
        stack.kill()


def test_normal_traffic_raises_no_alert(tmp_path, ray_head):
    stack = StackProcess(tmp_path / "data", ray_head).start()
    try:
        records = normal_records()
        for start in range(0, len(records), 2000):
            chunk = records[start:start + 2000]
            assert stack.post(ndjson(chunk))["accepted"] == len(chunk)
        stack.wait_for(lambda: lake_count(stack) == len(records), timeout=90, what="all records in the lake")
        assert stack.stop() == 0  # stopping drains the spool through the detectors
        assert stack.outbox() == []
    finally:
        stack.kill()


def test_bad_records_are_answered_and_dead_lettered_while_good_ones_flow(tmp_path, ray_head):
    stack = StackProcess(tmp_path / "data", ray_head).start()
    try:
        good = incident_records()[:3]
        bad_line = b'{"timestamp": "2026-11-22T10:00:00Z", "level": "LOUD", "service": "x", "message": "m"}'
        body = ndjson(good[:2]) + b"\n" + bad_line + b"\n{not json\n" + ndjson(good[2:])
        answer = stack.post(body)
        assert (answer["accepted"], answer["rejected"]) == (3, 2)
        assert [(e["index"], e["field"]) for e in answer["errors"]] == [(2, "level"), (3, "")]
        stack.wait_for(lambda: lake_count(stack) == 3, timeout=60, what="the 3 good records in the lake")
        letters = [orjson.loads(line) for p in (stack.data_dir / "deadletter").glob("*.jsonl")
                   for line in p.read_bytes().splitlines()]
        assert sorted(letter["reason"] for letter in letters) == ["malformed", "schema_enum"]
        assert stack.stop() == 0
    finally:
        stack.kill()


def test_replay_into_a_running_stack(tmp_path, ray_head, shared_data):
    stack = StackProcess(tmp_path / "data", ray_head).start()
    try:
        source = shared_data / "formats" / "cloudtrail"
        text = tmp_path / "billing.log"
        text.write_text("".join(f"2026-11-22 10:00:{i % 60:02d},000 ERROR [main] Billing - charge {i} failed\n"
                                for i in range(5000)))
        native = tmp_path / "checkout.ndjson"
        record = {"timestamp": "2026-11-22T10:00:00Z", "level": "INFO", "service": "checkout", "message": "ok"}
        wide = {**record, **{f"field{i}": i for i in range(60)}}  # 64 fields
        native.write_bytes(json.dumps(record).encode() + b"\n" + json.dumps(wide).encode() + b"\n")
        config = tmp_path / "replay.yaml"
        config.write_text("collector:\n  max_fields: 50\n")
        done = subprocess.run([sys.executable, "-m", "logwarden", "replay", str(source), str(text), str(native),
                               "--data-dir", str(stack.data_dir), "--tenant", "acme", "--config", str(config)],
                              capture_output=True, text=True, timeout=300, env=stack.env)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout[done.stdout.index("{"):])
        assert summary["rejected_by_reason"] == {"too_many_fields": 1}  # the limit of --config
        assert summary["formats"].get("cloudtrail", 0) > 0
        assert summary["parsed_on"].startswith("Dask workers of tcp://")  # the running stack's workers parsed
        assert "starting processing" not in done.stdout  # the running stack did the work
        lake = Lake(stack.data_dir / "lake")
        assert query(lake, "SELECT count(*) FROM logs")[0][0] == summary["accepted"]
        assert query(lake, "SELECT DISTINCT tenant FROM logs") == [("acme",)]
        assert query(lake, "SELECT count(*) FROM logs WHERE service = 'billing' AND level = 'ERROR'") == [(5000,)]
        assert query(lake, "SELECT count(*) FROM logs WHERE template_id IS NULL") == [(0,)]
        assert stack.stop() == 0
    finally:
        stack.kill()


MIN_FILES = 4


def test_small_files_are_compacted_while_traffic_flows(tmp_path, ray_head):
    config = tmp_path / "logwarden.yaml"
    config.write_text(f"storage:\n  compaction: {{min_files: {MIN_FILES}, settle: 1s, grace: 2s, interval: 1s}}\n")
    stack = StackProcess(tmp_path / "data", ray_head, ["--config", str(config)]).start()
    try:
        records = normal_records(minutes=12)
        for start in range(0, len(records), 200):  # 8 spool batches, one file per service each
            chunk = records[start:start + 200]
            assert stack.post(ndjson(chunk))["accepted"] == len(chunk)
            time.sleep(1.1)
        lake = Lake(stack.data_dir / "lake")

        def merged_and_complete():
            names = [p.name for p in lake.logs.rglob("*.parquet")]
            return any(n.startswith("compacted-") for n in names) and \
                query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(len(records),) * 2]

        stack.wait_for(merged_and_complete, timeout=60, what="merged files and every record once")

        def replaced_files_gone() -> bool:
            # A merge takes every settled small file of its partition (at least MIN_FILES), so how many are
            # left over at the end depends on timing; fewer than MIN_FILES are never merged.
            partitions = [folder for folder in lake.logs.glob("*/*") if folder.is_dir()]
            return all(not (folder / JOURNAL).exists()
                       and any(p.name.startswith("compacted-") for p in folder.glob("*.parquet"))
                       and sum(not p.name.startswith("compacted-") for p in folder.glob("*.parquet")) < MIN_FILES
                       for folder in partitions)

        stack.wait_for(replaced_files_gone, timeout=60, what="the replaced files deleted after the grace period")
        assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(len(records),) * 2]
        assert stack.stop() == 0
    finally:
        stack.kill()

