"""``logwarden alerts`` and ``logwarden silence`` on the files of a data dir, and the HTTP handlers."""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from logwarden.alerting import history
from logwarden.alerting.http import make_app
from logwarden.commands import alerts as alerts_command
from logwarden.commands import silence as silence_command
from logwarden.monitoring.anomaly import RESOLVED
from tests.alerting.conftest import anomaly


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="logwarden")
    subparsers = parser.add_subparsers(dest="command", required=True)
    alerts_command.register(subparsers)
    silence_command.register(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def populated(make_service, tmp_path):
    service = make_service(alerts_dir=tmp_path / "data" / "alerts")
    service.dispatch(
        [
            anomaly("db_connection_failure", key="orders", severity="CRITICAL"),
            anomaly("error_spike", key="api", severity="HIGH"),
            anomaly("slow_response", key="web", severity="MEDIUM"),
            anomaly("error_spike", key="batch", severity="LOW"),
        ]
    )
    with service.store.transaction() as db:  # one alert from yesterday
        db.execute("UPDATE alerts SET received_at=received_at-86400 WHERE key='batch'")
    return service, str(tmp_path / "data")


def test_alerts_list_since_and_severity(populated, capsys):
    service, data_dir = populated
    assert (
        cli(["alerts", "list", "--data-dir", data_dir, "--since", "1h", "--severity", "critical", "--json"])
        == 0
    )
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["rule"], r["key"], r["severity"]) for r in rows] == [
        ("db_connection_failure", "orders", "CRITICAL")
    ]
    assert cli(["alerts", "list", "--data-dir", data_dir, "--since", "1h"]) == 0
    table = capsys.readouterr().out
    assert "orders" in table and "api" in table and "web" in table and "batch" not in table
    assert "pagerduty:console" in table
    assert cli(["alerts", "list", "--data-dir", data_dir]) == 0
    assert "dashboard:stored" in capsys.readouterr().out


def test_alerts_ack_records_who_and_response_time(populated, capsys):
    service, data_dir = populated
    time.sleep(0.2)
    assert cli(["alerts", "ack", "1", "--data-dir", data_dir, "--by", "dave"]) == 0
    assert "acknowledged 1 alert(s) of db_connection_failure:orders by dave" in capsys.readouterr().out
    alert = history.get_alert(service.store, 1)
    assert alert["acked_by"] == "dave" and alert["response_seconds"] >= 0.2
    assert cli(["alerts", "ack", "1", "--data-dir", data_dir]) == 0
    assert "already acknowledged by dave" in capsys.readouterr().out
    assert cli(["alerts", "ack", "999", "--data-dir", data_dir]) == 1
    assert cli(["alerts", "show", "db_connection_failure:orders", "--data-dir", data_dir]) == 0
    assert orjson.loads(capsys.readouterr().out)["acked_by"] == "dave"


def test_silence_add_list_expire(populated, capsys):
    service, data_dir = populated
    assert (
        cli(
            [
                "silence",
                "add",
                "--data-dir",
                data_dir,
                "--rule",
                "error_spike",
                "--key",
                "api",
                "--for",
                "2h",
                "--reason",
                "known incident",
                "--by",
                "erin",
            ]
        )
        == 0
    )
    assert "silence 1: error_spike:api until" in capsys.readouterr().out
    assert cli(["silence", "list", "--data-dir", data_dir]) == 0
    listing = capsys.readouterr().out
    assert "active" in listing and "erin" in listing and "known incident" in listing
    service.dispatch([anomaly("error_spike", key="api", minute=7)])  # the running service sees the silence
    assert history.get_alert(service.store, 5)["silenced_by"] == 1
    assert cli(["silence", "expire", "1", "--data-dir", data_dir, "--by", "frank"]) == 0
    assert "expired by frank" in capsys.readouterr().out
    assert cli(["silence", "list", "--data-dir", data_dir]) == 0
    assert "no silences" in capsys.readouterr().err
    assert cli(["silence", "expire", "1", "--data-dir", data_dir]) == 1
    assert (
        cli(["silence", "add", "--data-dir", data_dir, "--rule", "x", "--for", "soon", "--reason", "r"]) == 2
    )


def test_http_ack_list_and_metrics(populated):
    service, _ = populated

    async def scenario() -> None:
        async with TestClient(TestServer(make_app(service))) as client:
            response = await client.post("/alerts/1/ack", json={"by": "grace", "note": "paged"})
            assert response.status == 200
            body = await response.json()
            assert body["alert"]["acked_by"] == "grace" and body["acknowledged"] == [1]
            assert (await client.post("/alerts/nope/ack")).status == 404
            listing = await (
                await client.get("/alerts", params={"since": "1h", "severity": "critical"})
            ).json()
            assert [a["id"] for a in listing] == [1]
            assert (await client.get("/alerts", params={"since": "soon"})).status == 400
            one = await (await client.get("/alerts/2")).json()
            assert one["rule"] == "error_spike"
            assert await (await client.get("/alerts/dead-letters")).json() == []
            metrics = await (await client.get("/alerts/metrics")).text()
            assert 'logwarden_alerts_total{severity="CRITICAL",status="firing"} 1.0' in metrics

    asyncio.run(scenario())


def test_resolved_closes_the_incident_for_acknowledgement(populated):
    service, _ = populated
    service.dispatch(
        [anomaly("db_connection_failure", key="orders", severity="CRITICAL", status=RESOLVED, minute=9)]
    )
    result = history.acknowledge(service.store, "db_connection_failure:orders", by="x")
    assert result["already"]  # the newest alert of the incident is the resolution: nothing to acknowledge


def test_alerts_http_server_in_a_thread(populated):
    import requests

    from logwarden.alerting.http import AlertsHttpServer
    from logwarden.testing.cluster import free_port

    service, _ = populated
    server = AlertsHttpServer(service, port=free_port())
    server.start()
    try:
        response = requests.post(f"{server.url}/2/ack", json={"by": "heidi"}, timeout=5)
        assert response.status_code == 200 and response.json()["alert"]["acked_by"] == "heidi"
        assert "logwarden_alerts_total" in requests.get(f"{server.url}/metrics", timeout=5).text
    finally:
        server.stop()
