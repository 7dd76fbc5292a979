"""The routing tree in the running alert service: teams' receivers with several channels, grouping
timers (group_wait, group_interval, repeat_interval), inhibition with ``equal`` labels, matcher
silences with expiry (service, CLI and HTTP), and routes muted by time intervals."""

from __future__ import annotations

import argparse
import time

import orjson

from logwarden.alerting import history
from logwarden.alerting.dispatch import grouping
from logwarden.alerting.dispatch.matchers import parse_matchers
from logwarden.alerting.http import handle_silence_add, handle_silence_expire, handle_silences
from logwarden.alerting.inhibit.silences import SilenceStore
from logwarden.monitoring.anomaly import RESOLVED
from tests.alerting.conftest import anomaly, wait_for


def _hooks(server, *names: str) -> list[dict]:
    return [{"url": f"{server.url}/hook/{name}"} for name in names]


def _posts(server, name: str) -> list[dict]:
    return server.posts(f"/hook/{name}")


def _keys(body: dict) -> list[str]:
    return sorted(a["dedup_key"] for a in body["alerts"])


def teams(server, **route: object) -> dict:
    """Payments to two webhooks and Slack, search to one webhook, CRITICAL elsewhere to on-call."""
    return {
        "receivers": [
            {
                "name": "payments",
                "webhook_configs": _hooks(server, "payments-a", "payments-b"),
                "slack_configs": [{"webhook_url": f"{server.url}/services/T/payments/X"}],
            },
            {"name": "search", "webhook_configs": _hooks(server, "search")},
            {"name": "oncall", "webhook_configs": _hooks(server, "oncall")},
        ],
        "route": {
            "receiver": "dashboard",
            "group_by": ["service"],
            "group_wait": 0,
            "routes": [
                {"matchers": ['team="payments"'], "receiver": "payments", "continue": True},
                {"matchers": ['team="search"'], "receiver": "search"},
                {"matchers": ['severity="CRITICAL"'], "receiver": "oncall"},
            ],
            **route,
        },
    }


def test_teams_reach_their_channels_and_critical_pages_oncall(make_service, http_server):
    service = make_service(teams(http_server))
    service.dispatch(
        [
            anomaly("db_connection_failure", key="payment-service", severity="CRITICAL"),
            anomaly("error_spike", key="auth-service", severity="HIGH"),
            anomaly("service_down", key="database-service", severity="CRITICAL"),
        ]
    )
    wait_for(lambda: len(_posts(http_server, "oncall")) == 2 and http_server.posts("/services/")
             and _posts(http_server, "payments-a") and _posts(http_server, "payments-b"))
    time.sleep(0.2)
    assert [_keys(b) for b in _posts(http_server, "payments-a")] == [["db_connection_failure:payment-service"]]
    assert [_keys(b) for b in _posts(http_server, "payments-b")] == [["db_connection_failure:payment-service"]]
    assert sorted(k for b in _posts(http_server, "oncall") for k in _keys(b)) == [
        "db_connection_failure:payment-service",  # payments continues to the CRITICAL route
        "service_down:database-service",
    ]
    assert not _posts(http_server, "search")  # auth-service is team identity: the root's dashboard
    journal = [orjson.loads(x) for x in (service.alerts_dir / "outbox.jsonl").read_bytes().splitlines()]
    routed = {(e["key"], e["channel"], e["route"]) for e in journal}
    assert ("auth-service", "dashboard", "route") in routed
    assert ("payment-service", "payments.webhook.2", "route.routes[0]") in routed
    assert ("payment-service", "oncall.webhook", "route.routes[2]") in routed


def test_grouping_waits_then_flushes_every_group_interval_and_repeats(make_service, http_server):
    service = make_service(teams(http_server, group_wait="0.4s", group_interval="1.5s", repeat_interval="3s"))
    start = time.time()
    service.dispatch(
        [anomaly("error_spike", key="payment-service"), anomaly("slow_response", key="payment-service", severity="MEDIUM")]
    )
    time.sleep(0.2)
    service.dispatch([anomaly("db_connection_failure", key="payment-service", severity="HIGH")])  # joins the wait
    first = wait_for(lambda: _posts(http_server, "payments-a"), timeout=5)
    assert len(first) == 1 and len(first[0]["alerts"]) == 3
    flushed = next(r["at"] for r in http_server.requests if r["path"] == "/hook/payments-a")
    assert flushed - start >= 0.35
    service.dispatch([anomaly("error_spike", key="payment-service", minute=5, value=180)])  # after the flush
    service.dispatch([anomaly("error_spike", key="payments-api", minute=5)])  # no inventory entry: team unassigned
    second = wait_for(lambda: len(_posts(http_server, "payments-a")) >= 2 and _posts(http_server, "payments-a"), 5)
    second_at = [r["at"] for r in http_server.requests if r["path"] == "/hook/payments-a"][1]
    assert second_at - flushed >= 1.4  # the group's next flush, group_interval after the first
    assert _keys(second[1]) == ["error_spike:payment-service"] and second[1]["alerts"][0]["value"] == 180
    third = wait_for(lambda: len(_posts(http_server, "payments-a")) >= 3 and _posts(http_server, "payments-a"), 6)
    third_at = [r["at"] for r in http_server.requests if r["path"] == "/hook/payments-a"][2]
    assert third_at - second_at >= 2.9  # repeat_interval after the last flush
    assert _keys(third[2]) == [
        "db_connection_failure:payment-service",
        "error_spike:payment-service",
        "slow_response:payment-service",
    ]
    journal = [orjson.loads(x) for x in (service.alerts_dir / "outbox.jsonl").read_bytes().splitlines()]
    assert any(e["event"] == "repeated" for e in journal)
    [group] = [g for g in grouping.groups(service.store) if g["channel"] == "payments.webhook"]
    assert group["labels"] == {"service": "payment-service"} and group["alerts"] == 3


def test_a_group_whose_alerts_resolved_is_forgotten(make_service, http_server):
    service = make_service(teams(http_server, group_wait="0.2s", group_interval="0.5s", repeat_interval="0.8s"))
    service.dispatch([anomaly("error_spike", key="payment-service")])
    wait_for(lambda: _posts(http_server, "payments-a"))
    service.dispatch([anomaly("error_spike", key="payment-service", status=RESOLVED, minute=5)])
    resolved = wait_for(lambda: len(_posts(http_server, "payments-a")) == 2 and _posts(http_server, "payments-a"))
    assert resolved[1]["alerts"][0]["status"] == RESOLVED
    time.sleep(1.5)  # past the repeat interval: nothing firing, so no repeat, and the group is gone
    service.repeat(time.time())
    assert len(_posts(http_server, "payments-a")) == 2
    assert not [g for g in grouping.groups(service.store) if g["channel"] == "payments.webhook"]


def test_service_down_inhibits_the_error_spike_of_the_same_service(make_service, http_server):
    section = teams(http_server, group_interval="0.2s")
    section["route"]["routes"] = [{"matchers": ['severity=~"HIGH|CRITICAL"'], "receiver": "oncall"}]
    section["inhibit_rules"] = [
        {"source_matchers": ['rule="service_down"'], "target_matchers": ['rule="error_spike"'], "equal": ["service"]}
    ]
    service = make_service(section)
    service.dispatch(
        [
            anomaly("error_spike", key="payment-service"),  # in the same batch as its source
            anomaly("service_down", key="payment-service", severity="CRITICAL"),
            anomaly("error_spike", key="auth-service"),
        ]
    )
    wait_for(lambda: len(_posts(http_server, "oncall")) == 2)
    time.sleep(0.3)
    sent = sorted(k for b in _posts(http_server, "oncall") for k in _keys(b))
    assert sent == ["error_spike:auth-service", "service_down:payment-service"]
    muted = history.get_alert(service.store, "error_spike:payment-service")
    assert muted["inhibited_by"]["source_alert_id"] == history.get_alert(service.store, "service_down:payment-service")["id"]
    assert 'rule="service_down"' in muted["inhibited_by"]["rule"]
    # its resolution is not notified either; once the source resolved, a new spike is
    service.dispatch([anomaly("error_spike", key="payment-service", status=RESOLVED, minute=5)])
    service.dispatch([anomaly("service_down", key="payment-service", severity="CRITICAL", status=RESOLVED, minute=6)])
    wait_for(lambda: len(_posts(http_server, "oncall")) == 3)
    service.dispatch([anomaly("error_spike", key="payment-service", minute=9)])
    wait_for(lambda: len(_posts(http_server, "oncall")) == 4)
    time.sleep(0.3)
    last = _posts(http_server, "oncall")
    assert [(a["dedup_key"], a["status"]) for b in last[2:] for a in b["alerts"]] == [
        ("service_down:payment-service", RESOLVED),
        ("error_spike:payment-service", "firing"),
    ]


def test_matcher_silences_expire_and_persist(make_service, http_server):
    service = make_service(teams(http_server, group_interval="0.2s"))
    silence = service.silences.add_matchers(
        parse_matchers(['team="payments"', 'severity=~"HIGH|CRITICAL"']), 1.0, "alice", "payments deploy"
    )
    assert SilenceStore(service.store).list()[0].describe() == '{team="payments",severity=~"HIGH|CRITICAL"}'
    service.dispatch(
        [
            anomaly("error_spike", key="payment-service"),
            anomaly("slow_response", key="payment-service", severity="MEDIUM"),
        ]
    )
    [body] = wait_for(lambda: _posts(http_server, "payments-a"))
    assert _keys(body) == ["slow_response:payment-service"]
    assert history.get_alert(service.store, "error_spike:payment-service")["silenced_by"] == silence.id
    wait_for(lambda: not service.silences.list(), timeout=3)  # expired by itself
    service.dispatch([anomaly("error_spike", key="payment-service", minute=7)])
    wait_for(lambda: len(_posts(http_server, "payments-a")) == 2)
    [ended] = SilenceStore(service.store).list(include_expired=True)
    assert ended.to_dict()["state"] == "expired" and ended.to_dict()["matchers"][1]["op"] == "=~"


def test_silences_through_the_http_api_and_the_cli(make_service, http_server, capsys):
    from logwarden.commands import silence as silence_command

    service = make_service(teams(http_server))
    status, body = handle_silence_add(
        service,
        {"matchers": ['service!~"payment-.*"', 'severity="CRITICAL"'], "duration": "1h", "reason": "noisy", "by": "bob"},
    )
    assert status == 200 and body["matchers"][0] == {"name": "service", "op": "!~", "value": "payment-.*"}
    # like Alertmanager, a silence needs a matcher the empty value fails (else it covers everything)
    assert handle_silence_add(service, {"matchers": ['service!~"payment-.*"'], "duration": "1h", "reason": "r"})[0] == 400
    assert handle_silence_add(service, {"matchers": ['team=~"("'], "duration": "1h", "reason": "r"})[0] == 400
    old = handle_silence_add(service, {"rule": "error_spike", "key": "api", "duration": "1h", "reason": "old form"})
    assert old[1]["rule"] == "error_spike" and old[1]["key"] == "api"
    assert [s["id"] for s in handle_silences(service, {})[1]] == [old[1]["id"], body["id"]]
    service.dispatch([anomaly("error_spike", key="auth-service", severity="CRITICAL"),
                      anomaly("error_spike", key="payment-service", severity="CRITICAL")])
    wait_for(lambda: _posts(http_server, "oncall"))
    time.sleep(0.2)
    assert [_keys(b) for b in _posts(http_server, "oncall")] == [["error_spike:payment-service"]]
    assert handle_silence_expire(service, str(body["id"]), {"by": "bob"})[0] == 200
    assert handle_silence_expire(service, str(body["id"]), {})[0] == 409
    assert handle_silence_expire(service, "999", {})[0] == 404

    parser = argparse.ArgumentParser()
    silence_command.register(parser.add_subparsers(dest="command"))
    data_dir = str(service.alerts_dir.parent)
    args = parser.parse_args(["silence", "add", "--data-dir", data_dir, "--match", 'tier="1"', "--match",
                              'environment=~"prod.*"', "--for", "2h", "--reason", "freeze"])
    assert args.func(args) == 0
    assert '{tier="1",environment=~"prod.*"} until' in capsys.readouterr().out
    args = parser.parse_args(["silence", "list", "--data-dir", data_dir])
    assert args.func(args) == 0
    assert '{tier="1",environment=~"prod.*"}' in capsys.readouterr().out
    args = parser.parse_args(["silence", "add", "--data-dir", data_dir, "--for", "2h", "--reason", "r"])
    assert args.func(args) == 2


def test_a_route_outside_its_active_intervals_waits_for_the_repeat(make_service, http_server):
    section = teams(http_server, group_wait=0, group_interval="0.3s", repeat_interval="0.6s")
    section["time_intervals"] = [{"name": "never", "time_intervals": [{"years": ["1999"]}]}]
    section["route"]["routes"][0]["active_time_intervals"] = ["never"]
    service = make_service(section)
    service.dispatch([anomaly("db_connection_failure", key="payment-service", severity="CRITICAL")])
    wait_for(lambda: _posts(http_server, "oncall"))  # the next route still pages
    time.sleep(1.0)
    assert not _posts(http_server, "payments-a")
    [group] = [g for g in grouping.groups(service.store) if g["channel"] == "payments.webhook"]
    assert group["alerts"] == 1  # kept in its group, for when the route is active again


def test_acknowledging_reaches_the_pagerduty_channel_of_a_named_receiver(make_service, http_server):
    pagerduty = {"routing_key": http_server.PD_ROUTING_KEY, "events_url": f"{http_server.url}/v2/enqueue"}
    service = make_service(
        {"receivers": [{"name": "payments", "pagerduty_configs": [pagerduty]}],
         "route": {"receiver": "payments", "group_wait": 0}}
    )
    service.dispatch([anomaly("db_connection_failure", key="payment-service", severity="CRITICAL")])
    wait_for(lambda: http_server.posts("/v2/enqueue"))
    service.acknowledge(1, by="alice")
    wait_for(lambda: len(http_server.posts("/v2/enqueue")) == 2)
    assert [b["event_action"] for b in http_server.posts("/v2/enqueue")] == ["trigger", "acknowledge"]
