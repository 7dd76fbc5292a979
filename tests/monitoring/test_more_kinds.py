"""The kinds beyond the seed rules (spike, new_term, sequence, aggregated threshold), the richer filters,
and the properties every kind shares: alerts independent of batching, and state that survives pickling."""
from __future__ import annotations

import pickle

import pytest

from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring import DetectorSet, load_rules, parse_rules
from logwarden.monitoring.rules import build_rule
from logwarden.monitoring.rules.filters import compile_filter

from tests.monitoring.helpers import rec, table

SEED = ANOMALY_SCHEMA_PATH.read_text()


def rules(text: str):
    return parse_rules("version: 1\nrules:\n" + text).by_name()


def run(spec, batches):
    rule = build_rule(spec)
    out = []
    for batch in batches:
        out += rule.add_data(table(batch))
    return rule, out


def test_spike_compares_the_window_with_the_previous_ones():
    spec = rules("""
  - name: traffic_spike
    kind: spike
    group_by: service
    window: 1m
    history: 2
    threshold: {op: ">=", value: 3}
    min_count: 10
    allowed_lateness: 0s
    severity: LOW
""")["traffic_spike"]
    normal = [rec(i * 6.0, "api") for i in range(20)]               # 10 a minute for two minutes
    spike = [rec(120 + i * 1.5, "api") for i in range(40)]           # 40 in the third minute
    calm = [rec(180 + i * 6.0, "api") for i in range(30)]            # back to 10 a minute
    _, out = run(spec, [normal, spike, calm])
    assert [(a.status, a.key, a.value, a.window_start, a.window_end) for a in out] == [
        ("firing", "api", 4.0, "2026-11-22T10:02:00Z", "2026-11-22T10:03:00Z"),
        ("resolved", "api", 0.4, "2026-11-22T10:03:00Z", "2026-11-22T10:04:00Z")]


def test_a_drop_is_a_spike_down_even_with_no_events_at_all():
    spec = rules("""
  - name: traffic_drop
    kind: spike
    group_by: service
    window: 1m
    threshold: {op: "<=", value: 0.2}
    allowed_lateness: 0s
    severity: LOW
""")["traffic_drop"]
    steady = [rec(i * 2.0, s) for i in range(60) for s in ("api", "web")]  # 30 a minute each, two minutes
    only_web = [rec(120 + i * 2.0, "web") for i in range(31)]             # api sends nothing in minute three
    _, out = run(spec, [steady, only_web])
    assert [(a.status, a.key, a.value) for a in out] == [("firing", "api", 0.0)]


def test_p95_over_a_window():
    spec = rules("""
  - name: slow_p95
    kind: threshold
    field: duration_ms
    aggregate: p95
    window: 1m
    min_count: 5
    group_by: service
    threshold: {op: ">", value: 800}
    allowed_lateness: 0s
    severity: MEDIUM
""")["slow_p95"]
    fast = [rec(i, "api", duration_ms=100.0) for i in range(60)]
    slow = [rec(60 + i, "api", duration_ms=100.0 if i < 50 else 1000.0) for i in range(60)]
    few = [rec(120 + i, "api", duration_ms=5000.0) for i in range(3)]  # too few to judge: resolves
    _, out = run(spec, [fast, slow, few, [rec(200, "api", duration_ms=1.0)]])
    assert [(a.status, a.value, a.window_end) for a in out] == [
        ("firing", 1000.0, "2026-11-22T10:02:00Z"), ("resolved", 5000.0, "2026-11-22T10:03:00Z")]


def test_aggregate_needs_a_window():
    with pytest.raises(ConfigError, match=r"rules\.x: .*window"):
        rules("  - {name: x, kind: threshold, field: duration_ms, aggregate: p95, severity: LOW,"
              " threshold: {op: '>', value: 1}}")


def test_new_term_fires_once_per_new_value_after_learning():
    spec = rules("""
  - name: new_error_code
    kind: new_term
    field: error_code
    filter: [{field: level, equals: ERROR}]
    learn_for: 1m
    lookback: 1h
    severity: LOW
""")["new_error_code"]
    learning = [rec(i, "api", "ERROR", error_code="E1") for i in range(30)] + [rec(40, "api", "ERROR", error_code="E2")]
    later = [rec(100, "api", "ERROR", error_code="E1"), rec(110, "api", "ERROR", error_code="E3"),
             rec(120, "api", "ERROR", error_code="E3"), rec(130, "api", "INFO", error_code="E4")]
    _, out = run(spec, [learning, later])
    assert [(a.status, a.key, a.window_end) for a in out] == [("firing", "E3", "2026-11-22T10:01:50Z")]


def test_new_template_among_errors_per_service():
    spec = rules("""
  - name: new_error_template
    kind: new_term
    field: template
    group_by: service
    filter: [{field: level, in: [ERROR, CRITICAL]}]
    severity: LOW
""")["new_error_template"]
    rows = [rec(1, "api", "ERROR", template="disk <*> full"), rec(2, "web", "ERROR", template="disk <*> full"),
            rec(3, "api", "ERROR", template="disk <*> full")]
    rule = build_rule(spec)
    out = rule.add_data(table(rows).append_column("template", __import__("pyarrow").array(
        [r["template"] for r in rows])).drop_columns([]))
    assert [a.key for a in out] == ["api|disk <*> full", "web|disk <*> full"]


def test_sequence_failed_logins_then_success_for_one_user():
    spec = rules("""
  - name: brute_force_success
    kind: sequence
    group_by: user_id
    window: 10m
    steps:
      - filter: {field: message, regex: "(?i)login failed"}
        min_count: 5
      - filter: {field: message, regex: "(?i)login succeeded"}
    severity: HIGH
""")["brute_force_success"]
    attack = [rec(i * 10.0, "auth", "WARNING", "login failed", user_id="u1") for i in range(5)]
    attack.append(rec(60, "auth", "INFO", "login succeeded", user_id="u1"))
    honest = [rec(i * 10.0, "auth", "WARNING", "login failed", user_id="u2") for i in range(2)]
    honest.append(rec(30, "auth", "INFO", "login succeeded", user_id="u2"))
    success_first = [rec(0, "auth", "INFO", "login succeeded", user_id="u3")]
    success_first += [rec(10 + i, "auth", "WARNING", "login failed", user_id="u3") for i in range(6)]
    _, out = run(spec, [attack + honest + success_first])
    assert [(a.key, a.value, a.first_event, a.window_end) for a in out] == [
        ("u1", 5.0, "2026-11-22T10:00:00Z", "2026-11-22T10:01:00Z")]


def test_filters_range_template_and_attribute_fields():
    import pyarrow as pa

    t = table([rec(0, message="User alice logged in from 10.0.0.1", duration_ms=50.0,
                   attributes='{"http": {"status": 503}}'),
               rec(1, message="User bob logged out", duration_ms=150.0, attributes='{"http": {"status": 200}}'),
               rec(2, message="disk full", duration_ms=250.0)])
    assert compile_filter({"field": "duration_ms", "range": [100, 250]})(t).to_pylist() == [False, True, True]
    assert compile_filter({"template": "User <*> logged in from <IP>"})(t).to_pylist() == [True, False, False]
    assert compile_filter({"field": "attributes.http.status", "gte": 500})(t).to_pylist() == [True, False, False]
    assert compile_filter({"field": "http.status", "in": [200]})(t).to_pylist() == [False, True, False]
    cache: dict = {}
    first = compile_filter([{"field": "level", "in": ["INFO"]}])
    assert first(t, cache) is first(t, cache)
    assert isinstance(first(t), pa.BooleanArray)


def test_unknown_kind_and_wrong_key_for_a_kind_name_rule_and_field():
    with pytest.raises(ConfigError, match=r"rules\.x\.kind: "):
        rules("  - {name: x, kind: frequenzy, severity: LOW}")
    with pytest.raises(ConfigError, match=r"rules\.x: .*'steps' was unexpected"):
        rules("  - {name: x, kind: frequency, window: 1m, threshold: {op: '>', value: 1}, severity: LOW,"
              " steps: []}")
    with pytest.raises(ConfigError, match=r"rules\.x\.threshold\.op: "):
        rules("  - {name: x, kind: frequency, window: 1m, threshold: {op: '<', value: 1}, severity: LOW}")
    with pytest.raises(ConfigError, match=r"rules\.x\.steps\.0\.filter\.regex: invalid regular expression"):
        rules("  - {name: x, kind: sequence, window: 1m, severity: LOW, steps: "
              "[{filter: {field: message, regex: '(('}}, {filter: {field: level, equals: ERROR}}]}")


def _traffic():
    """Ten minutes of mixed traffic with bursts, slow requests, a failing database and a silent service."""
    rows = []
    for i in range(6000):
        second = i * 0.1
        service = ["api", "pay", "db", "auth"][i % 4]
        if service == "db" and 200 < second < 420:
            continue  # db is silent for 220 s
        level = "ERROR" if (service == "pay" and 100 < second < 180) or i % 97 == 0 else "INFO"
        message = "Database connection failed" if service == "pay" and 300 < second < 330 and i % 3 else "ok"
        if message != "ok":
            level = "CRITICAL"
        rows.append(rec(second, service, level, message, duration_ms=6000.0 if i % 1500 == 7 else 10.0,
                        user_id=f"u{i % 3}" if service == "auth" else None))
    return rows


def _spec_file():
    text = SEED.replace("window: 10m", "window: 2m").replace("value: 50", "value: 20")
    return parse_rules(text).by_name()


@pytest.mark.parametrize("size", [37, 500, 6000])
def test_alerts_do_not_depend_on_batching(size):
    specs = list(_spec_file().values())
    rows = sorted(_traffic(), key=lambda r: r["timestamp"])
    whole = DetectorSet(specs).process("all", table(rows))
    detectors = DetectorSet(specs)
    batched = []
    for n in range(0, len(rows), size):
        batched += detectors.process(f"b{n}", table(rows[n:n + size]))
    key = [(a.rule, a.key, a.status, a.window_start, a.window_end, a.value) for a in whole]
    assert {a.rule for a in whole} >= {"error_spike", "service_down", "slow_response", "db_connection_failure"}
    assert [(a.rule, a.key, a.status, a.window_start, a.window_end, a.value) for a in batched] == key


def test_state_survives_pickling_mid_stream():
    specs = list(_spec_file().values())
    rows = sorted(_traffic(), key=lambda r: r["timestamp"])
    straight = DetectorSet(specs)
    expected = []
    for n in range(0, len(rows), 400):
        expected += straight.process(f"b{n}", table(rows[n:n + 400]))
    resumed = DetectorSet(specs)
    got = []
    for n in range(0, len(rows), 400):
        got += resumed.process(f"b{n}", table(rows[n:n + 400]))
        if n == 2000:
            snapshot = pickle.loads(pickle.dumps(resumed.snapshot()))
            resumed = DetectorSet(specs)
            resumed.restore(snapshot)
            assert resumed.process("b0", table(rows[:400])) == []  # a batch seen before the checkpoint
    assert [a.id for a in got] == [a.id for a in expected]


def test_sharded_rows_plus_event_time_give_the_same_alerts():
    from logwarden.monitoring.sharding import newest_event_us, split_by_key

    specs = list(_spec_file().values())
    rows = sorted(_traffic(), key=lambda r: r["timestamp"])
    single = DetectorSet(specs)
    shards = [DetectorSet(specs) for _ in range(3)]
    expected, got = [], []
    for n in range(0, len(rows), 700):
        batch = table(rows[n:n + 700])
        expected += single.process(f"b{n}", batch)
        newest = newest_event_us(batch)
        for shard, part in zip(shards, split_by_key(batch, ("service",), 3)):
            got += shard.process(f"b{n}", part, newest)
    assert sorted(a.id for a in got) == sorted(a.id for a in expected)


def test_seed_rules_load_in_the_richer_language():
    seed = load_rules(ANOMALY_SCHEMA_PATH)
    assert {r.name: r.kind for r in seed.rules if r.kind != "ml"} == {  # ML: tests/ml/test_default_ml_rules.py
        "error_spike": "frequency", "service_down": "flatline", "slow_response": "threshold",
        "suspicious_user": "frequency", "db_connection_failure": "frequency", "threat_indicator_seen": "frequency",
        "suspicious_privileged_user": "frequency"}


def test_the_examples_in_the_rules_file_header_are_valid_rules():
    text = ANOMALY_SCHEMA_PATH.read_text()
    block = text[text.index("# More examples"):text.index("version: 1")]
    lines = [line[2:] if line.startswith("# ") else line[1:] for line in block.splitlines()[1:]]
    examples = parse_rules("version: 1\nrules:\n" + "\n".join(lines))
    assert {r.kind for r in examples.rules} == {"spike", "threshold", "new_term", "sequence", "ml"}
    assert {r.source["model"] for r in examples.rules if r.kind == "ml"} == {"window", "session", "new_template",
                                                                            "forecast"}
    assert all(build_rule(r) for r in examples.rules)


def test_a_new_kind_plugs_into_the_registry():
    from logwarden.monitoring.rules import register_kind
    from logwarden.monitoring.rules.base import Rule
    from logwarden.monitoring.rules.registry import unregister_kind

    class EveryErrorRule(Rule):
        kind = "every_error"

        def on_matches(self, matched):
            return [self.anomaly("*", 0, 0, matched.num_rows)]

        def evaluate(self):
            return []

        def garbage_collect(self):
            pass

    register_kind("every_error", EveryErrorRule, properties={"note": {"type": "string"}})
    try:
        spec = rules("  - {name: e, kind: every_error, note: hi, severity: LOW}")["e"]
        assert spec.option("note") == "hi"
        assert [a.value for a in build_rule(spec).add_data(table([rec(0), rec(1)]))] == [2.0]
        with pytest.raises(ConfigError, match="'window' was unexpected"):
            rules("  - {name: e, kind: every_error, window: 1m, severity: LOW}")
    finally:
        unregister_kind("every_error")


def test_ml_rules_are_a_registered_kind():
    pytest.importorskip("logwarden.monitoring.ml")
    spec = rules("  - {name: forecast, kind: ml, model: forecast, threshold: {op: '>', value: 0.2}, severity: LOW}")
    rule = build_rule(spec["forecast"])
    assert type(rule).__name__ == "MlRule" and pickle.loads(pickle.dumps(rule)).spec.name == "forecast"
    with pytest.raises(ConfigError, match=r"rules\.m\.model: "):
        rules("  - {name: m, kind: ml, model: nonsense, severity: LOW}")


@pytest.mark.parametrize("size", [1, 4, 100])
def test_flatline_with_a_count_below_three_fires_once_and_resolves(size):
    spec = rules("""
  - name: thin_traffic
    kind: flatline
    group_by: service
    window: 1m
    threshold: {op: "<", value: 3}
    allowed_lateness: 0s
    severity: LOW
""")["thin_traffic"]
    seconds = list(range(0, 101, 10)) + list(range(140, 300, 40)) + list(range(300, 400, 10))
    rows = [rec(s, "a") for s in seconds]
    _, out = run(spec, [rows[n:n + size] for n in range(0, len(rows), size)])
    assert [(a.status, a.value, a.window_end) for a in out] == [
        ("firing", 2.0, "2026-11-22T10:02:30Z"), ("resolved", 3.0, "2026-11-22T10:05:10Z")]
