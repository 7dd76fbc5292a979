"""Rule kinds in event time: they fire exactly at their thresholds, throttle, resolve, and do not flap."""
from __future__ import annotations

from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.monitoring import DetectorSet, load_rules
from logwarden.monitoring.rules import build_rule

from tests.monitoring.helpers import rec, table

RULES = load_rules(ANOMALY_SCHEMA_PATH).by_name()


def run(rule_name: str, batches: list[list[dict]]):
    rule = build_rule(RULES[rule_name])
    out = []
    for batch in batches:
        out += rule.add_data(table(batch))
    return rule, out


def firing(anomalies):
    return [a for a in anomalies if a.status == "firing"]


def test_error_spike_needs_more_than_100_errors_in_5_minutes():
    errors = [rec(i * 2.0, "pay", "ERROR", "boom") for i in range(100)]  # 100 in 200 s
    _, out = run("error_spike", [errors])
    assert out == []
    _, out = run("error_spike", [errors + [rec(201, "pay", "CRITICAL", "boom")]])
    assert [(a.rule, a.key, a.value, a.severity) for a in firing(out)] == [("error_spike", "pay", 101.0, "HIGH")]
    assert len(out[0].samples) == 5 and "boom" in out[0].samples[-1]


def test_errors_spread_wider_than_the_window_do_not_fire():
    spread = [rec(i * 4.0, "pay", "ERROR") for i in range(150)]  # 150 errors over 10 minutes: 75 per 5 min
    _, out = run("error_spike", [spread])
    assert out == []


def test_realert_throttles_and_resolution_follows_the_clear():
    burst = [rec(i * 0.5, "pay", "ERROR") for i in range(300)]  # 150 s of errors
    later = [rec(400 + i * 10.0, "other") for i in range(60)]  # quiet traffic up to t=990 s
    rule, out = run("error_spike", [burst, later])
    states = [(a.status, a.key) for a in out]
    assert states == [("firing", "pay"), ("resolved", "pay")]  # one alert within realert (5m), then resolved
    assert out[1].value <= 100


def test_per_key_groups_do_not_mix():
    errors = [rec(i, f"svc{i % 3}", "ERROR") for i in range(200)]  # ~67 per service
    _, out = run("error_spike", [errors])
    assert out == []


def test_suspicious_user_counts_errors_of_one_user_over_an_hour():
    user_errors = [rec(i * 60.0, "auth", "ERROR", user_id="u-bad") for i in range(49)]
    noise = [rec(i * 60.0 + 1, "auth", "ERROR") for i in range(60)]  # errors without user_id
    _, out = run("suspicious_user", [user_errors + noise])
    assert out == []
    _, out = run("suspicious_user", [user_errors + noise + [rec(49 * 60.0, "auth", "ERROR", user_id="u-bad")]])
    assert [(a.key, a.value) for a in firing(out)] == [("u-bad", 50.0)]


def test_db_connection_failure_matches_error_code_or_message():
    by_code = [rec(i, "pay", "ERROR", "pool exhausted", error_code="DB_CONNECTION_FAILED") for i in range(5)]
    by_text = [rec(5 + i, "pay", "CRITICAL", msg) for i, msg in enumerate([
        "Database connection failed", "connection to the database timed out", "DB connection reset by peer",
        "Failed to connect to database primary", "database connection refused"])]
    _, out = run("db_connection_failure", [by_code + by_text])
    assert [(a.key, a.value, a.severity) for a in firing(out)] == [("pay", 10.0, "CRITICAL")]


def test_db_rule_ignores_info_and_unrelated_connection_errors():
    noise = [rec(i, "pay", "INFO", "Database connection failed") for i in range(10)]
    noise += [rec(20 + i, "pay", "ERROR", "connection refused by redis") for i in range(10)]
    _, out = run("db_connection_failure", [noise])
    assert out == []


def test_slow_response_fires_per_key_with_throttle():
    slow = [rec(10, "api", duration_ms=5001.0), rec(20, "api", duration_ms=9000.0),
            rec(30, "web", duration_ms=6000.0), rec(40, "api", duration_ms=5000.0)]
    _, out = run("slow_response", [slow])
    assert [(a.key, a.value) for a in firing(out)] == [("api", 5001.0), ("web", 6000.0)]


def test_service_down_fires_for_a_silent_service_without_its_own_records():
    first = [rec(i * 10.0, s) for i in range(6) for s in ("db", "api")]  # both send for a minute
    only_api = [rec(60 + i * 10.0, "api") for i in range(70)]  # then only api, up to t=750 s
    rule, out = run("service_down", [first, only_api[:60]])
    assert out == []  # db silent since 50 s; 10 min + 1 min lateness not yet passed (t=650)
    out = rule.add_data(table(only_api[60:]))
    assert [(a.key, a.severity, a.value) for a in out] == [("db", "CRITICAL", 0.0)]
    more = rule.add_data(table([rec(760 + i * 10.0, "api") for i in range(5)]))
    assert more == []  # firing already: no flapping, no repeat within realert


def test_service_down_resolves_when_the_service_returns_and_fires_on_idle_time():
    rule = build_rule(RULES["service_down"])
    rule.add_data(table([rec(0, "db"), rec(1, "api")]))
    fired = rule.advance(rule.max_event_us + 700 * 1_000_000)  # nothing at all arrives for 700 s
    assert [(a.key, a.status) for a in fired] == [("db", "firing"), ("api", "firing")]
    back = rule.add_data(table([rec(800 + i, s) for i in range(70) for s in ("db", "api")]))
    assert sorted((a.key, a.status) for a in back) == [("api", "resolved"), ("db", "resolved")]


def test_new_service_is_not_reported_before_a_whole_window():
    rule = build_rule(RULES["service_down"])
    out = rule.add_data(table([rec(0, "api"), rec(300, "api"), rec(300, "newbie")]))
    out += rule.add_data(table([rec(650, "api")]))
    assert out == []


def test_detector_set_ignores_a_redelivered_batch_and_counts_late_events():
    detectors = DetectorSet(list(RULES.values()))
    errors = table([rec(i * 0.5, "pay", "ERROR") for i in range(101)])
    first = detectors.process("batch-1", errors)
    assert [a.rule for a in first] == ["error_spike"]
    assert detectors.process("batch-1", errors) == []
    detectors.process("batch-2", table([rec(600, "pay")]))
    detectors.process("batch-3", table([rec(10, "pay")]))  # 590 s behind the newest event
    assert detectors.stats()["error_spike"]["late_events"] == 1
