"""Tenants never mix in a detector: the tenant is an implicit leading part of every rule's key.

Records of two tenants on the same service count apart (each below a threshold: nothing fires); an
anomaly carries the tenant of the records that raised it and shows its key as before; records
without a tenant are the default tenant's. Each test has a control that would fire (or not) if the
tenants were mixed.
"""
from __future__ import annotations

import logging
import pickle

import pyarrow as pa

from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring import DetectorSet, load_rules, parse_rules
from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.rules import build_rule
from logwarden.monitoring.rules.keys import TENANT_SEPARATOR, keys_of, split_key, tenant_key_column
from logwarden.schemas import ANOMALY_SCHEMA_PATH

from tests.monitoring.helpers import rec, table

RULES = load_rules(ANOMALY_SCHEMA_PATH).by_name()


def rules(text: str):
    return parse_rules("version: 1\nrules:\n" + text).by_name()


def run(spec, batches):
    rule = build_rule(spec)
    out = []
    for batch in batches:
        out += rule.add_data(table(batch))
    return rule, out


def firing(anomalies):
    return [a for a in anomalies if a.status == "firing"]


def errors(n: int, tenant: str | None, service: str = "pay", start: float = 0.0, step: float = 1.0) -> list[dict]:
    extra = {} if tenant is None else {"tenant": tenant}
    return [dict(rec(start + i * step, service, "ERROR", f"boom {tenant} {i}", **extra),
                 record_id=f"{tenant}-{service}-{i}") for i in range(n)]


# keys ---------------------------------------------------------------------------------------
def test_the_key_text_leads_with_the_tenant_and_splits_back():
    records = table([rec(0, "pay", tenant="acme"), rec(1, "pay"), rec(2, "pay", tenant="")])
    assert tenant_key_column(records, ("service",)).to_pylist() == [
        f"acme{TENANT_SEPARATOR}pay", f"default{TENANT_SEPARATOR}pay", f"default{TENANT_SEPARATOR}pay"]
    keys = keys_of(records, ("service",))
    assert keys.hashes[0] != keys.hashes[1] and keys.hashes[1] == keys.hashes[2]
    assert split_key(f"acme{TENANT_SEPARATOR}pay{TENANT_SEPARATOR}x") == ("acme", f"pay{TENANT_SEPARATOR}x")
    assert split_key("pay") == (DEFAULT_TENANT, "pay")  # state of an older version


def test_the_default_tenant_is_the_collectors():
    from logwarden.collector.config import CollectorConfig

    assert CollectorConfig().default_tenant == DEFAULT_TENANT == CollectorConfig().stream_tenant


# frequency ------------------------------------------------------------------------------------
def test_two_tenants_below_the_threshold_on_one_service_do_not_fire():
    both = errors(60, "acme") + errors(60, "globex", start=0.5)  # 120 errors of pay in 60 s, 60 per tenant
    _, out = run(RULES["error_spike"], [both])
    assert out == []
    # control: the same 120 errors of one tenant fire (error_spike is "> 100 in 5 minutes")
    _, out = run(RULES["error_spike"], [errors(60, "acme") + errors(60, "acme", start=0.5)])
    assert [(a.key, a.tenant, a.value) for a in firing(out)] == [("pay", "acme", 101.0)]


def test_one_tenant_above_the_threshold_fires_with_its_tenant_and_only_its_samples():
    mixed = errors(101, "acme") + errors(90, "globex", start=0.25)
    _, out = run(RULES["error_spike"], [mixed])
    [alert] = firing(out)
    assert (alert.rule, alert.key, alert.tenant, alert.value) == ("error_spike", "pay", "acme", 101.0)
    assert len(alert.samples) == 5 and all("boom acme" in line for line in alert.samples)
    assert alert.dedup_key == "acme/error_spike:pay"


def test_records_without_a_tenant_column_are_the_default_tenants():
    records = table(errors(101, None)).drop_columns(["tenant"])
    out = build_rule(RULES["error_spike"]).add_data(records)
    assert [(a.key, a.tenant) for a in firing(out)] == [("pay", DEFAULT_TENANT)]
    assert out[0].dedup_key == "error_spike:pay"  # as before tenants


def test_two_tenants_firing_on_one_service_are_two_alerts_with_their_own_identity():
    _, out = run(RULES["error_spike"], [errors(101, "acme") + errors(101, "globex", start=0.25)])
    alerts = firing(out)
    assert sorted((a.key, a.tenant) for a in alerts) == [("pay", "acme"), ("pay", "globex")]
    assert len({a.id for a in alerts}) == 2 and len({a.dedup_key for a in alerts}) == 2


def test_the_default_tenant_keeps_the_identity_an_alert_had_before_tenants():
    fields = dict(rule="error_spike", kind="frequency", severity="HIGH", key="pay", window_start="a",
                  window_end="b", value=1.0, threshold="> 100")
    plain = Anomaly(**fields)
    import hashlib

    assert plain.id == hashlib.sha1(b"error_spike|pay|b|firing").hexdigest()[:16]
    assert plain.dedup_key == "error_spike:pay" and plain.tenant == DEFAULT_TENANT
    other = Anomaly(**fields, tenant="acme")
    assert other.id != plain.id and other.dedup_key == "acme/error_spike:pay"
    old = {k: v for k, v in plain.to_dict().items() if k != "tenant"}  # stored by an older version
    assert Anomaly.from_dict(old).tenant == DEFAULT_TENANT
    assert Anomaly.from_dict(other.to_dict()) == other


# flatline -------------------------------------------------------------------------------------
def test_flatline_is_per_tenant():
    first = [rec(i * 10.0, "db", tenant=t) for i in range(6) for t in ("acme", "globex")]
    only_globex = [rec(60 + i * 10.0, "db", tenant="globex") for i in range(70)]  # acme's db falls silent
    _, out = run(RULES["service_down"], [first, only_globex])
    assert [(a.key, a.tenant, a.status) for a in out] == [("db", "acme", "firing")]
    # control: without tenants the same db never falls silent
    same = [{k: v for k, v in r.items() if k != "tenant"} for r in first + only_globex]
    _, out = run(RULES["service_down"], [same])
    assert out == []


def test_flatline_resolves_the_silent_tenant_only_with_its_own_records():
    rule = build_rule(RULES["service_down"])
    rule.add_data(table([rec(i * 10.0, "db", tenant=t) for i in range(6) for t in ("acme", "globex")]))
    out = rule.add_data(table([rec(60 + i * 10.0, "db", tenant="globex") for i in range(70)]))
    assert [(a.tenant, a.status) for a in out] == [("acme", "firing")]
    out = rule.add_data(table([rec(800, "db", tenant="globex")]))
    assert out == []  # globex's records do not bring acme's db back
    out = rule.add_data(table([rec(810, "db", tenant="acme")]))
    assert [(a.key, a.tenant, a.status) for a in out] == [("db", "acme", "resolved")]


# the other kinds ------------------------------------------------------------------------------
def test_new_term_is_new_per_tenant():
    spec = rules("""
  - name: new_error_code
    kind: new_term
    field: error_code
    severity: LOW
""")["new_error_code"]
    _, out = run(spec, [[rec(0, "api", "ERROR", error_code="E1", tenant="acme")],
                        [rec(10, "api", "ERROR", error_code="E1", tenant="globex")],
                        [rec(20, "api", "ERROR", error_code="E1", tenant="acme")]])
    assert [(a.key, a.tenant) for a in firing(out)] == [("E1", "acme"), ("E1", "globex")]


def test_a_sequence_does_not_complete_across_tenants():
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
    failures = [rec(i * 10.0, "auth", "WARNING", "login failed", user_id="u1", tenant="acme") for i in range(5)]
    _, out = run(spec, [failures + [rec(60, "auth", "INFO", "login succeeded", user_id="u1", tenant="globex")]])
    assert out == []
    _, out = run(spec, [failures + [rec(60, "auth", "INFO", "login succeeded", user_id="u1", tenant="acme")]])
    assert [(a.key, a.tenant) for a in out] == [("u1", "acme")]


def test_a_window_aggregate_is_per_tenant():
    spec = rules("""
  - name: busy
    kind: threshold
    field: duration_ms
    aggregate: count
    window: 1m
    threshold: {op: ">=", value: 10}
    group_by: service
    severity: LOW
""")["busy"]
    rows = [rec(i * 2.0, "api", duration_ms=1.0, tenant="acme" if i % 2 else "globex") for i in range(18)]
    later = [rec(200, "api", duration_ms=1.0, tenant="acme")]
    _, out = run(spec, [rows, later])
    assert out == []  # 9 per tenant in the first minute
    rows = [rec(i * 2.0, "api", duration_ms=1.0, tenant="acme") for i in range(10)] + rows
    _, out = run(spec, [rows, later])
    assert [(a.key, a.tenant, a.value) for a in firing(out)] == [("api", "acme", 19.0)]


def test_threshold_alerts_of_two_tenants_are_both_raised():
    rows = [rec(0, "api", duration_ms=8000.0, tenant="acme"), rec(1, "api", duration_ms=9000.0, tenant="globex")]
    _, out = run(RULES["slow_response"], [rows])
    assert sorted((a.key, a.tenant, a.value) for a in firing(out)) == [("api", "acme", 8000.0),
                                                                         ("api", "globex", 9000.0)]


# engine: sharding, ordering, checkpoints --------------------------------------------------------
def _mixed_traffic() -> list[dict]:
    rows = []
    for t, tenant in enumerate(("acme", "globex", None)):
        extra = {} if tenant is None else {"tenant": tenant}
        for i in range(0, 900, 3):
            rows.append(dict(rec(i + t * 0.1, "pay", "INFO", **extra), record_id=f"{tenant}-i-{i}"))
        burst = 101 if tenant != "globex" else 60
        rows += [dict(rec(300 + i + t * 0.1, "pay", "ERROR", **extra), record_id=f"{tenant}-e-{i}")
                 for i in range(burst)]
        if tenant == "acme":
            rows += [dict(rec(i * 5.0, "db", **extra), record_id=f"{tenant}-db-{i}") for i in range(10)]
    return sorted(rows, key=lambda r: r["timestamp"])


def test_sharding_routes_by_tenant_and_key_and_gives_the_same_alerts():
    from logwarden.monitoring.sharding import newest_event_us, split_by_key

    specs = list(RULES.values())
    rows = _mixed_traffic()
    single = DetectorSet(specs)
    shards = [DetectorSet(specs) for _ in range(3)]
    expected, got = [], []
    for n in range(0, len(rows), 250):
        batch = table(rows[n:n + 250])
        expected += single.process(f"b{n}", batch)
        for shard, part in zip(shards, split_by_key(batch, ("service",), 3)):
            got += shard.process(f"b{n}", part, newest_event_us(batch))
    assert sorted(a.id for a in got) == sorted(a.id for a in expected)
    fired = {(a.rule, a.key, a.tenant) for a in expected if a.status == "firing"}
    assert {("error_spike", "pay", "acme"), ("error_spike", "pay", DEFAULT_TENANT),
            ("service_down", "db", "acme")} <= fired
    assert ("error_spike", "pay", "globex") not in fired


def test_alerts_of_tenants_come_in_one_order_however_batched():
    specs = list(RULES.values())
    rows = _mixed_traffic()
    whole = DetectorSet(specs).process("all", table(rows))
    detectors = DetectorSet(specs)
    batched = []
    for n in range(0, len(rows), 97):
        batched += detectors.process(f"b{n}", table(rows[n:n + 97]))
    assert [a.to_dict() for a in batched] == [a.to_dict() for a in whole]


def test_state_keyed_by_tenant_survives_pickling():
    specs = list(RULES.values())
    rows = _mixed_traffic()
    straight = DetectorSet(specs)
    expected = []
    for n in range(0, len(rows), 200):
        expected += straight.process(f"b{n}", table(rows[n:n + 200]))
    resumed = DetectorSet(specs)
    got = []
    for n in range(0, len(rows), 200):
        got += resumed.process(f"b{n}", table(rows[n:n + 200]))
        if n == 400:
            snapshot = pickle.loads(pickle.dumps(resumed.snapshot()))
            resumed = DetectorSet(specs)
            resumed.restore(snapshot)
    assert [a.id for a in got] == [a.id for a in expected]


def test_a_checkpoint_of_keys_without_tenants_is_discarded_with_a_log_line(tmp_path, caplog):
    from logwarden.monitoring.checkpoint import FORMAT, Checkpoint, CheckpointStore

    store = CheckpointStore(tmp_path, "error_spike", 0)
    store.save(Checkpoint("fp", "s", 3, {"rules": {}, "seen": [], "last_batch_id": None}))
    assert store.load("fp") is not None
    with open(store.path, "wb") as out:  # what the version before tenants wrote
        pickle.dump({"format": 1, "checkpoint": Checkpoint("fp", "s", 3, {})}, out)
    with caplog.at_level(logging.WARNING, logger="logwarden.monitoring.checkpoint"):
        assert store.load("fp") is None
    assert FORMAT == 2 and "discarded" in caplog.text and "tenant" in caplog.text


# replay ---------------------------------------------------------------------------------------
def test_replay_lines_show_the_tenant_only_when_it_is_not_the_default():
    import orjson

    from logwarden.monitoring.replay import alert_lines

    out = DetectorSet([RULES["error_spike"]]).process("b", table(errors(101, "acme") + errors(101, None, "api")))
    lines = [orjson.loads(line) for line in alert_lines(out)]
    assert [(line["key"], line.get("tenant")) for line in lines] == [("api", None), ("pay", "acme")]
    assert list(lines[0]) == ["rule", "severity", "key", "window_start", "window_end", "value"]
    assert list(lines[1])[-1] == "tenant"


# ML rules ---------------------------------------------------------------------------------------
def _templated(miner, records: list[dict]) -> pa.Table:
    batch = table(records)
    matches = [miner.add(m) for m in batch["message"].to_pylist()]
    batch = batch.append_column("template_id", pa.array([m.template_id for m in matches]))
    return batch.append_column("template", pa.array([m.template for m in matches]))


def test_ml_findings_carry_the_tenant_of_their_records():
    from logwarden.monitoring.ml import MlRule
    from logwarden.processing.templates import TemplateMiner

    spec = {"name": "new_patterns", "kind": "ml", "severity": "LOW", "model": "new_template",
            "learn_for": "10m", "rise_factor": 5, "min_count": 10, "realert": "0s"}
    miner = TemplateMiner()
    rule = MlRule(spec)
    warm = [rec(i, "pay", "INFO", f"charged order {i} in {i % 50} ms", tenant=t)
            for i in range(0, 900, 3) for t in ("acme", "globex")]
    assert rule.add_data(_templated(miner, warm)) == []
    text = "ledger write failed: disk quota exceeded on /var/lib/ledger"
    out = rule.add_data(_templated(miner, [rec(1000, "pay", "ERROR", text, tenant="acme")]))
    assert [(a.key.split("|")[0], a.tenant) for a in firing(out)] == [("pay", "acme")]
    assert TENANT_SEPARATOR not in out[0].samples[0] and "/var/lib/ledger" in out[0].samples[-1]
    # the same pattern is still new for the other tenant: its records were never scored with acme's
    out = rule.add_data(_templated(miner, [rec(1010, "pay", "ERROR", text + "2", tenant="globex")]))
    assert [(a.key.split("|")[0], a.tenant) for a in firing(out)] == [("pay", "globex")]
    assert rule.stats()["tenants"] == 3  # default (unused), acme, globex


def test_ml_feedback_of_one_tenant_does_not_suppress_another(tmp_path):
    from logwarden.monitoring.ml import MlRule
    from logwarden.monitoring.ml.feedback import FALSE_POSITIVE, FeedbackStore
    from logwarden.processing.templates import TemplateMiner

    spec = {"name": "new_patterns", "kind": "ml", "severity": "LOW", "model": "new_template",
            "learn_for": "10m", "rise_factor": 5, "min_count": 10, "realert": "0s", "data_dir": str(tmp_path)}
    miner = TemplateMiner()
    rule = MlRule(spec)
    rule.add_data(_templated(miner, [rec(i, "pay", "INFO", f"charged order {i} in {i % 50} ms", tenant=t)
                                     for i in range(0, 900, 3) for t in ("acme", "globex")]))
    text = "ledger write failed: disk quota exceeded on /var/lib/ledger"
    [acme] = firing(rule.add_data(_templated(miner, [rec(1000, "pay", "ERROR", text, tenant="acme")])))
    feedback = FeedbackStore.for_data_dir(tmp_path)
    stored = feedback.get(acme.id)
    assert stored["pattern"].startswith(f"acme{TENANT_SEPARATOR}pay|") and stored["payload"]["tenant"] == "acme"
    feedback.set_feedback(acme.id, FALSE_POSITIVE, "alice")
    rule.refresh_feedback()
    out = firing(rule.add_data(_templated(miner, [rec(1010, "pay", "ERROR", text, tenant="globex")])))
    assert [(a.tenant, a.key) for a in out] == [("globex", acme.key)] and rule.suppressed == 0
