"""Alertmanager as a receiver, against the real ``prometheus-alertmanager`` (skipped when absent)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from logwarden.monitoring.anomaly import RESOLVED
from tests.alerting.conftest import anomaly, wait_for
from logwarden.testing.cluster import free_port

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def alertmanager(tmp_path):
    if BINARY is None:
        pytest.skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    log = open(tmp_path / "alertmanager.log", "wb")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"{url}/-/ready", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(ready, timeout=15, interval=0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_alerts_posted_to_alertmanager_and_resolved(make_service, alertmanager):
    service = make_service(
        {"alertmanager": {"url": alertmanager}},
        routing={"CRITICAL": ["alertmanager"], "HIGH": ["alertmanager"], "MEDIUM": [], "LOW": []},
    )
    service.dispatch([anomaly("db_connection_failure", key="orders", severity="CRITICAL")])

    def alerts() -> list[dict]:
        return requests.get(f"{alertmanager}/api/v2/alerts", timeout=2).json()

    [alert] = wait_for(alerts, timeout=10)
    assert alert["labels"] == {
        "alertname": "db_connection_failure",
        "key": "orders",
        "service": "orders",
        "severity": "critical",
        "source": "logwarden",
    }
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["action"] == "Investigate the error burst of the service."
    assert alert["generatorURL"].startswith("http://127.0.0.1:5006/alerts?alert=")
    service.dispatch(
        [anomaly("db_connection_failure", key="orders", severity="CRITICAL", status=RESOLVED, minute=30)]
    )
    wait_for(
        lambda: (
            not requests.get(f"{alertmanager}/api/v2/alerts", params={"active": "true"}, timeout=2).json()
        ),
        timeout=10,
    )
