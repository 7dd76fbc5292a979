"""The rules file is validated on load; a bad edit names the line, the rule and the key
(``FILE:LINE: rules.NAME.key: problem``), and the file goes through the one YAML loader."""
from __future__ import annotations

import pytest

from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring import load_rules, parse_rules

SEED = ANOMALY_SCHEMA_PATH.read_text()


def test_seed_rules_are_the_detectors_of_the_default_file():
    rules = load_rules(ANOMALY_SCHEMA_PATH)
    summary = {r.name: (r.kind, r.severity, r.window, str(r.threshold), r.group_by) for r in rules.rules
               if r.kind != "ml"}  # the ML rules beside them: tests/ml/test_default_ml_rules.py
    assert summary == {
        "error_spike": ("frequency", "HIGH", 300.0, "> 100", ("service",)),
        "service_down": ("flatline", "CRITICAL", 600.0, "< 1", ("service",)),
        "slow_response": ("threshold", "MEDIUM", 0.0, "> 5000", ("service",)),
        "suspicious_user": ("frequency", "MEDIUM", 3600.0, ">= 50", ("user_id",)),
        "db_connection_failure": ("frequency", "CRITICAL", 120.0, ">= 10", ("service",)),
        "threat_indicator_seen": ("frequency", "HIGH", 60.0, ">= 1", ("threat_indicator", "threat_list",
                                                                      "threat_origin")),
        "suspicious_privileged_user": ("frequency", "HIGH", 3600.0, ">= 10", ("user_id",)),
    }
    assert rules.routing == {"CRITICAL": ["pagerduty"], "HIGH": ["slack"], "MEDIUM": ["email"], "LOW": ["dashboard"]}


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, rule, field, line_with", [
    ("severity: HIGH", "severity: URGENT", "error_spike", "severity", "severity: URGENT"),
    ("window: 2m", "window: 2 minutes", "db_connection_failure", "window", "window: 2 minutes"),
    ('op: ">=", value: 50', 'op: "=>", value: 50', "suspicious_user", "threshold.op", 'op: "=>"'),
    ("kind: threshold", "kind: treshold", "slow_response", "kind", "kind: treshold"),
    ("forget_after: 24h", "forget_after: 24h\n    colour: red", "service_down", "", "name: service_down"),
    ("regex: '(?i)", "regex: '(?i)([", "db_connection_failure", "filter.1.any.1.regex", "regex: '(?i)(["),
])
def test_bad_edit_names_line_rule_and_field(old, new, rule, field, line_with):
    text = SEED.replace(old, new, 1)
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "anomaly_schema.yaml")
    key = f"rules.{rule}.{field}" if field else f"rules.{rule}"
    assert str(caught.value).startswith(f"anomaly_schema.yaml:{_line_of(text, line_with)}: {key}: ")


def test_error_points_at_the_offending_line():
    text = SEED.replace("severity: HIGH", "severity: URGENT", 1)
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "rules.yaml")
    assert caught.value.line == _line_of(text, "severity: URGENT")


def test_the_readme_example_message():
    text = SEED.replace("severity: HIGH", "severity: URGENT", 1)
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "broken.yaml")
    assert str(caught.value) == (f"broken.yaml:{_line_of(text, 'severity: URGENT')}: rules.error_spike.severity: "
                                 "'URGENT' is not one of ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW']")


def test_duplicate_names_and_broken_yaml_are_refused():
    text = SEED.replace("name: slow_response", "name: error_spike")
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "r.yaml")
    first, second = [i for i, line in enumerate(text.splitlines(), 1) if "name: error_spike" in line]
    assert str(caught.value) == f"r.yaml:{second}: rules.error_spike.name: duplicate rule name (first at line {first})"
    with pytest.raises(ConfigError, match="invalid YAML"):
        parse_rules(SEED + "\n  - {name: x")


def test_missing_window_is_refused():
    with pytest.raises(ConfigError, match="'window' is a required property"):
        parse_rules(SEED.replace("    window: 5m\n", "", 1))
