"""Each channel against a local server speaking its protocol, through the real client library."""

from __future__ import annotations

import pytest

from logwarden.alerting import history
from logwarden.monitoring.anomaly import RESOLVED
from tests.alerting.conftest import anomaly, wait_for
from logwarden.testing.receivers import ProtocolServer, SmtpServer


def pagerduty(server: ProtocolServer, **extra) -> dict:
    return {
        "pagerduty": {"routing_key": server.PD_ROUTING_KEY, "events_url": f"{server.url}/v2/enqueue", **extra}
    }


def test_pagerduty_triggers_with_dedup_key_and_resolves_when_the_anomaly_clears(make_service, http_server):
    service = make_service(pagerduty(http_server))
    service.dispatch(
        [
            anomaly(
                "service_down", key="billing", severity="CRITICAL", kind="flatline", value=0, threshold="< 1"
            )
        ]
    )
    events = wait_for(lambda: http_server.posts("/v2/enqueue"))
    trigger = events[0]
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == ProtocolServer.PD_ROUTING_KEY
    assert trigger["dedup_key"] == "service_down:billing"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "billing"
    assert "service_down" in trigger["payload"]["summary"]
    details = trigger["payload"]["custom_details"]
    assert details["action"] and details["samples"] and details["window"]
    assert trigger["links"][0]["href"].startswith("http://127.0.0.1:5006/alerts?alert=")

    service.dispatch(
        [anomaly("service_down", key="billing", severity="CRITICAL", status=RESOLVED, minute=20)]
    )
    events = wait_for(lambda: (e := http_server.posts("/v2/enqueue")) and len(e) >= 2 and e)
    assert events[1] == {
        "event_action": "resolve",
        "dedup_key": "service_down:billing",
        "routing_key": ProtocolServer.PD_ROUTING_KEY,
    }
    assert service.wait_idle(3)  # the server saw the request before the worker recorded the answer
    states = {d["state"] for a in history.list_alerts(service.store) for d in a["deliveries"]}
    assert states == {"sent"}


def test_pagerduty_severity_mapping_is_configurable(make_service, http_server):
    service = make_service(
        pagerduty(http_server, severity_map={"HIGH": "warning"}),
        routing={"CRITICAL": ["pagerduty"], "HIGH": ["pagerduty"], "MEDIUM": [], "LOW": []},
    )
    service.dispatch([anomaly(severity="HIGH"), anomaly("db_connection_failure", severity="CRITICAL")])
    events = wait_for(lambda: (e := http_server.posts("/v2/enqueue")) and len(e) == 2 and e)
    assert {e["dedup_key"]: e["payload"]["severity"] for e in events} == {
        "error_spike:api": "warning",
        "db_connection_failure:api": "critical",
    }


def test_pagerduty_refusal_is_dead_lettered_without_retrying(make_service, http_server):
    service = make_service(
        {"pagerduty": {"routing_key": "wrong", "events_url": f"{http_server.url}/v2/enqueue"}}
    )
    service.dispatch([anomaly(severity="CRITICAL")])
    dead = wait_for(lambda: history.dead_letters(service.store))
    assert dead[0]["channel"] == "pagerduty" and dead[0]["attempts"] == 1
    assert "400" in dead[0]["last_error"]
    assert len(http_server.posts("/v2/enqueue")) == 1


def test_slack_incoming_webhook_block_kit_message(make_service, http_server):
    service = make_service({"slack": {"webhook_url": f"{http_server.url}/services/T000/B000/XXXX"}})
    service.dispatch([anomaly(severity="HIGH", key="checkout")])
    body = wait_for(lambda: http_server.posts("/services/"))[0]
    assert body["text"] == "[HIGH] error_spike · checkout"
    attachment = body["attachments"][0]
    assert attachment["color"] == "#E65100"
    blocks = attachment["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[HIGH] error_spike · checkout"},
    }
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for expected in (
        "*Service*\ncheckout",
        "*Severity*\nHIGH",
        "150 events in 5m",
        "150 against threshold &gt; 100",
        "2026-03-02 09:55:00–10:00:00 UTC",
        "error_spike (frequency)",
    ):
        assert expected in fields
    text = str(blocks)
    assert "Action required:* Investigate the error burst" in text
    assert "ERROR checkout: upstream timeout #2" in text
    button = blocks[-1]["elements"][0]
    assert button["type"] == "button" and button["url"].startswith("http://127.0.0.1:5006/alerts?alert=")


def test_slack_web_api_chat_post_message_with_bot_token(make_service, http_server):
    service = make_service(
        {
            "slack": {
                "token": ProtocolServer.SLACK_TOKEN,
                "channel": "#alerts",
                "base_url": f"{http_server.url}/api/",
            }
        }
    )
    service.dispatch([anomaly(severity="HIGH")])
    request = wait_for(lambda: [r for r in http_server.requests if r["path"] == "/api/chat.postMessage"])[0]
    assert request["headers"]["Authorization"] == f"Bearer {ProtocolServer.SLACK_TOKEN}"
    body = request["body"]
    assert body["channel"] == "#alerts"
    attachments = body["attachments"]
    if isinstance(attachments, str):  # slack-sdk serialises attachments to a JSON string
        import json

        attachments = json.loads(attachments)
    assert attachments[0]["blocks"][0]["type"] == "header"
    wait_for(lambda: history.list_alerts(service.store)[0]["deliveries"][0]["state"] == "sent")


def test_slack_invalid_token_goes_to_dead_letter_at_once(make_service, http_server):
    service = make_service(
        {"slack": {"token": "xoxb-revoked", "channel": "#alerts", "base_url": f"{http_server.url}/api/"}}
    )
    service.dispatch([anomaly(severity="HIGH")])
    dead = wait_for(lambda: history.dead_letters(service.store))
    assert "invalid_auth" in dead[0]["last_error"] and dead[0]["attempts"] == 1


def test_email_with_starttls_and_auth(make_service, smtp_server: SmtpServer, tls_files):
    service = make_service(
        {
            "email": {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_server.port,
                "security": "starttls",
                "username": SmtpServer.USER,
                "password": SmtpServer.PASSWORD,
                "ca_file": str(tls_files[0]),
                "from": "logwarden@example.org",
                "to": ["oncall@example.org", "team@example.org"],
            }
        },
        routing={"CRITICAL": ["email"], "HIGH": ["email"], "MEDIUM": ["email"], "LOW": []},
    )
    service.dispatch([anomaly(severity="HIGH", key="payments")])
    mail = wait_for(lambda: smtp_server.messages)[0]
    assert mail["Subject"] == "[logwarden] [HIGH] error_spike · payments"
    assert mail["To"] == "oncall@example.org, team@example.org"
    body = mail.get_payload(decode=True).decode()
    for expected in (
        "Type:      error_spike (frequency)",
        "Service:   payments",
        "Severity:  HIGH",
        "Count:     150 events in 5m",
        "Time:      2026-03-02T10:00:00Z",
        "Action:    Investigate the error burst",
        "ERROR payments: upstream timeout #0",
        "Dashboard: http://127.0.0.1:5006/alerts?alert=",
    ):
        assert expected in body
    assert smtp_server.handler.envelopes[0] == (
        "logwarden@example.org",
        ["oncall@example.org", "team@example.org"],
    )


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_over_implicit_tls(make_service, tls_files):
    server = SmtpServer(*tls_files, mode="ssl").start()
    try:
        service = make_service(
            {
                "email": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": server.port,
                    "security": "ssl",
                    "username": SmtpServer.USER,
                    "password": SmtpServer.PASSWORD,
                    "ca_file": str(tls_files[0]),
                    "from": "a@example.org",
                    "to": ["b@example.org"],
                }
            },
            routing={"CRITICAL": [], "HIGH": ["email"], "MEDIUM": [], "LOW": []},
        )
        service.dispatch([anomaly(severity="HIGH")])
        assert wait_for(lambda: server.messages)[0]["Subject"].startswith("[logwarden] [HIGH]")
    finally:
        server.stop()


def test_email_wrong_password_is_dead_lettered(make_service, smtp_server, tls_files):
    service = make_service(
        {
            "email": {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_server.port,
                "username": SmtpServer.USER,
                "password": "wrong",
                "ca_file": str(tls_files[0]),
                "from": "a@example.org",
                "to": ["b@example.org"],
            }
        },
        routing={"CRITICAL": [], "HIGH": ["email"], "MEDIUM": [], "LOW": []},
    )
    service.dispatch([anomaly(severity="HIGH")])
    dead = wait_for(lambda: history.dead_letters(service.store))
    assert "authentication" in dead[0]["last_error"].lower() and not smtp_server.messages


def test_medium_alerts_batched_into_a_digest(make_service, smtp_server, tls_files):
    email = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "username": SmtpServer.USER,
        "password": SmtpServer.PASSWORD,
        "ca_file": str(tls_files[0]),
        "from": "a@example.org",
        "to": ["b@example.org"],
        "digest": {"every": "1.5s", "max_alerts": 4},
    }
    service = make_service({"email": email})
    service.dispatch([anomaly("slow_response", key=f"svc{i}", severity="MEDIUM") for i in range(3)])
    assert not smtp_server.messages  # waiting for the digest interval
    mail = wait_for(lambda: smtp_server.messages, timeout=5)[0]
    assert mail["Subject"] == "[logwarden] digest: 3 alerts (3 MEDIUM)"
    body = mail.get_payload(decode=True).decode()
    assert all(f"Service:   svc{i}" in body for i in range(3))
    # past max_alerts, the digest goes at once
    service.dispatch([anomaly("slow_response", key=f"burst{i}", severity="MEDIUM") for i in range(5)])
    wait_for(lambda: len(smtp_server.messages) == 2, timeout=1.0)
    assert smtp_server.messages[1]["Subject"] == "[logwarden] digest: 5 alerts (5 MEDIUM)"


def test_generic_webhook(make_service, http_server):
    service = make_service(
        {"webhook": {"url": f"{http_server.url}/hook", "headers": {"X-Token": "abc"}}},
        routing={"CRITICAL": ["webhook"], "HIGH": ["webhook"], "MEDIUM": [], "LOW": []},
    )
    service.dispatch([anomaly(severity="HIGH")])
    request = wait_for(lambda: [r for r in http_server.requests if r["path"] == "/hook"])[0]
    assert request["headers"]["X-Token"] == "abc"
    alert = request["body"]["alerts"][0]
    assert alert["dedup_key"] == "error_spike:api" and alert["service"] == "api" and alert["alert_id"] == 1
