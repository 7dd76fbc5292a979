"""Anomalies from the real detector engine and rules file, through alerting to PagerDuty and Slack."""

from __future__ import annotations

from logwarden.alerting import history
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.monitoring import load_rules
from logwarden.monitoring.engine import DetectorSet
from tests.alerting.conftest import wait_for
from logwarden.testing.receivers import ProtocolServer
from tests.monitoring.helpers import rec, table

US = 1_000_000


def test_db_failures_page_then_resolve_and_slow_requests_post_to_slack(make_service, http_server):
    rules = load_rules(ANOMALY_SCHEMA_PATH)
    detectors = DetectorSet(list(rules.by_name().values()))
    service = make_service(
        {
            "pagerduty": {
                "routing_key": ProtocolServer.PD_ROUTING_KEY,
                "events_url": f"{http_server.url}/v2/enqueue",
            },
            "slack": {"webhook_url": f"{http_server.url}/services/T/B/X"},
        },
        routing={**rules.routing, "MEDIUM": ["slack"]},
    )
    records = [
        rec(
            i,
            service="orders",
            level="ERROR",
            message="database connection refused",
            error_code="DB_CONNECTION_FAILED",
        )
        for i in range(12)
    ] + [rec(20, service="web", level="INFO", message="GET /cart", duration_ms=7300)]
    anomalies = detectors.process("batch-1", table(records))
    assert {a.rule for a in anomalies} == {"db_connection_failure", "slow_response"}
    service.dispatch(anomalies)
    trigger = wait_for(lambda: http_server.posts("/v2/enqueue"))[0]
    assert trigger["dedup_key"] == "db_connection_failure:orders"
    assert trigger["payload"]["source"] == "orders" and trigger["payload"]["severity"] == "critical"
    assert "database connection refused" in trigger["payload"]["custom_details"]["samples"][0]
    slack = wait_for(lambda: http_server.posts("/services/"))[0]
    assert slack["text"] == "[MEDIUM] slow_response · web"
    # event time moves on without failures: the detector resolves, PagerDuty is told
    newest = max(r["timestamp"] for r in records)
    resolved = detectors.advance(int(newest.timestamp() * US) + 3600 * US)
    assert any(a.status == "resolved" and a.rule == "db_connection_failure" for a in resolved)
    service.dispatch(resolved)
    wait_for(lambda: any(e["event_action"] == "resolve" for e in http_server.posts("/v2/enqueue")))
    stored = history.list_alerts(service.store, rule="db_connection_failure")
    assert [a["status"] for a in stored] == ["resolved", "firing"] and stored[1]["resolved_at"] is not None
