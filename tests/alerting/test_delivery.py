"""Never lose an alert: durable outbox, retries with backoff, circuit breaker, dead letter, restart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter

import orjson

from logwarden.alerting import history
from tests.alerting.conftest import ROUTING, anomaly, wait_for

SLACK_PATH = "/services/T000/B000/XXXX"


def slack(server) -> dict:
    return {"slack": {"webhook_url": f"{server.url}{SLACK_PATH}"}}


def delivered_titles(server) -> Counter:
    return Counter(a["fallback"] for body in server.posts("/services/") for a in body["attachments"])


def test_slack_down_for_30_seconds_every_alert_delivered_once_after_it_returns(make_service, http_server):
    """The issue's test: the Slack endpoint is down for 30 s; nothing is lost and nothing sent twice."""
    service = make_service(
        {
            **slack(http_server),
            "delivery": {
                "max_attempts": 50,
                "initial_backoff": 0.2,
                "max_backoff": 2,
                "breaker_failures": 3,
                "breaker_reset": 1,
            },
        }
    )
    http_server.down()
    down_at = time.monotonic()
    expected = [f"[HIGH] error_spike · svc{i}" for i in range(12)]
    for i in range(12):  # alerts keep coming during the outage
        service.dispatch([anomaly(key=f"svc{i}")])
        time.sleep(0.5)
    wait_for(lambda: time.monotonic() - down_at >= 30, timeout=31)
    assert not http_server.requests
    assert history.in_flight(service.store) == 12
    assert not history.dead_letters(service.store)
    metrics = service.metrics_text().decode()
    assert (
        'logwarden_alert_circuit_open{channel="slack"} 1.0' in metrics
        or 'logwarden_alert_delivery_attempts_total{channel="slack",outcome="failed"}' in metrics
    )
    http_server.up()
    wait_for(lambda: sum(delivered_titles(http_server).values()) >= 12, timeout=8)
    assert service.wait_idle(3)
    time.sleep(0.3)
    counts = delivered_titles(http_server)
    assert sorted(counts) == sorted(expected)
    assert set(counts.values()) == {1}, f"delivered twice: {counts}"
    assert {d["state"] for a in history.list_alerts(service.store) for d in a["deliveries"]} == {"sent"}


def test_short_outage_opens_the_breaker_then_delivers(make_service, http_server):
    service = make_service(slack(http_server))
    http_server.down()
    service.dispatch([anomaly(key="a"), anomaly(key="b")])
    wait_for(lambda: service.workers["slack"].breaker.opened_count >= 1, timeout=5)
    assert (
        'logwarden_alert_delivery_attempts_total{channel="slack",outcome="failed"}'
        in service.metrics_text().decode()
    )
    time.sleep(3)  # a 3 s outage
    http_server.up()
    wait_for(lambda: sum(delivered_titles(http_server).values()) == 2, timeout=5)
    assert service.wait_idle(3)
    alert = history.get_alert(service.store, 1)
    assert alert["deliveries"][0]["state"] == "sent" and alert["deliveries"][0]["attempts"] > 1


def test_dead_letter_after_the_last_attempt_shown_in_history_and_metrics(make_service, http_server):
    http_server.status_override = 503
    service = make_service(
        {
            **slack(http_server),
            "delivery": {
                "max_attempts": 3,
                "initial_backoff": 0.05,
                "max_backoff": 0.1,
                "breaker_failures": 10,
            },
        }
    )
    service.dispatch([anomaly(key="api")])
    dead = wait_for(lambda: history.dead_letters(service.store), timeout=5)
    assert dead[0]["attempts"] == 3 and "503" in dead[0]["last_error"]
    assert dead[0]["alerts"][0]["rule"] == "error_spike"
    assert len(http_server.posts("/services/")) == 3
    assert 'logwarden_alert_dead_letters{channel="slack"} 1.0' in service.metrics_text().decode()
    # a dead letter can be queued again once the channel works
    http_server.status_override = None
    assert history.redeliver(service.store, dead[0]["message_id"])
    wait_for(lambda: history.get_alert(service.store, 1)["deliveries"][0]["state"] == "sent", timeout=5)


def test_backoff_grows_exponentially_with_jitter():
    from logwarden.alerting.delivery.retry import backoff_delay
    import random

    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 60.0, rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        base = min(60.0, 2 ** (n - 1))
        assert base / 2 <= delay <= base
    assert len({round(d, 6) for d in delays}) == len(delays)


CRASHING_DISPATCHER = textwrap.dedent("""
    import io, os, sys
    from logwarden.alerting import ConsoleNotifier, build_alerting
    from tests.alerting.conftest import FAST, ROUTING, anomaly
    service = build_alerting({**FAST, "slack": {"webhook_url": sys.argv[2]}}, ROUTING, sys.argv[1],
                             console=ConsoleNotifier(io.StringIO()))
    service.start()
    service.dispatch([anomaly(key=f"crash{i}") for i in range(5)])
    os._exit(9)  # a crash: no close(), no flush
""")


def test_undelivered_alerts_are_delivered_on_restart_once(tmp_path, http_server, make_service):
    alerts_dir = tmp_path / "alerts"
    http_server.down()  # the channel is down while the first process runs
    webhook = f"{http_server.url}{SLACK_PATH}"
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_DISPATCHER, str(alerts_dir), webhook],
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
        timeout=60,
    )
    assert done.returncode == 9
    journal = [orjson.loads(line) for line in (alerts_dir / "outbox.jsonl").read_bytes().splitlines()]
    assert sorted(e["key"] for e in journal) == [f"crash{i}" for i in range(5)]
    http_server.up()
    service = make_service(slack(http_server), alerts_dir=alerts_dir)
    wait_for(lambda: sum(delivered_titles(http_server).values()) >= 5, timeout=5)
    service.close()
    # a second restart delivers nothing again
    make_service(slack(http_server), alerts_dir=alerts_dir)
    time.sleep(0.5)
    counts = delivered_titles(http_server)
    assert sorted(counts) == [f"[HIGH] error_spike · crash{i}" for i in range(5)]
    assert set(counts.values()) == {1}
    assert len((alerts_dir / "outbox.jsonl").read_bytes().splitlines()) == 5


def test_a_replayed_anomaly_is_not_delivered_twice(make_service, http_server):
    service = make_service(slack(http_server))
    a = anomaly(key="api")
    service.dispatch([a])
    service.dispatch([a])
    wait_for(lambda: http_server.posts("/services/"))
    time.sleep(0.3)
    assert len(http_server.posts("/services/")) == 1
    assert len(history.list_alerts(service.store)) == 1


def test_grouping_one_rule_and_service_within_group_wait_is_one_message(make_service, http_server):
    service = make_service({**slack(http_server), "group_wait": 0.6})
    service.dispatch([anomaly(key="api", minute=1)])
    service.dispatch([anomaly(key="api", minute=2), anomaly(key="api", minute=3)])
    service.dispatch([anomaly("db_connection_failure", key="api", minute=3)])  # another rule: another message
    bodies = wait_for(lambda: (b := http_server.posts("/services/")) and len(b) == 2 and b, timeout=3)
    texts = sorted(b["text"] for b in bodies)
    assert texts == ["[HIGH] db_connection_failure · api", "[HIGH] error_spike · api · 3 alerts"]
    grouped = next(b for b in bodies if "3 alerts" in b["text"])
    assert len(grouped["attachments"]) == 3


def test_rate_limit_per_channel_defers_without_losing(make_service, http_server):
    service = make_service(
        {"slack": {"webhook_url": f"{http_server.url}{SLACK_PATH}", "rate_limit": {"count": 2, "per": "1s"}}}
    )
    service.dispatch([anomaly(key=f"k{i}") for i in range(5)])
    wait_for(lambda: len(http_server.posts("/services/")) >= 2, timeout=3)
    time.sleep(0.3)
    assert len(http_server.posts("/services/")) == 2  # the third waits for the window
    wait_for(lambda: len(http_server.posts("/services/")) == 5, timeout=5)
    times = sorted(r["at"] for r in http_server.requests)
    assert times[4] - times[0] >= 1.9


def test_no_credentials_means_console_and_journal_only(make_service, tmp_path):
    import io
    from logwarden.alerting import ConsoleNotifier, build_alerting

    stream = io.StringIO()
    service = build_alerting(None, ROUTING, tmp_path / "plain", console=ConsoleNotifier(stream))
    service.start()
    service.dispatch([anomaly(severity=s, key=s.lower()) for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW")])
    service.close()
    journal = [orjson.loads(line) for line in (tmp_path / "plain" / "outbox.jsonl").read_bytes().splitlines()]
    assert [(e["severity"], e["channel"]) for e in journal] == [
        ("CRITICAL", "pagerduty"),
        ("HIGH", "slack"),
        ("MEDIUM", "email"),
        ("LOW", "dashboard"),
    ]
    for entry in journal:
        assert {"rule", "severity", "key", "window_start", "window_end", "value", "channel"} <= set(entry)
    assert stream.getvalue().count("ALERT [") == 4
    assert history.delivery_summary(tmp_path / "plain") == {}
    assert len(history.list_alerts(tmp_path / "plain", severity="low")) == 1  # LOW stored for the dashboard


def test_a_message_caught_mid_send_by_a_crash_is_sent_again_on_restart(tmp_path, http_server, make_service):
    from logwarden.alerting.store import AlertStore

    alerts_dir = tmp_path / "alerts"
    first = make_service(slack(http_server), alerts_dir=alerts_dir, start=False)
    first.dispatch([anomaly(key="midsend")])
    store = AlertStore(alerts_dir)
    claimed = store.claim("slack", time.time() + 1)  # a worker took it, then the process died
    assert claimed is not None and store.query("SELECT state FROM messages")[0][0] == "sending"
    store.close()
    make_service(slack(http_server), alerts_dir=alerts_dir)
    wait_for(lambda: http_server.posts("/services/"))
    assert [b["text"] for b in http_server.posts("/services/")] == ["[HIGH] error_spike · midsend"]
