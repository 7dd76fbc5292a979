"""The ML rules of the default rules file: warm-up (kept across a restart, validated), and every ML alert
saying why (its top signals against normal)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring.checkpoint import Checkpoint, CheckpointStore
from logwarden.monitoring.engine import DetectorSet
from logwarden.monitoring.ml import MlRule
from logwarden.monitoring.ml.explain import signals_of, why_text
from logwarden.monitoring.rules import load_rules, parse_rules
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from tests.monitoring.helpers import rec, table as record_table

DEFAULT = load_rules(ANOMALY_SCHEMA_PATH)
ML_RULES = {"ml_new_error_pattern": "new_template", "ml_unusual_minutes": "window",
            "ml_error_rate_trend": "forecast"}
NEW_ERROR = "Ledger write rejected: idempotency key reused"


def minutes_of_traffic(first: int, last: int) -> list[dict]:
    """Two INFO and one ERROR (a known template) record per minute of [first, last)."""
    rows = []
    for minute in range(first, last):
        rows += [rec(minute * 60 + 5, "pay", "INFO", "charged", template_id="t-ok", template="charged"),
                 rec(minute * 60 + 25, "pay", "INFO", "charged", template_id="t-ok", template="charged"),
                 rec(minute * 60 + 45, "pay", "ERROR", "card declined", template_id="t-declined",
                     template="card declined")]
    return rows


def new_error(minute: int, template: str = NEW_ERROR) -> list[dict]:
    return [rec(minute * 60 + 10, "pay", "ERROR", template, template_id=f"t-{template}", template=template)]


def table(rows: list[dict]) -> pa.Table:
    """Rows in the record layout plus the template columns processing adds."""
    ordered = sorted(rows, key=lambda r: r["timestamp"])
    out = record_table(ordered)
    out = out.append_column("template_id", pa.array([r["template_id"] for r in ordered], pa.string()))
    return out.append_column("template", pa.array([r["template"] for r in ordered], pa.string()))


def fired(detectors: DetectorSet, name: str, rows: list[dict]) -> list:
    return [a for a in detectors.process(name, table(rows)) if a.kind == "ml" and a.status == "firing"]


def test_the_default_file_enables_the_safe_ml_rules_with_a_warm_up_at_low():
    specs = DEFAULT.by_name()
    assert {name: specs[name].source["model"] for name in ML_RULES} == ML_RULES
    for name in ML_RULES:
        rule = MlRule(specs[name])
        assert rule.spec.severity == "LOW" and rule.warm_up.needed_minutes >= 30
    assert DEFAULT.routing["LOW"] == ["dashboard"]


def test_warm_up_survives_a_restart_through_the_checkpoint(tmp_path):
    spec = DEFAULT.by_name()["ml_new_error_pattern"]  # warm_up: 30m
    detectors = DetectorSet([spec])
    assert fired(detectors, "b0", minutes_of_traffic(0, 20) + new_error(19, "Cache miss storm")) == []  # warming up
    rule = detectors.rules[spec.name]
    assert rule.warm_up.minutes["default"] == 20 and not rule.warm_up.done("default")
    store = CheckpointStore(tmp_path, spec.name, 0)
    store.save(Checkpoint(spec.fingerprint, "s1", 1, detectors.snapshot()))

    restarted = DetectorSet([spec])
    restarted.restore(store.load(spec.fingerprint).snapshot)
    assert restarted.rules[spec.name].warm_up.minutes["default"] == 20
    assert fired(restarted, "b1", minutes_of_traffic(20, 31)) == []
    alerts = fired(restarted, "b2", new_error(31) + minutes_of_traffic(31, 32))
    assert [(a.rule, a.key.split("|")[0], a.severity) for a in alerts] == [("ml_new_error_pattern", "pay", "LOW")]
    assert NEW_ERROR in alerts[0].explanation["text"]

    fresh = DetectorSet([spec])  # the same 12 minutes without the checkpoint: the warm-up starts over
    assert fired(fresh, "b1", minutes_of_traffic(20, 31)) == []
    assert fired(fresh, "b2", new_error(31) + minutes_of_traffic(31, 32)) == []


def test_late_records_do_not_count_a_minute_twice():
    rule = MlRule(DEFAULT.by_name()["ml_new_error_pattern"])
    rule.add_data(table(minutes_of_traffic(0, 10)))
    rule.add_data(table(minutes_of_traffic(5, 10)))
    assert rule.warm_up.minutes["default"] == 10


def test_a_bad_warm_up_is_refused_with_file_line_rule_and_key():
    text = ANOMALY_SCHEMA_PATH.read_text()
    bad = text.replace("warm_up: 30m", "warm_up: half an hour", 1)
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if "half an hour" in s)
    with pytest.raises(ConfigError) as caught:
        parse_rules(bad, "anomaly_schema.yaml")
    assert str(caught.value).startswith(f"anomaly_schema.yaml:{line}: rules.ml_new_error_pattern.warm_up: ")


def test_each_model_names_its_top_signals_against_normal():
    window = signals_of({"model": "window", "features": [
        {"feature": "duration_p50", "value": 245.0, "baseline": 81.0, "z": 6.2},
        {"feature": "count", "value": 300, "baseline": 290, "z": 0.3}]}, 0.7, 0.6)
    assert window[0] == {"signal": "duration_p50", "value": 245.0, "normal": 81.0, "z": 6.2}
    assert why_text(window).startswith("duration_p50=245 (normal 81, z +6.2)")
    session = signals_of({"model": "session", "template": "Refund sent", "after": ["<s>", "Order paid"],
                          "expected": [{"template_id": "3", "template": "Order shipped", "p": 0.97}]}, 9.2, 6.9)
    assert session[0]["value"] == "Order paid -> 'Refund sent'" and session[0]["probability"] == pytest.approx(1e-4, 0.01)
    assert "'Order shipped' (p 0.97)" in why_text(session)
    new = signals_of({"model": "new_template", "reason": "new", "template": NEW_ERROR, "level": "ERROR"}, 1, 0,
                     ["2026-11-22T10:00:00Z ERROR pay: Ledger write rejected"])
    assert new[0]["first_lines"] == ["2026-11-22T10:00:00Z ERROR pay: Ledger write rejected"]
    assert why_text(new) == f"new ERROR template '{NEW_ERROR}' (never seen before)"
    forecast = signals_of({"model": "forecast", "forecast": 0.052, "minutes_ahead": 12,
                           "features": [{"value": 0.031, "level": 0.03, "trend_per_min": 0.0018}]}, 0.052, 0.05)
    assert why_text(forecast).startswith("error rate forecast 0.052 > 0.05 in 12 min; error_rate=0.031 (normal 0.03")


def test_a_baseline_trained_on_an_empty_lake_does_not_make_known_templates_new():
    """``logwarden up`` trains every model once at start, on whatever the lake holds (nothing on a new
    installation); the rule must not forget the templates it saw since."""
    from logwarden.monitoring.ml.templates import TemplateBaseline
    from logwarden.monitoring.ml.window_model import WindowModelSet

    detectors = DetectorSet([DEFAULT.by_name()["ml_new_error_pattern"]])
    fired(detectors, "b0", minutes_of_traffic(0, 31))
    rule = detectors.rules["ml_new_error_pattern"]
    rule.stream.use_model(TemplateBaseline())
    assert fired(detectors, "b1", minutes_of_traffic(31, 33)) == []  # "card declined" is no new template
    assert [a.key for a in fired(detectors, "b2", new_error(33))] == ["pay|t-" + NEW_ERROR]

    window = MlRule(DEFAULT.by_name()["ml_unusual_minutes"]).stream
    window.models.models["pay"] = "a model trained in process"
    window.use_model(WindowModelSet())
    assert window.models.models == {"pay": "a model trained in process"}
