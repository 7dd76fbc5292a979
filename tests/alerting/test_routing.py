"""Routing: severity and per-rule channels, business hours (hold or escalate, in a time zone),
silences, escalation of unacknowledged alerts, acknowledgement."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import orjson

from logwarden.alerting import history
from logwarden.alerting.config import parse_alerting
from logwarden.alerting.dispatch import is_open, next_opening, routes_for
from logwarden.monitoring.anomaly import RESOLVED
from tests.alerting.conftest import ROUTING, anomaly, wait_for
from logwarden.testing.receivers import ProtocolServer

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_business_hours_in_a_time_zone_across_dst():
    config = parse_alerting(
        {
            "business_hours": {
                "timezone": "Europe/Paris",
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "start": "09:00",
                "end": "18:00",
            }
        }
    )
    hours = config.business_hours
    paris = ZoneInfo("Europe/Paris")
    assert is_open(hours, datetime(2026, 3, 27, 8, 30, tzinfo=timezone.utc))  # Fri 09:30 CET
    assert not is_open(hours, datetime(2026, 3, 27, 17, 0, tzinfo=timezone.utc))  # Fri 18:00 CET
    assert not is_open(hours, datetime(2026, 3, 28, 10, 0, tzinfo=timezone.utc))  # Saturday
    opening = next_opening(hours, datetime(2026, 3, 27, 17, 0, tzinfo=timezone.utc))
    assert opening == datetime(2026, 3, 30, 9, 0, tzinfo=paris)  # Monday, after the DST change
    assert opening.astimezone(timezone.utc).hour == 7  # CEST is UTC+2
    night = parse_alerting(
        {"business_hours": {"timezone": "UTC", "days": ["mon"], "start": "22:00", "end": "06:00"}}
    ).business_hours
    assert is_open(night, datetime(2026, 3, 30, 23, 0, tzinfo=timezone.utc))  # Monday night
    assert is_open(night, datetime(2026, 3, 31, 5, 0, tzinfo=timezone.utc))  # …until Tuesday 06:00
    assert not is_open(night, datetime(2026, 3, 31, 23, 0, tzinfo=timezone.utc))


def test_after_hours_routes_hold_or_escalate():
    config = parse_alerting(
        {
            "business_hours": {"timezone": "America/New_York", "start": "09:00", "end": "17:00"},
            "after_hours": [
                {"severity": "HIGH", "channel": "slack", "action": "escalate", "escalate_to": ["pagerduty"]},
                {"channel": "email", "action": "hold"},
            ],
        }
    )
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=timezone.utc).timestamp()
    tuesday = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc).timestamp()  # 11:00 in New York
    high = anomaly(severity="HIGH")
    assert [r.channel for r in routes_for(high, ROUTING, config, tuesday)] == ["slack"]
    [route] = routes_for(high, ROUTING, config, saturday)
    assert (route.channel, route.escalated_from) == ("pagerduty", "slack")
    [held] = routes_for(anomaly(severity="MEDIUM"), ROUTING, config, saturday)
    assert held.channel == "email"
    assert datetime.fromtimestamp(held.held_until, ZoneInfo("America/New_York")) == datetime(
        2026, 3, 9, 9, 0, tzinfo=ZoneInfo("America/New_York")
    )
    # a rule naming its own channels overrides the severity's
    own = anomaly(severity="HIGH", channels=["email", "dashboard"])
    assert [r.channel for r in routes_for(own, ROUTING, config, tuesday)] == ["email", "dashboard"]


def _closed_today(zone: str) -> list[str]:
    today = datetime.now(ZoneInfo(zone)).weekday()
    return [d for i, d in enumerate(DAYS) if i != today]


def test_outside_business_hours_high_escalates_to_pagerduty(make_service, http_server):
    service = make_service(
        {
            "pagerduty": {
                "routing_key": ProtocolServer.PD_ROUTING_KEY,
                "events_url": f"{http_server.url}/v2/enqueue",
            },
            "slack": {"webhook_url": f"{http_server.url}/services/T/B/X"},
            "business_hours": {"timezone": "Asia/Tokyo", "days": _closed_today("Asia/Tokyo")},
            "after_hours": [
                {"severity": "HIGH", "channel": "slack", "action": "escalate", "escalate_to": ["pagerduty"]}
            ],
        }
    )
    service.dispatch([anomaly(severity="HIGH")])
    event = wait_for(lambda: http_server.posts("/v2/enqueue"))[0]
    assert event["dedup_key"] == "error_spike:api" and not http_server.posts("/services/")
    journal = [orjson.loads(x) for x in (service.alerts_dir / "outbox.jsonl").read_bytes().splitlines()]
    assert journal[0]["channel"] == "pagerduty" and journal[0]["escalated_from"] == "slack"


def test_outside_business_hours_hold_keeps_the_alert_queued(make_service, http_server):
    service = make_service(
        {
            "slack": {"webhook_url": f"{http_server.url}/services/T/B/X"},
            "business_hours": {"timezone": "Asia/Tokyo", "days": _closed_today("Asia/Tokyo")},
            "after_hours": [{"channel": "slack", "action": "hold"}],
        }
    )
    service.dispatch([anomaly(severity="HIGH")])
    time.sleep(0.3)
    assert not http_server.requests
    [alert] = history.list_alerts(service.store)
    delivery = alert["deliveries"][0]
    assert (
        delivery["state"] == "pending"
        and delivery["kind"] == "held"
        and delivery["due_at"] > time.time() + 60
    )
    service.close(timeout=0.2)  # closing does not send held alerts: they wait for business hours
    assert not http_server.requests


def test_silence_suppresses_notifications_but_keeps_the_record(make_service, http_server):
    service = make_service({"slack": {"webhook_url": f"{http_server.url}/services/T/B/X"}})
    silence = service.silences.add("error_spike", 3600, "alice", "deploying api", key="api")
    service.dispatch([anomaly(key="api"), anomaly(key="web")])
    wait_for(lambda: http_server.posts("/services/"))
    time.sleep(0.2)
    assert [b["text"] for b in http_server.posts("/services/")] == ["[HIGH] error_spike · web"]
    alerts = {a["key"]: a for a in history.list_alerts(service.store)}
    assert alerts["api"]["silenced_by"] == silence.id and alerts["web"]["silenced_by"] is None
    journal = [
        orjson.loads(x)["key"] for x in (service.alerts_dir / "outbox.jsonl").read_bytes().splitlines()
    ]
    assert journal == ["web"]
    service.silences.expire(silence.id, "bob")
    service.dispatch([anomaly(key="api", minute=9)])
    wait_for(lambda: len(http_server.posts("/services/")) == 2)
    [record] = service.silences.list(include_expired=True)
    assert (record.created_by, record.reason, record.expired_by) == ("alice", "deploying api", "bob")


def test_unacknowledged_critical_pages_again_until_acknowledged(make_service, http_server):
    service = make_service(
        {
            "pagerduty": {
                "routing_key": ProtocolServer.PD_ROUTING_KEY,
                "events_url": f"{http_server.url}/v2/enqueue",
            },
            "escalation": {"after": "0.4s", "repeat": 3},
        }
    )
    service.dispatch([anomaly("db_connection_failure", key="orders", severity="CRITICAL")])
    events = wait_for(lambda: (e := http_server.posts("/v2/enqueue")) and len(e) >= 2 and e, timeout=5)
    assert [e["dedup_key"] for e in events[:2]] == [
        "db_connection_failure:orders",
        "db_connection_failure:orders#escalation-1",
    ]
    assert events[1]["payload"]["summary"].startswith("ESCALATION 1 (unacknowledged)")
    result = service.acknowledge("db_connection_failure:orders", by="carol", note="on it")
    assert result["acknowledged"] == [1]
    acks = wait_for(
        lambda: [e for e in http_server.posts("/v2/enqueue") if e["event_action"] == "acknowledge"]
    )
    escalations = history.get_alert(service.store, 1)["escalations"]
    time.sleep(1.0)
    after = http_server.posts("/v2/enqueue")
    assert [e for e in after if e["event_action"] == "trigger"] == [
        e for e in after[: escalations + 1] if e["event_action"] == "trigger"
    ]
    assert history.get_alert(service.store, 1)["escalations"] == escalations  # no more re-pages
    assert {a["dedup_key"] for a in acks} >= {"db_connection_failure:orders"}
    alert = history.get_alert(service.store, 1)
    assert alert["acked_by"] == "carol" and alert["ack_note"] == "on it" and alert["response_seconds"] >= 0.4
    assert history.response_times(service.store)["CRITICAL"]["count"] == 1
    # resolving resolves the first page and every re-page
    service.dispatch(
        [anomaly("db_connection_failure", key="orders", severity="CRITICAL", status=RESOLVED, minute=30)]
    )
    resolves = wait_for(
        lambda: (
            (
                r := [
                    e["dedup_key"] for e in http_server.posts("/v2/enqueue") if e["event_action"] == "resolve"
                ]
            )
            and len(r) == escalations + 1
            and r
        )
    )
    assert resolves == ["db_connection_failure:orders"] + [
        f"db_connection_failure:orders#escalation-{n}" for n in range(1, escalations + 1)
    ]


def test_update_routing_applies_to_the_next_dispatch(make_service):
    service = make_service()
    service.dispatch([anomaly(key="a")])
    service.update_routing({**ROUTING, "HIGH": ["email", "dashboard"]})
    service.dispatch([anomaly(key="b")])
    journal = [orjson.loads(x) for x in (service.alerts_dir / "outbox.jsonl").read_bytes().splitlines()]
    assert [(e["key"], e["channel"]) for e in journal] == [("a", "slack"), ("b", "email"), ("b", "dashboard")]
