"""The routing tree: matchers, ``continue``, inheritance, time intervals, configuration errors with
their line, the default tree against the routing it replaces, ``logwarden routes test``, and the
receivers compared with the real ``amtool config routes test`` (skipped when amtool is absent)."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from logwarden.alerting.config import parse_alerting
from logwarden.alerting.dispatch.intervals import parse_intervals
from logwarden.alerting.dispatch.matchers import parse_matcher, parse_matchers
from logwarden.alerting.dispatch.routing import base_channels, routes_for
from logwarden.alerting.dispatch.tree import match, receivers_of
from logwarden.cli import main as cli
from logwarden.common.yamlconf import ConfigError
from logwarden.settings import load_settings, parse_settings
from tests.alerting.conftest import ROUTING, anomaly

AMTOOL = shutil.which("amtool")
README = Path(__file__).resolve().parents[2] / "README.md"

#: Two teams and an on-call rotation; every receiver is named (no channel configured: routing only).
TEAMS: dict = {
    "receivers": [{"name": "payments"}, {"name": "search"}, {"name": "oncall"}, {"name": "quiet"}],
    "route": {
        "receiver": "dashboard",
        "group_by": ["rule", "service"],
        "routes": [
            {
                "matchers": ['team="payments"'],
                "receiver": "payments",
                "continue": True,
                "routes": [{"matchers": ['severity="LOW"'], "receiver": "quiet"}],
            },
            {"matchers": ['team="search"', 'environment!="staging"'], "receiver": "search"},
            {"matchers": ['severity="CRITICAL"'], "receiver": "oncall"},
            {"matchers": ['service=~"auth-.*|api-gateway"', 'tier!~"[23]"'], "receiver": "search", "continue": True},
            {"match_re": {"rule": "slow_.*"}, "receiver": "oncall"},
            {"match": {"tenant": "acme"}, "receiver": "quiet"},
        ],
    },
}
LABEL_SETS = [
    {"team": "payments", "severity": "CRITICAL", "rule": "error_spike", "service": "payment-service"},
    {"team": "payments", "severity": "LOW", "rule": "error_spike"},
    {"team": "payments", "severity": "HIGH", "rule": "slow_response"},
    {"team": "search", "severity": "CRITICAL", "environment": "production"},
    {"team": "search", "severity": "CRITICAL", "environment": "staging"},
    {"team": "search", "environment": "staging", "rule": "slow_response"},
    {"severity": "CRITICAL", "service": "db"},
    {"service": "auth-service", "tier": "1", "rule": "slow_response"},
    {"service": "auth-service", "tier": "2", "rule": "slow_response"},
    {"service": "xauth-service", "tier": "1", "rule": "slow_response"},
    {"service": "api-gateway", "severity": "HIGH", "rule": "error_spike"},
    {"rule": "slow_responses", "tenant": "acme"},
    {"rule": "error_spike", "tenant": "acme", "severity": "MEDIUM"},
    {"rule": "error_spike", "severity": "MEDIUM"},
]


def test_matchers_are_anchored_and_a_missing_label_is_empty():
    labels = {"service": "payment-service", "severity": "HIGH"}
    assert parse_matcher('service="payment-service"').matches(labels)
    assert not parse_matcher("service=~pay").matches(labels)  # anchored: the whole value
    assert parse_matcher('service=~"pay.*"').matches(labels)
    assert not parse_matcher('service=~".*pay"').matches(labels)
    assert parse_matcher('severity!~"LOW|MEDIUM"').matches(labels)
    assert parse_matcher('team!="payments"').matches(labels)  # no team: the empty value
    assert parse_matcher('team=""').matches(labels)
    assert not parse_matcher('team=~".+"').matches(labels)
    both = parse_matchers(['{team="a,b", severity=~"HIGH|CRITICAL"}'])
    assert [(m.name, m.op, m.value) for m in both] == [("team", "=", "a,b"), ("severity", "=~", "HIGH|CRITICAL")]
    assert parse_matcher(r'msg="say \"hi\""').value == 'say "hi"'
    for bad in ("team", "1team=x", 'team=~"("', 'team=="x"'):
        with pytest.raises(ValueError):
            parse_matcher(bad)


def test_continue_nested_routes_and_inheritance():
    config = parse_alerting(
        {
            **TEAMS,
            "route": {
                **TEAMS["route"],
                "group_wait": "10s",
                "repeat_interval": "1h",
                "routes": [
                    {
                        "matchers": ['team="payments"'],
                        "receiver": "payments",
                        "group_interval": "2m",
                        "continue": True,
                        "routes": [{"matchers": ['severity="LOW"'], "group_by": ["..."]}],
                    },
                    {"matchers": ['severity="CRITICAL"'], "receiver": "oncall"},
                ],
            },
        }
    )
    tree = config.route
    [low] = match(tree, {"team": "payments", "severity": "LOW", "service": "x"})
    assert [n.path for n in low.trail] == ["route", "route.routes[0]", "route.routes[0].routes[0]"]
    node = low.route
    # the child inherits the receiver and timers it does not set
    assert (node.receiver, node.group_wait, node.group_interval, node.repeat_interval) == ("payments", 10, 120, 3600)
    assert node.group_by is None and node.group_labels({"b": "2", "a": "1"}) == {"a": "1", "b": "2"}
    assert tree.routes[1].group_by == ("rule", "service") and tree.routes[1].group_interval == 300
    # continue: payments goes on to the next route; a route without continue stops the search
    assert receivers_of(tree, {"team": "payments", "severity": "CRITICAL"}) == ["payments", "oncall"]
    assert receivers_of(tree, {"team": "search", "severity": "CRITICAL"}) == ["oncall"]
    assert receivers_of(tree, {"team": "search", "severity": "HIGH"}) == ["dashboard"]  # the root's


def test_time_intervals_weekdays_times_days_of_month_and_location():
    intervals = parse_intervals(
        [
            {
                "name": "office",
                "time_intervals": [
                    {
                        "weekdays": ["monday:friday"],
                        "times": [{"start_time": "09:00", "end_time": "17:30"}],
                        "location": "Europe/Berlin",
                    }
                ],
            },
            {"name": "month-end", "time_intervals": [{"days_of_month": ["-2:-1"], "months": ["december"]}]},
        ],
        None,
        ["time_intervals"],
    )
    office, month_end = intervals["office"], intervals["month-end"]
    assert office.contains(datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc))  # Mon 09:00 in Berlin
    assert not office.contains(datetime(2026, 12, 7, 7, 59, tzinfo=timezone.utc))
    assert not office.contains(datetime(2026, 12, 7, 16, 30, tzinfo=timezone.utc))  # 17:30: end exclusive
    assert not office.contains(datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc))  # Saturday
    assert month_end.contains(datetime(2026, 12, 30, 12, 0, tzinfo=timezone.utc))
    assert not month_end.contains(datetime(2026, 12, 29, 12, 0, tzinfo=timezone.utc))
    assert not month_end.contains(datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))


def test_a_route_muted_or_inactive_notifies_no_one_now():
    config = parse_alerting(
        {
            "business_hours": {"timezone": "UTC", "days": ["sat"], "start": "00:00", "end": "00:01"},
            "time_intervals": [{"name": "always", "time_intervals": [{}]}],
            "route": {
                "receiver": "dashboard",
                "routes": [
                    {"matchers": ['severity="CRITICAL"'], "receiver": "pagerduty", "mute_time_intervals": ["always"]},
                    {"matchers": ['severity="HIGH"'], "receiver": "slack", "active_time_intervals": ["business_hours"]},
                    {"matchers": ['severity="MEDIUM"'], "receiver": "email", "active_time_intervals": ["always"]},
                ],
            },
        }
    )
    from logwarden.alerting.dispatch.routing import plan

    monday = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc).timestamp()
    for severity, channels, muted in (("CRITICAL", [], 1), ("HIGH", [], 1), ("MEDIUM", ["email"], 0)):
        routes, quiet = plan(anomaly(severity=severity), {"severity": severity}, config.route, config, monday)
        assert ([r.channel for r in routes], len(quiet)) == (channels, muted)


@pytest.mark.parametrize(
    "text, line, message",
    [
        (
            "alerting:\n  route:\n    receiver: dashboard\n    routes:\n      - matchers: ['team=\"payments\"']\n"
            "        receiver: nobody\n",
            6,
            "alerting.route.routes.0.receiver: unknown receiver 'nobody'",
        ),
        (
            "alerting:\n  route:\n    receiver: dashboard\n    routes:\n      - matchers:\n"
            "          - 'team=\"payments\"'\n          - 'severity=~\"(HIGH\"'\n",
            7,
            "alerting.route.routes.0.matchers.1: bad regular expression '(HIGH'",
        ),
        (
            "alerting:\n  receivers:\n    - name: payments\n      slack_configs:\n        - webhook_url: x\n"
            "          bogus: 1\n",
            5,
            "alerting.receivers.0.slack_configs.0: Additional properties are not allowed ('bogus'",
        ),
        (
            "alerting:\n  route:\n    receiver: dashboard\n    mute_time_intervals: [nights]\n",
            4,
            "alerting.route.mute_time_intervals.0: unknown time interval 'nights'",
        ),
        (
            "alerting:\n  time_intervals:\n    - name: nights\n      time_intervals:\n"
            "        - weekdays: ['monday:fryday']\n",
            5,
            "alerting.time_intervals.0.time_intervals.0.weekdays.0: unknown name 'fryday'",
        ),
        (
            "alerting:\n  inhibit_rules:\n    - target_matchers: ['rule=\"x\"']\n",
            3,
            "alerting.inhibit_rules.0: an inhibition rule needs source_matchers",
        ),
        (
            "alerting:\n  route:\n    receiver: dashboard\n    routes:\n      - receiver: dashboard\n"
            "        group_wait: soon\n",
            6,
            "alerting.route.routes.0.group_wait: not a duration: 'soon'",
        ),
        (
            "alerting:\n  route:\n    receiver: dashboard\n    matchers: ['team=\"x\"']\n",
            4,
            "alerting.route.matchers: the root route matches every alert",
        ),
        (
            "alerting:\n  receivers:\n    - name: slack\n",
            3,
            "alerting.receivers.0.name: 'slack' is the name of a built-in receiver",
        ),
    ],
)
def test_configuration_errors_name_the_file_line_and_key(text, line, message):
    with pytest.raises(ConfigError) as refused:
        parse_settings(text, "logwarden.yaml")
    assert str(refused.value).startswith(f"logwarden.yaml:{line}: {message}")


def test_named_receivers_build_a_channel_per_config():
    from logwarden.alerting.build import build_channels

    config = parse_alerting(
        {
            "receivers": [
                {
                    "name": "payments",
                    "slack_configs": [{"webhook_url": "http://127.0.0.1:9/a"}, {"webhook_url": "http://127.0.0.1:9/b"}],
                    "pagerduty_configs": [{"routing_key": "k1", "rate_limit": {"count": 2, "per": "1m"}}],
                }
            ],
            "route": {"receiver": "payments"},
        }
    )
    assert config.channels_of("payments") == ["payments.slack", "payments.slack.2", "payments.pagerduty"]
    assert config.channels_of("slack") == ["slack"]
    channels = build_channels(config)
    assert sorted(channels) == ["payments.pagerduty", "payments.slack", "payments.slack.2"]
    assert channels["payments.pagerduty"].rate_limit.count == 2


def test_the_default_tree_routes_as_the_severity_routing_did():
    routings = [
        ROUTING,
        {"CRITICAL": ["pagerduty", "slack", "pagerduty"], "HIGH": [], "MEDIUM": ["email"]},
        {"CRITICAL": ["alertmanager"], "HIGH": ["alertmanager"], "MEDIUM": [], "LOW": []},
    ]
    own = [[], ["email", "dashboard"], ["webhook"], ["slack", "slack"]]
    config = parse_alerting(None)
    cases = itertools.product(routings, ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"), own)
    for routing, severity, channels in cases:
        a = anomaly(severity=severity, channels=channels)
        assert [r.channel for r in routes_for(a, routing, config, 0.0)] == base_channels(a, routing), (
            routing,
            severity,
            channels,
        )


def _write_teams(tmp_path) -> tuple:
    ours = tmp_path / "logwarden.yaml"
    ours.write_text(yaml.safe_dump({"alerting": TEAMS}, sort_keys=False))
    theirs = tmp_path / "alertmanager.yml"
    receivers = [{"name": r["name"]} for r in TEAMS["receivers"]] + [{"name": "dashboard"}]
    theirs.write_text(yaml.safe_dump({"route": TEAMS["route"], "receivers": receivers}, sort_keys=False))
    return ours, theirs


def test_routes_test_prints_receivers_and_why(tmp_path, capsys):
    ours, _ = _write_teams(tmp_path)
    labels = "service=payment-service,severity=CRITICAL,rule=error_spike"
    assert cli(["routes", "test", "--config", str(ours), "--labels", labels]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "payments,oncall"  # team=payments comes from the service inventory
    assert 'team="payments"' in captured.err
    assert '    route.routes[0]: team="payments" matched; continue: true, the next routes were tried too' in lines
    assert '    route.routes[2]: severity="CRITICAL" matched' in lines
    assert cli(["routes", "test", "--config", str(ours), "--labels", labels, "--verify-receivers",
                "payments,oncall"]) == 0
    assert cli(["routes", "test", "--config", str(ours), "--labels", labels, "--verify-receivers", "oncall"]) == 1
    assert cli(["routes", "test", "--config", str(ours), "--labels", "service"]) == 2
    capsys.readouterr()
    assert cli(["routes", "test", "--config", str(ours), "--tree"]) == 0
    tree = capsys.readouterr().out
    assert "route.routes[0].routes[0]  {severity=\"LOW\"} → quiet" in tree
    # the default tree, from the shipped rules file
    assert cli(["routes", "test", "--labels", "severity=CRITICAL,rule=db_connection_failure"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "pagerduty"
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerting:\n  route:\n    receiver: nobody\n")
    assert cli(["routes", "test", "--config", str(bad), "--labels", "rule=x"]) == 2
    assert f"{bad}:3: alerting.route.receiver: unknown receiver 'nobody'" in capsys.readouterr().err


def test_receivers_agree_with_amtool(tmp_path, capsys):
    if AMTOOL is None:
        pytest.skip("amtool is not installed (apt-get install prometheus-alertmanager): nothing to compare with")
    ours, theirs = _write_teams(tmp_path)
    check = subprocess.run([AMTOOL, "check-config", str(theirs)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    for labels in LABEL_SETS:
        pairs = ",".join(f"{k}={v}" for k, v in labels.items())
        assert cli(["routes", "test", "--config", str(ours), "--labels", pairs]) == 0
        captured = capsys.readouterr()
        # the labels we route on: those given, plus alertname and the service's inventory labels
        shown = captured.err.split("labels: ", 1)[1].splitlines()[0].split()
        full = [item.replace('"', "") for item in shown]
        assert full[: len(labels)] == [f"{k}={v}" for k, v in labels.items()]
        result = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={theirs}", *full],
            capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert captured.out.splitlines()[0] == result.stdout.strip(), labels


def _readme_routes() -> str:
    section = README.read_text(encoding="utf-8").split("### Routes for teams", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_the_readme_two_team_example_loads_and_routes_as_it_says(tmp_path, monkeypatch, capsys):
    text = _readme_routes()
    for name in re.findall(r"\$\{([A-Z_]+)\}", text):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    path = tmp_path / "logwarden.yaml"
    path.write_text(text)
    expected = [
        ("service=payment-service,severity=CRITICAL,rule=error_spike", "payments"),
        ("service=payment-service,severity=LOW,rule=slow_response", "payments"),
        ("service=search-api,team=search,severity=CRITICAL,rule=error_spike", "search,oncall"),
        ("service=search-api,team=search,severity=HIGH,rule=error_spike", "search"),
        ("service=database-service,severity=CRITICAL,rule=service_down", "oncall"),
        ("service=api-gateway,severity=HIGH,rule=error_spike", "dashboard"),
    ]
    for labels, receivers in expected:
        assert cli(["routes", "test", "--config", str(path), "--labels", labels]) == 0
        assert capsys.readouterr().out.splitlines()[0] == receivers, labels
    settings = load_settings(path)
    assert settings.alerting.channels_of("payments") == ["payments.slack", "payments.pagerduty"]
    assert settings.alerting.named_receivers["payments"].channels[1].config.routing_key == "value-of-pd_payments_key"
    assert len(settings.alerting.inhibit_rules) == 1
