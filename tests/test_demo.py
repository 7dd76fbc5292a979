"""The demo: its incidents fire each of the five rules within two minutes; without incidents, none fires."""
from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from logwarden.collector.validation import RecordValidator
from logwarden.common.records import record_schema
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.demo import SimClock, TrafficModel
from logwarden.monitoring import DetectorSet, load_rules

SEED_RULES = {"error_spike", "service_down", "slow_response", "suspicious_user", "db_connection_failure"}
WALL = 1_795_000_000.0


def replay(incidents: bool, sim_seconds: float, tick: float = 2.5):
    """Feed the traffic model through the seed rules tick by tick (as the live demo does at 10x);
    returns (wall seconds after start, anomaly) pairs."""
    clock = SimClock(speed=10.0, lead=1200.0, wall=WALL)
    model = TrafficModel(incidents=incidents)
    validator = RecordValidator(clock=lambda: WALL)
    detectors = DetectorSet(list(load_rules(ANOMALY_SCHEMA_PATH).rules))
    fired = []
    begin = clock.sim_start
    for n in range(int(sim_seconds / tick)):
        end = begin + tick
        records = [r for r in model.records(clock, begin, end)]
        assert all(validator.check(r) is None for r in records)
        rows = [validator.normalize(r, f"{n}-{i}", "demo", "demo", 0) for i, r in enumerate(records)]
        table = pa.Table.from_pylist(rows, schema=record_schema()).sort_by("timestamp")
        wall_elapsed = (end - clock.sim_start) / clock.speed
        fired += [(wall_elapsed, a) for a in detectors.process(f"batch-{n}", table)]
        begin = end
    return fired


def test_each_incident_fires_its_rule_within_two_minutes_at_10x():
    fired = replay(incidents=True, sim_seconds=1200)
    first = {}
    for wall_elapsed, anomaly in fired:
        if anomaly.status == "firing":
            first.setdefault(anomaly.rule, (wall_elapsed, anomaly.key))
    assert set(first) == SEED_RULES
    assert {rule: key for rule, (_, key) in first.items()} == {
        "error_spike": "payment-service", "service_down": "database-service", "slow_response": "api-gateway",
        "suspicious_user": "u-7331", "db_connection_failure": "payment-service"}
    assert max(elapsed for elapsed, _ in first.values()) < 100  # seconds of waiting, leaving room for start-up


def test_demo_without_incidents_fires_nothing():
    assert replay(incidents=False, sim_seconds=1500) == []


def test_sim_clock_never_runs_ahead_of_the_wall_clock():
    clock = SimClock(speed=10.0, lead=600.0, wall=WALL)
    assert clock.at(WALL) == WALL - 600
    assert clock.at(WALL + 30) == WALL - 300
    assert clock.at(WALL + 1000) == WALL + 1000


def test_demo_traffic_reaches_a_tls_collector_with_its_ingest_token(tmp_path):
    """HTTP and TCP over TLS, verified against the configured certificate; HTTP with the token."""
    import time

    import requests

    from logwarden.common.tls import TlsConfig, client_context
    from logwarden.demo import DemoTraffic
    from logwarden.testing.receivers import self_signed
    from tests.collector.helpers import RunningCollector, collector_config, spooled_rows

    tls = TlsConfig(*self_signed(tmp_path))
    token = "demo-ingest-token-0123456789"
    config = collector_config(tls=tls, tokens={token: "team-demo"})
    with RunningCollector(tmp_path / "data", config) as collector:
        server = collector.server

        def accepted(protocol: str) -> float:
            return server.ingestor.metrics.registry.get_sample_value(
                "logwarden_collector_records_accepted_total", {"protocol": protocol}) or 0.0

        demo = DemoTraffic(f"https://127.0.0.1:{server.http_port}/v1/logs", ("127.0.0.1", server.tcp_port),
                           speed=100.0, rate=50.0, tick=0.1, token=token, ssl_context=client_context(tls),
                           history=0.0)
        demo.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (accepted("http") and accepted("ndjson-tcp")):
                time.sleep(0.2)
        finally:
            demo.stop()
        assert accepted("http") > 0 and accepted("ndjson-tcp") > 0
        refused = requests.post(f"https://127.0.0.1:{server.http_port}/v1/logs", data=b"{}",
                                verify=str(tls.cert_file), timeout=10)
        assert refused.status_code == 401  # the token was what let the demo in
    assert {r["tenant"] for r in spooled_rows(tmp_path / "data") if r["service"] != "api-gateway"} == {"team-demo"}


def test_the_demo_digest_goes_out_within_the_demo_and_nothing_else_changes():
    from logwarden.alerting.config import parse_alerting
    from logwarden.demo import DEMO_DIGEST_EVERY, demo_alerting

    plain = parse_alerting({"slack": {"webhook_url": "http://127.0.0.1:9/hook"}})
    assert demo_alerting(plain) == plain  # no e-mail: nothing to shorten
    mail = parse_alerting({"email": {"smtp_host": "127.0.0.1", "from": "a@x", "to": ["b@x"]}})
    demo = demo_alerting(mail)
    assert mail.receivers["email"].digest.every == 900 and demo.receivers["email"].digest.every == DEMO_DIGEST_EVERY
    assert demo.receivers["email"].digest.severities == mail.receivers["email"].digest.severities


def replay_with_history(incidents: bool, sim_seconds: float, tick: float = 5.0):
    """The demo as ``logwarden up --demo`` sends it: its 30 minutes of history, then the live traffic, through
    the whole default rules file with templates mined as processing does; (wall seconds after the live
    start, anomaly) pairs."""
    from logwarden.demo import DEMO_HISTORY
    from logwarden.processing.templates import TemplateMiner

    clock = SimClock(speed=10.0, lead=1200.0, wall=WALL)
    model = TrafficModel(incidents=incidents)
    detectors = DetectorSet(list(load_rules(ANOMALY_SCHEMA_PATH).by_name().values()))
    miner = TemplateMiner()
    chunks = [(clock.sim_start, records) for records in model.history(clock, DEMO_HISTORY)]
    begin = clock.sim_start
    while begin < clock.sim_start + sim_seconds:
        chunks.append((begin + tick, list(model.records(clock, begin, begin + tick))))
        begin += tick
    fired = []
    for n, (end, records) in enumerate(chunks):
        rows = [{**r, "timestamp": datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")),
                 "record_id": f"{n}-{i}"} for i, r in enumerate(records)]  # validated by the tests above
        table = pa.Table.from_pylist(rows, schema=record_schema()).sort_by("timestamp")
        matches = [miner.add(m) for m in table["message"].to_pylist()]
        table = table.append_column("template_id", pa.array([m.template_id for m in matches], pa.string()))
        table = table.append_column("template", pa.array([m.template for m in matches], pa.string()))
        fired += [((end - clock.sim_start) / clock.speed, a) for a in detectors.process(f"batch-{n}", table)]
    return fired


def test_the_demo_raises_an_ml_alert_that_says_why_after_its_history():
    fired = [(wall, a) for wall, a in replay_with_history(incidents=True, sim_seconds=330) if a.status == "firing"]
    upstream = [(wall, a) for wall, a in fired if a.rule == "ml_new_error_pattern" and a.key.startswith("api-gateway|")]
    assert upstream, "the demo's new upstream error raised no ML alert"
    wall, alert = upstream[0]
    assert wall < 40  # seconds after the live start at 10x: well within the demo
    assert alert.severity == "LOW"  # routed to the dashboard (and the console and outbox) by the default file
    assert alert.explanation["text"].startswith("new ERROR template 'Upstream inventory-service sent malformed JSON")
    assert "Upstream inventory-service" in alert.explanation["signals"][0]["first_lines"][0]
    assert not any(a.rule.startswith("ml_") for wall, a in fired if wall <= 0)  # nothing from the history itself
    # the demo's other incidents of these minutes still fire their own rules after the history
    assert {a.rule for _, a in fired} >= {"slow_response", "error_spike"}
