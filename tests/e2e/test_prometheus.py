"""End to end (issue 17): a real Prometheus scrapes a running ``logwarden up`` with the configuration
``logwarden prometheus-config`` prints (bearer token file included), and the series of every layer read
back through Prometheus' HTTP API hold sane values."""
from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time

import orjson
import pytest
import requests

from logwarden.testing.cluster import free_port, terminate
from logwarden.testing.receivers import ProtocolServer
from tests.e2e.cluster import StackProcess
from tests.e2e.traffic import incident_records, ndjson, time_chunks

pytestmark = pytest.mark.cluster
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    if not shutil.which(PROMETHEUS):
        pytest.skip("prometheus is not installed (Debian package `prometheus`; "
                    "environment/install-test-packages.sh installs it)")
    return PROMETHEUS


class Prometheus:
    """``prometheus`` on 127.0.0.1 with a configuration file, its storage in a temp folder."""

    def __init__(self, binary: str, config: str, storage: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(f"{storage}.log", "wb")
        self.popen = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
                                       f"--web.listen-address=127.0.0.1:{self.port}"],
                                      stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def query(self, expr: str) -> dict[str, float]:
        """Instant query: the value of each series, keyed by its labels as text."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer
        return {orjson.dumps(r["metric"], option=orjson.OPT_SORT_KEYS).decode(): float(r["value"][1])
                for r in answer["data"]["result"]}

    def value(self, expr: str) -> float | None:
        """The value of an expression with one series (None when it has none)."""
        found = self.query(expr)
        assert len(found) <= 1, (expr, found)
        return next(iter(found.values()), None)

    def wait(self, expr: str, check, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            assert self.popen.poll() is None, "prometheus exited"
            try:
                value = self.value(expr)
            except requests.ConnectionError:
                value = None
            if value is not None and check(value):
                return value
            time.sleep(0.5)
        targets = requests.get(f"{self.url}/api/v1/targets", timeout=10).text
        raise AssertionError(f"{expr} = {value} after {timeout}s; targets: {targets}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            import psutil

            terminate([psutil.Process(self.popen.pid)])
        self.log.close()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, ray_head, prometheus_binary):
    """A stack with a token and a Slack channel, its incidents sent and processed, and a Prometheus
    scraping it every second with the printed configuration."""
    root = tmp_path_factory.mktemp("prom")
    slack = ProtocolServer()
    slack.up()
    token = secrets.token_hex(16)
    config = root / "logwarden.yaml"
    config.write_text(f'auth:\n  tokens:\n    "{token}": {{tenant: "*", role: admin}}\n'
                      f'alerting:\n  slack: {{webhook_url: "{slack.url}/services/T0/B0/X"}}\n')
    stack = StackProcess(root / "data", ray_head, ["--config", str(config)], ingest_token=token, read_token=token)
    prometheus = None
    try:
        stack.start()
        records = incident_records()
        for chunk in time_chunks(records):
            assert stack.post(ndjson(chunk))["accepted"] == len(chunk)
        printed = subprocess.run([sys.executable, "-m", "logwarden", "prometheus-config", "--data-dir",
                                  str(stack.data_dir), "--scrape-interval", "1s"],
                                 capture_output=True, text=True, timeout=60, env=stack.env)
        assert printed.returncode == 0, printed.stderr
        assert token not in printed.stdout and "credentials_file" in printed.stdout
        (root / "prometheus.yml").write_text(printed.stdout)
        prometheus = Prometheus(prometheus_binary, str(root / "prometheus.yml"), str(root / "tsdb"))
        prometheus.wait("sum(up)", lambda v: v == 2, timeout=60)
        prometheus.wait("logwarden_processing_records_total", lambda v: v == len(records), timeout=90)
        prometheus.wait('sum(logwarden_alert_delivery_attempts_total{channel="slack",outcome="sent"})',
                        lambda v: v >= 1, timeout=90)
        yield prometheus, stack, len(records)
    finally:
        if prometheus is not None:
            prometheus.stop()
        try:
            assert stack.stop() == 0
        finally:
            stack.kill()
            slack.down()


def test_prometheus_config_has_a_job_per_process_with_the_token_file(scraped):
    prometheus, stack, _ = scraped
    jobs = prometheus.query("up")
    assert sorted(orjson.loads(labels)["job"] for labels in jobs) == ["logwarden-collector", "logwarden-driver"]
    assert set(jobs.values()) == {1.0}
    token_file = stack.data_dir / "run" / "prometheus.token"
    assert token_file.stat().st_mode & 0o777 == 0o600 and token_file.read_text() == stack.read_token


def test_collector_series(scraped):
    prometheus, _, sent = scraped
    assert prometheus.value("sum(logwarden_collector_records_accepted_total)") == sent
    assert prometheus.value("sum(logwarden_collector_records_rejected_total) or vector(0)") == 0
    assert prometheus.value("logwarden_collector_batch_flushes_total") >= 1
    assert prometheus.value("logwarden_collector_wal_fsyncs_total") >= 1
    assert prometheus.value('sum(logwarden_collector_request_seconds_count)') >= 1
    assert prometheus.value("logwarden_collector_spool_depth") >= 0
    assert 10 * MB < prometheus.value('process_resident_memory_bytes{job="logwarden-collector"}') < 4096 * MB


def test_processing_and_spool_series(scraped):
    prometheus, _, sent = scraped
    batches = prometheus.value("logwarden_processing_batches_total")
    assert batches >= 1
    assert prometheus.value("logwarden_processing_records_in_total") == sent
    assert prometheus.value("logwarden_processing_batch_seconds_count") == batches
    assert 0 < prometheus.value("logwarden_processing_batch_seconds_sum") / batches < 60
    assert prometheus.value("logwarden_processing_lag_seconds_count") == batches
    # the incidents are stamped 30 to 14 minutes in the past
    assert 600 < prometheus.value("logwarden_processing_event_lag_seconds") < 3 * 3600
    assert prometheus.value("time() - logwarden_processing_last_batch_timestamp_seconds") < 600
    assert prometheus.value("logwarden_spool_depth_batches") == 0
    assert prometheus.value("logwarden_spool_oldest_batch_age_seconds") == 0
    assert prometheus.value("logwarden_spool_quarantined_batches") == 0


def test_lake_series(scraped):
    prometheus, _, _ = scraped
    batches = prometheus.value("logwarden_processing_batches_total")
    assert prometheus.wait('logwarden_lake_files{table="logs"}', lambda v: v >= 1, timeout=45) >= 1
    assert prometheus.value('logwarden_lake_bytes{table="logs"}') > 1000
    assert prometheus.value('logwarden_lake_files{table="aggregates"}') >= 1
    assert prometheus.wait("logwarden_lake_committed_batches", lambda v: v == batches, timeout=45) == batches
    assert prometheus.value("logwarden_lake_compaction_runs_total") >= 0


def test_detector_series(scraped):
    prometheus, _, sent = scraped
    assert prometheus.value("logwarden_detector_batches_total") == prometheus.value(
        "logwarden_processing_batches_total")
    assert prometheus.value("logwarden_detector_records_total") == sent
    lags = prometheus.query("logwarden_detector_lag_seconds")
    assert {orjson.loads(k)["rule"] for k in lags} >= {"error_spike", "service_down", "slow_response"}
    assert all(0 <= v < 3 * 3600 for v in lags.values())
    assert prometheus.value('logwarden_detector_late_events_total{rule="error_spike"}') >= 0
    assert prometheus.value('sum(logwarden_detector_anomalies_total{rule="error_spike",status="firing"})') >= 1
    assert prometheus.value("logwarden_detector_actors_unavailable") == 0


def test_alerting_and_driver_series(scraped):
    prometheus, _, _ = scraped
    assert prometheus.value('sum(logwarden_alerts_by_rule_total{rule="error_spike",severity="HIGH"})') >= 1
    assert prometheus.value('sum(logwarden_alerts_total{severity="CRITICAL"})') >= 1
    assert prometheus.value('sum(logwarden_alert_delivery_attempts_total{channel="slack",outcome="sent"})') >= 1
    assert prometheus.value('sum(logwarden_alert_outbox_depth{channel="slack"})') is not None  # the series exists
    assert prometheus.value('logwarden_alert_channel_failing_seconds{channel="slack"}') == 0
    assert prometheus.value('logwarden_alert_circuit_open{channel="slack"}') == 0
    assert prometheus.value("logwarden_data_dir_free_bytes") > 10 * MB
    assert prometheus.value("logwarden_dask_workers") == prometheus.value("logwarden_dask_workers_expected") == 2
    assert prometheus.value("sum(logwarden_self_alerts_firing)") == 0
    assert 50 * MB < prometheus.value('process_resident_memory_bytes{job="logwarden-driver"}') < 8192 * MB
