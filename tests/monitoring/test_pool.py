"""The detector pool on a real Ray: sharded rules give the in-process alerts; a killed actor resumes from
its checkpoint with no alert lost or repeated; live edits of the rules file reload within 2 s, keep the
window state of unchanged rules, and a bad edit is refused while the running rules go on."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time

import pyarrow as pa
import pytest

from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring import DetectorSet, load_rules, parse_rules

from tests.monitoring.helpers import rec, table

pytestmark = pytest.mark.cluster
ray = pytest.importorskip("ray")
SEED = ANOMALY_SCHEMA_PATH.read_text()
SHARDED = re.sub(r"(?m)^    shards: \d+", "    shards: 3", SEED)  # suspicious_user on three shards


@pytest.fixture(scope="module")
def ray_session():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # RAY_AUTH_MODE: pinned by tests/conftest.py
    temp = tempfile.mkdtemp(prefix="lw-ray-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
             logging_level="WARNING")
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def traffic() -> list[list[dict]]:
    """Batches: user errors (suspicious_user), a db failure burst, a silent service, slow requests."""
    rows = []
    for i in range(3000):
        second = i * 0.5
        service = ["api", "pay", "db", "auth"][i % 4]
        if service == "db" and second > 300:
            continue
        level, message, user = "INFO", "ok", None
        if service == "auth":
            user = f"u{i % 7}"
            level = "ERROR"
        if service == "pay" and 400 < second < 430:
            level, message = "ERROR", "Database connection failed"
        rows.append(rec(second, service, level, message, user_id=user,
                        duration_ms=7000.0 if i % 700 == 5 else 20.0))
    rows.sort(key=lambda r: r["timestamp"])
    return [rows[n:n + 150] for n in range(0, len(rows), 150)]


def expected(rules, batches):
    detectors = DetectorSet(rules.by_name().values())
    out = []
    for n, batch in enumerate(batches):
        out += detectors.process(f"b{n}", table(batch))
    return out


def ids(anomalies):
    return sorted(a.id for a in anomalies)


def test_sharded_pool_raises_the_in_process_alerts(ray_session):
    from logwarden.monitoring.actors import DetectorPool

    rules = parse_rules(SHARDED)
    batches = traffic()
    pool = DetectorPool(rules)
    try:
        assert len(pool.actors("suspicious_user")) == 3
        got = []
        for n, batch in enumerate(batches):
            got += pool.process(f"b{n}", table(batch))
        got += pool.process("b0", table(batches[0]))  # re-delivered: nothing twice
        want = expected(rules, batches)
        assert {a.rule for a in want} >= {"suspicious_user", "service_down", "slow_response", "db_connection_failure"}
        assert ids(got) == ids(want)
        shard_stats = pool.stats()["suspicious_user"]
        assert all(s["rules"]["suspicious_user"]["max_event_us"] for s in shard_stats)  # every shard's clock moved
    finally:
        pool.shutdown()


@pytest.mark.parametrize("per_call", [1, 3])  # batches handed on one by one, or three to each actor call
def test_killed_actor_resumes_from_its_checkpoint(ray_session, tmp_path, per_call):
    from logwarden.monitoring.actors import DetectorPool

    rules = parse_rules(SHARDED)
    batches = traffic()
    pool = DetectorPool(rules, checkpoint_dir=tmp_path / "checkpoints", checkpoint_every=4, checkpoint_seconds=3600)
    try:
        got = []
        for start in range(0, len(batches), per_call):
            if start in (9, 15):
                for actor in pool.actors("suspicious_user")[:2] + pool.actors("service_down"):
                    ray.kill(actor, no_restart=False)
            group = [(f"b{n}", table(batches[n])) for n in range(start, min(start + per_call, len(batches)))]
            got += pool.process(*group[0]) if per_call == 1 else pool.process_many(group)
        got += pool.process_many([("b0", table(batches[0])), ("b1", table(batches[1]))])  # again: nothing twice
        assert (tmp_path / "checkpoints" / "suspicious_user" / "0.ckpt").exists()
        assert pool.replayed_calls > 0
        assert all(s["restored"] for s in pool.stats()["service_down"])
        want = expected(rules, batches)
        assert ids(got) == ids(want)  # none lost
        assert len(got) == len({a.id for a in got})  # none repeated
    finally:
        pool.shutdown()


def test_live_edit_reloads_keeps_state_and_refuses_bad_edits(ray_session, tmp_path):
    from logwarden.rules_watch import RulesWatcher
    from logwarden.monitoring.actors import DetectorPool

    path = tmp_path / "rules.yaml"
    path.write_text(SEED)
    pool = DetectorPool(load_rules(path))
    reloads: list[tuple[float, dict]] = []
    refused: list[str] = []
    done = threading.Event()

    def on_change() -> None:
        try:
            rules = load_rules(path)
        except ConfigError as exc:
            refused.append(str(exc))
            done.set()
            return
        reloads.append((time.monotonic(), pool.reload(rules)))
        done.set()

    watcher = RulesWatcher(path, on_change)
    watcher.start()
    try:
        errors = [rec(i * 0.5, "pay", "ERROR", "boom") for i in range(100)]  # 100 errors: one short of error_spike
        assert pool.process("b1", table(errors)) == []
        # edit: slow_response's threshold changes; error_spike is untouched
        time.sleep(0.2)
        edited_at = time.monotonic()
        path.write_text(SEED.replace('threshold: {op: ">", value: 5000}', 'threshold: {op: ">", value: 3000}'))
        assert done.wait(10)
        done.clear()
        when, changes = reloads[-1]
        assert changes["changed"] == ["slow_response"] and "error_spike" in changes["kept"]
        assert when - edited_at < 2.0
        out = pool.process("b2", table([rec(51, "pay", "ERROR", "boom"), rec(52, "api", duration_ms=4000.0)]))
        assert sorted((a.rule, a.key, a.value) for a in out) == [("error_spike", "pay", 101.0),
                                                                 ("slow_response", "api", 4000.0)]
        # a bad edit is refused, naming the rule and the field; the running rules go on
        time.sleep(0.5)
        before = len(reloads)
        path.write_text(SEED.replace("severity: HIGH", "severity: URGENT", 1))
        deadline = time.monotonic() + 10
        while not refused and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "rules.error_spike.severity: 'URGENT'" in refused[-1]
        assert all(not c["changed"] and not c["added"] and not c["removed"] for _, c in reloads[before:])
        out = pool.process("b3", table([rec(60, "web", duration_ms=3500.0)]))
        assert [(a.rule, a.key) for a in out] == [("slow_response", "web")]
    finally:
        watcher.stop()
        pool.shutdown()


ML_RULES = SEED + """
  - name: new_error_patterns
    kind: ml
    model: new_template
    severity: LOW
    learn_for: 10m
    realert: 0s
"""


def test_an_ml_rule_runs_on_ray_beside_the_rules(ray_session):
    from logwarden.monitoring.actors import DetectorPool
    from logwarden.processing.templates import TemplateMiner

    miner = TemplateMiner()

    def templated(rows):
        batch = table(rows)
        matches = [miner.add(m) for m in batch["message"].to_pylist()]
        batch = batch.append_column("template_id", pa.array([m.template_id for m in matches]))
        return batch.append_column("template", pa.array([m.template for m in matches]))

    rules = parse_rules(ML_RULES, "rules.yaml")
    warm = [rec(i, "pay", "INFO", f"charged order {i}") for i in range(0, 900, 3)]
    new = [rec(1000, "pay", "ERROR", "ledger write failed: disk quota exceeded on /var/lib/ledger")]
    pool = DetectorPool(rules)
    try:
        assert "new_error_patterns" in pool.rule_names()
        assert [a for a in pool.process("b0", templated(warm)) if a.rule == "new_error_patterns"] == []
        fired = [a for a in pool.process("b1", templated(new)) if a.rule == "new_error_patterns"]
    finally:
        pool.shutdown()
    assert [(a.key.split("|")[0], a.severity, a.status) for a in fired] == [("pay", "LOW", "firing")]
    assert "disk quota" in " ".join(fired[0].samples)


def test_rules_share_actors_by_default_and_one_per_rule_on_request(ray_session):
    from logwarden.monitoring.actors import DetectorPool, actor_layout

    rules = parse_rules(ML_RULES, "rules.yaml")
    layout = dict(actor_layout(rules))
    assert layout.keys() == {"group:rules", "group:ml", "suspicious_user"}
    assert "new_error_patterns" in [s.name for s in layout["group:ml"]]
    assert {s.kind for s in layout["group:ml"]} == {"ml"} and "ml" not in {s.kind for s in layout["group:rules"]}
    assert "suspicious_user" not in [s.name for s in layout["group:rules"]]  # sharded: actors of its own
    assert len(actor_layout(rules, grouped=False)) == len(rules.rules)
    batches = traffic()
    grouped, single = DetectorPool(rules), DetectorPool(rules, grouped=False)
    try:
        assert grouped.actors("error_spike") == grouped.actors("service_down")
        assert single.actors("error_spike") != single.actors("service_down")
        got = {name: [] for name in ("grouped", "single")}
        for n, batch in enumerate(batches):
            got["grouped"] += grouped.process(f"b{n}", table(batch))
            got["single"] += single.process(f"b{n}", table(batch))
        assert ids(got["grouped"]) == ids(got["single"]) == ids(expected(rules, batches))
    finally:
        grouped.shutdown()
        single.shutdown()


def test_a_changed_rule_restarts_its_group_and_the_others_keep_their_state(ray_session, tmp_path):
    """The group's actor is replaced; error_spike's window (100 errors, one short) carries over, and a kill of
    the new actor afterwards resumes from the checkpoints with nothing lost."""
    from logwarden.monitoring.actors import DetectorPool

    pool = DetectorPool(parse_rules(SEED), checkpoint_dir=tmp_path / "ckpt", checkpoint_every=1)
    try:
        before = pool.actors("error_spike")
        assert pool.process("b1", table([rec(i * 0.5, "pay", "ERROR", "boom") for i in range(100)])) == []
        changes = pool.reload(parse_rules(SEED.replace('threshold: {op: ">", value: 5000}',
                                                       'threshold: {op: ">", value: 3000}')))
        assert changes["changed"] == ["slow_response"] and "error_spike" in changes["kept"]
        assert pool.actors("error_spike") != before
        assert not (tmp_path / "ckpt" / "slow_response").exists()  # a changed rule starts empty
        out = pool.process("b2", table([rec(51, "pay", "ERROR", "boom"), rec(52, "api", duration_ms=4000.0)]))
        assert sorted((a.rule, a.key) for a in out) == [("error_spike", "pay"), ("slow_response", "api")]
        ray.kill(pool.actors("error_spike")[0], no_restart=False)
        out = pool.process("b3", table([rec(53, "web", duration_ms=3500.0)]))
        assert [(a.rule, a.key) for a in out] == [("slow_response", "web")]  # error_spike did not fire again
        assert all(s["restored"] for s in pool.stats()["error_spike"])
    finally:
        pool.shutdown()
