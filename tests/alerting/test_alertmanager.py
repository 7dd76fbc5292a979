"""Alertmanager as a receiver, against the real ``prometheus-alertmanager`` (skipped when absent)."""

from __future__ import annotations

import pytest
import requests

from logwarden.monitoring.anomaly import RESOLVED
from tests.alerting.conftest import anomaly, wait_for


@pytest.fixture
def alertmanager(start_alertmanager) -> str:
    return start_alertmanager({"route": {"receiver": "blackhole"}, "receivers": [{"name": "blackhole"}]})


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
