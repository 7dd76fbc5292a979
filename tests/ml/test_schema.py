"""The ML rule schema fragment: it validates the keys of ``kind: ml`` rules and plugs into the rules file."""
from __future__ import annotations

import copy

import jsonschema
import pytest

from logwarden.monitoring.ml import ML_RULE_SCHEMA, MlConfig, MlRule

GOOD = [
    {"name": "svc_windows", "kind": "ml", "model": "window", "severity": "HIGH", "min_duration": "3m",
     "retrain_every": "1d", "threshold_quantile": 0.99},
    {"name": "request_flow", "kind": "ml", "model": "session", "severity": "MEDIUM",
     "session_key": "request_id", "session_timeout": "5m", "history": 3},
    {"name": "hdfs_blocks", "kind": "ml", "model": "session", "severity": "MEDIUM",
     "session_regex": "(blk_-?\\d+)", "filter": [{"field": "service", "equals": "hdfs"}]},
    {"name": "new_patterns", "kind": "ml", "model": "new_template", "severity": "LOW", "levels": ["ERROR"],
     "rise_factor": 5, "min_count": 10, "learn_for": "1h"},
    {"name": "error_trend", "kind": "ml", "model": "forecast", "severity": "MEDIUM",
     "threshold": {"op": ">", "value": 0.05}, "horizon": "30m", "smoothing": {"alpha": 0.3, "beta": 0.1}},
]
BAD = [
    ({"name": "x", "kind": "ml", "model": "lstm", "severity": "LOW"}, "model"),
    ({"name": "x", "kind": "ml", "model": "forecast", "severity": "LOW"}, "threshold"),
    ({"name": "x", "kind": "ml", "model": "window", "severity": "LOW", "min_duration": "3 minutes"},
     "min_duration"),
    ({"name": "x", "kind": "ml", "model": "window", "severity": "LOW", "colour": "red"}, "colour"),
    ({"name": "x", "kind": "ml", "model": "session", "severity": "LOW", "session_key": "a",
      "session_regex": "b"}, "session"),
]


def _rules_file_with_ml() -> dict:
    """A rules file whose rules are ML rules (``filter`` accepts anything here: the rules file's own
    ``$defs/filter`` checks it)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {"rules": {"type": "array", "items": copy.deepcopy(ML_RULE_SCHEMA)}},
            "$defs": {"filter": {}}}


@pytest.mark.parametrize("rule", GOOD, ids=[r["name"] for r in GOOD])
def test_good_ml_rules_validate_and_build(rule):
    jsonschema.Draft202012Validator(_rules_file_with_ml()).validate({"rules": [rule]})
    assert MlRule(rule).stream.kind == rule["model"]


@pytest.mark.parametrize("rule, word", BAD, ids=[w for _, w in BAD])
def test_bad_ml_rules_are_refused(rule, word):
    errors = list(jsonschema.Draft202012Validator(_rules_file_with_ml()).iter_errors({"rules": [rule]}))
    assert errors and any(word in (e.message + str(list(e.absolute_path))) for e in errors), errors


def test_paths_come_from_the_spec():
    config = MlConfig.from_dict({"name": "w", "model": "window", "data_dir": "/srv/lw"})
    assert str(config.model_dir) == "/srv/lw/lake/models" and config.model_name == "w"
    assert str(MlConfig.from_dict({"name": "w", "model": "window", "model_dir": "/m"}).model_dir) == "/m"
    assert MlConfig.from_dict({"name": "s", "model": "session"}).session_key == "request_id"


def test_a_rule_spec_whose_source_is_the_rule_dict_builds_with_the_file_defaults():
    from logwarden.monitoring.rules.spec import RuleSpec, Threshold

    raw = {**GOOD[0], "_defaults": {"realert": "1m", "allowed_lateness": "30s"}}
    spec = RuleSpec(name=raw["name"], kind="ml", severity="HIGH", threshold=Threshold(">", 0), source=raw)
    rule = MlRule(spec)
    assert rule.realert_us == 60_000_000 and rule.lateness_us == 30_000_000 and rule.spec.kind == "ml"


def test_rules_file_with_ml_rules_parses_when_the_kind_is_registered():
    registry = pytest.importorskip("logwarden.monitoring.rules.registry")
    if "ml" not in registry.kinds():
        pytest.skip("kind 'ml' is not registered in monitoring.rules yet")
    from logwarden.monitoring.rules import parse_rules

    text = """
rules:
  - name: svc_windows
    kind: ml
    model: window
    severity: HIGH
    min_duration: 3m
  - name: hdfs_blocks
    kind: ml
    model: session
    severity: MEDIUM
    session_regex: '(blk_-?\\d+)'
"""
    rules = parse_rules(text).by_name()
    built = {name: registry.rule_class("ml")(spec) for name, spec in rules.items()}
    assert built["svc_windows"].stream.kind == "window" and built["hdfs_blocks"].stream.kind == "session"
