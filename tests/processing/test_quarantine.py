"""Quarantined spool batches are visible (issue 16): a reason file beside each, a Prometheus metric on the
API's ``/metrics`` (role read), a CRITICAL self-alert through the normal router, and
``logwarden spool failed list|show|retry`` (a retried batch is processed by the running processor)."""
from __future__ import annotations

import io
import time

import orjson
import requests
from prometheus_client import REGISTRY

from logwarden.alerting import ConsoleNotifier, build_alerting
from logwarden.api import ApiServer
from logwarden.cli import main
from logwarden.common.auth import AuthConfig, Authenticator
from logwarden.collector.spool import Spool
from logwarden.common.paths import DataDir
from logwarden.processing import pipeline
from logwarden.processing.pipeline import SpoolProcessor
from logwarden.processing.quarantine import Quarantine
from logwarden.selfalerts import QUARANTINE_RULE, quarantine_anomaly
from logwarden.storage import Lake, query
from tests.processing.batches import write_batch

GOOD, CORRUPT, FAILING = (f"{1_700_000_000_000 + n:013d}-test-{n:06d}" for n in (1, 2, 3))
READ_TOKEN, INGEST_TOKEN = "read-token-0123456789", "ingest-token-0123456789"
ROUTING = {"CRITICAL": ["pagerduty"], "HIGH": ["slack"], "MEDIUM": ["email"], "LOW": ["dashboard"]}


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def outbox(paths: DataDir) -> list[dict]:
    path = paths.alerts / "outbox.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def cli(capsys, *args: str) -> tuple[int, str]:
    status = main(list(args))
    return status, capsys.readouterr().out


def test_quarantine_metric_self_alert_and_spool_failed_list_show_retry(tmp_path, threaded_client, monkeypatch, capsys):
    paths = DataDir.at(tmp_path).create()
    write_batch(paths, GOOD)
    (paths.spool / f"{CORRUPT}.parquet").write_bytes(b"PAR1 not a parquet file at all")
    write_batch(paths, FAILING, size=7)
    real_commit = pipeline.commit_transformed

    def commit(spool_path, *args, **kwargs):
        if FAILING in spool_path:
            raise RuntimeError("simulated failure of every attempt")
        return real_commit(spool_path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "commit_transformed", commit)
    monkeypatch.setattr(pipeline, "MAX_ATTEMPTS", 2)
    alerts = build_alerting({"poll_interval": 0.05, "group_wait": 0}, ROUTING, paths.alerts,
                            console=ConsoleNotifier(io.StringIO()))
    alerts.start()
    announced = []

    def on_quarantine(entry):  # what the stack's wiring does (logwarden/stack.py)
        announced.append(entry)
        alerts.dispatch([quarantine_anomaly(entry)])

    processor = SpoolProcessor(threaded_client, paths, lambda output: None, on_quarantine=on_quarantine)
    api = ApiServer([], "127.0.0.1", 0, auth=Authenticator.from_config(AuthConfig.from_dict({"tokens": {
        READ_TOKEN: {"tenant": "team-a", "role": "read"}, INGEST_TOKEN: {"tenant": "team-a", "role": "ingest"}}})))
    api.start()
    try:
        processor.start()
        wait_for(lambda: Spool(paths.spool).depth() == 0)
        lake = Lake(paths.lake)
        assert lake.is_committed(GOOD) and not lake.is_committed(FAILING)

        # a reason file beside each quarantined batch; the unreadable one is not retried
        quarantine = Quarantine(paths.spool)
        entries = {entry.batch_id: entry for entry in quarantine.batches()}
        assert set(entries) == {CORRUPT, FAILING}
        assert (paths.spool / "failed" / f"{CORRUPT}.reason.json").exists()
        assert entries[CORRUPT].kind == "unreadable" and entries[CORRUPT].attempts == 1
        assert "magic bytes" in entries[CORRUPT].error and entries[CORRUPT].records is None
        assert entries[FAILING].kind == "failed" and entries[FAILING].attempts == 2
        assert "simulated failure" in entries[FAILING].error and entries[FAILING].records == 7

        # the metric, on the API's /metrics, for the read role only
        assert REGISTRY.get_sample_value("logwarden_spool_quarantined_batches") == 2
        url = f"{api.base_url}/metrics"
        page = requests.get(url, headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=10)
        assert page.status_code == 200 and "logwarden_spool_quarantined_batches 2.0" in page.text
        assert 'logwarden_spool_batches_quarantined_total{kind="unreadable"}' in page.text
        assert requests.get(url, headers={"Authorization": f"Bearer {INGEST_TOKEN}"}, timeout=10).status_code == 403
        assert requests.get(url, headers={"Authorization": "Bearer nobody-0123456789"}, timeout=10).status_code == 401

        # a CRITICAL self-alert per batch, through the router (CRITICAL -> pagerduty), for every tenant's operators
        wait_for(lambda: len(outbox(paths)) >= 2, timeout=20)
        fired = {line["key"]: line for line in outbox(paths)}
        assert set(fired) == {CORRUPT, FAILING}
        for line in fired.values():
            assert line["rule"] == QUARANTINE_RULE and line["severity"] == "CRITICAL"
            assert line["channel"] == "pagerduty" and line["status"] == "firing" and line["tenant"] == "*"

        # logwarden spool failed list | show | retry
        status, out = cli(capsys, "spool", "failed", "list", "--data-dir", str(tmp_path))
        assert status == 0 and CORRUPT in out and FAILING in out
        assert "unreadable: the spool file cannot be read as records" in out and "failed 2 times" in out
        status, out = cli(capsys, "spool", "failed", "show", FAILING, "--data-dir", str(tmp_path), "--records", "2")
        assert status == 0 and "simulated failure of every attempt" in out
        assert "first 2 record(s):" in out and '"message":"job 0 finished"' in out
        status, out = cli(capsys, "spool", "failed", "show", CORRUPT, "--data-dir", str(tmp_path))
        assert status == 0 and "cannot be read" in out
        assert cli(capsys, "spool", "failed", "show", "nope", "--data-dir", str(tmp_path))[0] == 1

        monkeypatch.setattr(pipeline, "commit_transformed", real_commit)  # the cause is fixed
        status, out = cli(capsys, "spool", "failed", "retry", FAILING, "--data-dir", str(tmp_path))
        assert status == 0 and f"moved {FAILING} back into the spool" in out
        wait_for(lambda: lake.is_committed(FAILING))  # the running processor took it
        assert query(lake, "SELECT count(*) FROM logs WHERE batch_id = ?", [FAILING]) == [(7,)]
        assert REGISTRY.get_sample_value("logwarden_spool_quarantined_batches") == 1
        wait_for(lambda: any(e.batch_id == FAILING and e.status == "resolved" for e in announced), timeout=20)
        wait_for(lambda: any(line["key"] == FAILING and line["status"] == "resolved" for line in outbox(paths)),
                 timeout=20)
        assert [entry.batch_id for entry in quarantine.batches()] == [CORRUPT]
    finally:
        processor.stop()
        api.stop()
        alerts.close(timeout=0.5)
