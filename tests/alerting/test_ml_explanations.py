"""An ML alert says why it fired in every channel's message: the outbox, the console, Slack, PagerDuty
(``custom_details``), e-mail and webhooks (real receivers against the local protocol server)."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa

from logwarden.alerting.notify.base import Outgoing
from logwarden.alerting.notify.console import ConsoleNotifier
from logwarden.alerting.notify.email import body_of
from logwarden.monitoring import load_rules
from logwarden.monitoring.engine import DetectorSet
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.testing.receivers import ProtocolServer
from tests.alerting.conftest import wait_for
from tests.monitoring.helpers import rec, table

NEW_ERROR = "Ledger write rejected: idempotency key reused"
WHY = f"new ERROR template '{NEW_ERROR}' (never seen before)"


def _templated(rows: list[dict]) -> pa.Table:
    ordered = sorted(rows, key=lambda r: r["timestamp"])
    out = table(ordered)
    out = out.append_column("template_id", pa.array([f"t-{r['message']}" for r in ordered], pa.string()))
    return out.append_column("template", pa.array([r["message"] for r in ordered], pa.string()))


def ml_alert():
    """The default file's new-error-pattern rule after its 30-minute warm-up, shown a new ERROR template."""
    spec = load_rules(ANOMALY_SCHEMA_PATH).by_name()["ml_new_error_pattern"]
    detectors = DetectorSet([spec])
    history = [rec(m * 60 + s, "pay", "INFO", "charged") for m in range(31) for s in (5, 35)]
    assert detectors.process("b0", _templated(history)) == []
    fired = detectors.process("b1", _templated([rec(31 * 60 + 5, "pay", "ERROR", NEW_ERROR)]))
    assert [a.rule for a in fired] == ["ml_new_error_pattern"]
    return fired[0]


def test_every_channel_says_why_an_ml_alert_fired(make_service, http_server, tmp_path):
    anomaly = ml_alert()
    assert anomaly.explanation["text"] == WHY
    assert anomaly.explanation["signals"][0]["signal"] == "new template"
    channels = ["pagerduty", "slack", "webhook", "dashboard"]
    service = make_service(
        {"pagerduty": {"routing_key": ProtocolServer.PD_ROUTING_KEY, "events_url": f"{http_server.url}/v2/enqueue"},
         "slack": {"webhook_url": f"{http_server.url}/services/T/B/X"},
         "webhook": {"url": f"{http_server.url}/hook"}},
        routing={"CRITICAL": channels, "HIGH": channels, "MEDIUM": channels, "LOW": channels},
        alerts_dir=tmp_path / "alerts",
    )
    service.dispatch([anomaly])
    trigger = wait_for(lambda: http_server.posts("/v2/enqueue"))[0]
    details = trigger["payload"]["custom_details"]
    assert details["why"] == WHY and details["signals"][0]["value"] == NEW_ERROR
    slack = wait_for(lambda: http_server.posts("/services/"))[0]
    blocks = [b["text"]["text"] for b in slack["attachments"][0]["blocks"] if b.get("text")]
    assert any(text.startswith("*Why:*") and NEW_ERROR in text for text in blocks)
    hook = wait_for(lambda: http_server.posts("/hook"))[0]
    assert hook["alerts"][0]["why"] == WHY and hook["alerts"][0]["explanation"]["signals"]
    outbox = wait_for(lambda: [orjson.loads(line) for line in (tmp_path / "alerts" / "outbox.jsonl").read_bytes()
                               .splitlines() if b"ml_new_error_pattern" in line])
    assert all(entry["explanation"]["text"] == WHY for entry in outbox)
    assert {entry["channel"] for entry in outbox if entry.get("channel")} >= {"dashboard"}

    mail = body_of(Outgoing(1, "email", "alert", [anomaly]))
    assert f"Why:       {WHY}" in mail
    console = io.StringIO()
    ConsoleNotifier(console).send(anomaly, "dashboard")
    assert f"· why: {WHY}" in console.getvalue()
    # the dashboard's alerts page: the alert history (API) carries it, the table shows it
    from logwarden.alerting.history import list_alerts
    from logwarden.dashboard.alerts import alert_rows

    listed = list_alerts(tmp_path / "alerts")
    assert [alert["why"] for alert in listed] == [WHY]
    assert alert_rows(listed, "all")["why"] == [WHY]


def test_rules_without_a_model_show_no_why_line():
    spec = load_rules(ANOMALY_SCHEMA_PATH).by_name()["slow_response"]
    anomaly = DetectorSet([spec]).process("b", table([rec(1, "web", duration_ms=7300.0)]))[0]
    console = io.StringIO()
    ConsoleNotifier(console).send(anomaly, "email")
    assert "why" not in console.getvalue() and "Why:" not in body_of(Outgoing(1, "email", "alert", [anomaly]))
