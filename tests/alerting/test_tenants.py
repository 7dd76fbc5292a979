"""Alerts carry their tenant: stored (with a migration of older databases), in the outbox, in
PagerDuty's dedup key, with incidents (resolution, acknowledgement) per tenant, and the history API
confines a call to one tenant when asked (another tenant's alert looks like no alert at all)."""

from __future__ import annotations

import argparse
import sqlite3

import orjson
import pytest

from logwarden.alerting import history
from logwarden.alerting.store import _SCHEMA, AlertStore
from logwarden.commands import alerts as alerts_command
from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.anomaly import RESOLVED
from logwarden.testing.receivers import ProtocolServer
from tests.alerting.conftest import anomaly, wait_for

QUIET = {"CRITICAL": ["pagerduty"], "HIGH": ["slack"], "MEDIUM": ["email"], "LOW": ["dashboard"]}


@pytest.fixture
def three_tenants(make_service, tmp_path):
    """One error_spike on service ``api`` for each of the default tenant, acme and globex."""
    service = make_service(alerts_dir=tmp_path / "data" / "alerts")
    service.dispatch(
        [
            anomaly(key="api"),
            anomaly(key="api", tenant="acme", samples=["2026-03-02T10:00:00Z ERROR api: acme's secret"]),
            anomaly(key="api", tenant="globex", samples=["2026-03-02T10:00:00Z ERROR api: globex's secret"]),
        ]
    )
    ids = {a["tenant"]: a["id"] for a in history.list_alerts(service.store)}
    return service, ids, str(tmp_path / "data")


def test_two_tenants_firing_on_one_key_are_two_alerts_and_two_incidents(three_tenants):
    service, ids, _ = three_tenants
    alerts = history.list_alerts(service.store)
    assert sorted((a["key"], a["tenant"]) for a in alerts) == [
        ("api", "acme"), ("api", DEFAULT_TENANT), ("api", "globex")]
    assert sorted(a["dedup_key"] for a in alerts) == [
        "acme/error_spike:api", "error_spike:api", "globex/error_spike:api"]


def test_list_and_get_confined_to_a_tenant(three_tenants):
    service, ids, _ = three_tenants
    mine = history.list_alerts(service.store, tenant="acme")
    assert [(a["tenant"], a["samples"]) for a in mine] == [("acme", ["2026-03-02T10:00:00Z ERROR api: acme's secret"])]
    assert history.list_alerts(service.store, tenant="nobody") == []
    assert len(history.list_alerts(service.store)) == 3  # no tenant: every tenant (the operator)
    # another tenant's alert is indistinguishable from one that does not exist, by every kind of reference
    assert history.get_alert(service.store, ids["globex"], tenant="acme") is None
    assert history.get_alert(service.store, 999, tenant="acme") is None
    globex = history.get_alert(service.store, ids["globex"])
    assert history.get_alert(service.store, globex["anomaly_id"], tenant="acme") is None
    assert history.get_alert(service.store, "globex/error_spike:api", tenant="acme") is None
    assert history.get_alert(service.store, ids["acme"], tenant="acme")["tenant"] == "acme"
    # a tenant names its incident by rule:key; the operator's rule:key is the default tenant's
    assert history.get_alert(service.store, "error_spike:api", tenant="acme")["id"] == ids["acme"]
    assert history.get_alert(service.store, "error_spike:api")["id"] == ids[DEFAULT_TENANT]
    assert history.counts(service.store, tenant="globex") == {"HIGH": {"firing": 1}}


def test_acknowledge_confined_to_a_tenant(three_tenants):
    service, ids, _ = three_tenants
    with pytest.raises(KeyError):
        service.acknowledge(ids["globex"], by="mallory", tenant="acme")
    with pytest.raises(KeyError):
        history.acknowledge(service.store, "globex/error_spike:api", by="mallory", tenant="acme")
    result = service.acknowledge("error_spike:api", by="alice", tenant="acme")
    assert result["acknowledged"] == [ids["acme"]] and result["alert"]["tenant"] == "acme"
    acked = {a["tenant"]: a["acked_by"] for a in history.list_alerts(service.store)}
    assert acked == {"acme": "alice", "globex": None, DEFAULT_TENANT: None}
    result = history.acknowledge(service.store, ids["globex"], by="root")  # the operator: any tenant
    assert result["acknowledged"] == [ids["globex"]]


def test_a_tenants_resolution_resolves_only_its_incident(three_tenants):
    service, ids, _ = three_tenants
    service.dispatch([anomaly(key="api", tenant="acme", status=RESOLVED, minute=20)])
    resolved = {a["tenant"]: a["resolved_at"] is not None
                for a in history.list_alerts(service.store, status="firing")}
    assert resolved == {"acme": True, "globex": False, DEFAULT_TENANT: False}


def test_the_outbox_line_carries_the_tenant(three_tenants):
    service, ids, _ = three_tenants
    lines = [orjson.loads(line) for line in (service.alerts_dir / "outbox.jsonl").read_bytes().splitlines()]
    assert sorted((line["key"], line["tenant"]) for line in lines) == [
        ("api", "acme"), ("api", DEFAULT_TENANT), ("api", "globex")]


def test_the_cli_filters_by_tenant(three_tenants, capsys):
    _, ids, data_dir = three_tenants
    parser = argparse.ArgumentParser(prog="logwarden")
    alerts_command.register(parser.add_subparsers(dest="command", required=True))

    def cli(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return args.func(args)

    assert cli("alerts", "list", "--data-dir", data_dir, "--tenant", "acme", "--json") == 0
    assert [orjson.loads(line)["tenant"] for line in capsys.readouterr().out.splitlines()] == ["acme"]
    assert cli("alerts", "list", "--data-dir", data_dir) == 0
    table = capsys.readouterr().out
    assert "acme/api" in table and "globex/api" in table
    assert cli("alerts", "show", str(ids["globex"]), "--data-dir", data_dir, "--tenant", "acme") == 1
    assert cli("alerts", "ack", str(ids["globex"]), "--data-dir", data_dir, "--tenant", "acme", "--by", "x") == 1
    capsys.readouterr()


def test_pagerduty_dedup_key_includes_a_tenant_other_than_the_default(make_service, http_server):
    service = make_service(
        {"pagerduty": {"routing_key": ProtocolServer.PD_ROUTING_KEY, "events_url": f"{http_server.url}/v2/enqueue"}},
        routing=QUIET,
    )
    service.dispatch([anomaly("service_down", key="billing", severity="CRITICAL"),
                      anomaly("service_down", key="billing", severity="CRITICAL", tenant="acme")])
    events = wait_for(lambda: (e := http_server.posts("/v2/enqueue")) and len(e) >= 2 and e)
    assert sorted(e["dedup_key"] for e in events) == ["acme/service_down:billing", "service_down:billing"]
    service.dispatch([anomaly("service_down", key="billing", severity="CRITICAL", status=RESOLVED, minute=20,
                              tenant="acme")])
    events = wait_for(lambda: (e := http_server.posts("/v2/enqueue")) and len(e) >= 3 and e)
    assert [(e["event_action"], e["dedup_key"]) for e in events[2:]] == [("resolve", "acme/service_down:billing")]


def test_an_alerts_db_without_the_tenant_column_is_migrated(tmp_path):
    old_schema = _SCHEMA.replace(",\n    tenant TEXT NOT NULL DEFAULT 'default'\n", "\n")
    assert old_schema != _SCHEMA  # the schema of the version before tenants
    db = sqlite3.connect(tmp_path / "alerts.db")
    db.executescript(old_schema)
    db.execute(
        "INSERT INTO alerts(anomaly_id, dedup_key, rule, key, service, severity, status, received_at, channels, "
        "data) VALUES ('a1', 'error_spike:api', 'error_spike', 'api', 'api', 'HIGH', 'firing', 1.0, '[]', ?)",
        (orjson.dumps(anomaly(key="api").to_dict()).decode(),),
    )
    db.commit()
    assert "tenant" not in {row[1] for row in db.execute("PRAGMA table_info(alerts)")}
    db.close()

    store = AlertStore(tmp_path)
    try:
        [alert] = history.list_alerts(store)
        assert alert["tenant"] == DEFAULT_TENANT
        assert history.list_alerts(store, tenant=DEFAULT_TENANT) == [alert]
        assert history.list_alerts(store, tenant="acme") == []
        AlertStore(tmp_path).close()  # opening a migrated database again changes nothing
    finally:
        store.close()


def test_the_headline_names_a_tenant_other_than_the_default():
    from logwarden.alerting.format import title

    assert title(anomaly(key="api")) == "[HIGH] error_spike · api"
    assert title(anomaly(key="api", tenant="acme")) == "[HIGH] error_spike · acme/api"
