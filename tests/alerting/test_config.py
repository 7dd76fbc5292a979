"""The ``alerting:`` section: an example file, environment secrets, errors naming the key."""

from __future__ import annotations

import pytest

from logwarden.alerting import build_alerting
from logwarden.alerting.config import parse_alerting
from logwarden.common.yamlconf import ConfigError
from logwarden.settings import load_settings
from tests.alerting.conftest import ROUTING

EXAMPLE = """
alerting:
  dashboard_url: http://127.0.0.1:5006/alerts
  group_wait: 30s
  delivery: {max_attempts: 12, initial_backoff: 1s, max_backoff: 5m, breaker_failures: 5, breaker_reset: 30s}
  business_hours: {timezone: Europe/Paris, days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00"}
  after_hours:
    - {severity: HIGH, channel: slack, action: escalate, escalate_to: [pagerduty]}
    - {severity: MEDIUM, channel: email, action: hold}
  escalation: {after: 15m, repeat: 3, severities: [CRITICAL]}
  pagerduty:
    routing_key: ${PD_ROUTING_KEY}
    events_url: https://events.pagerduty.com/v2/enqueue
  slack:
    token: ${SLACK_BOT_TOKEN}
    channel: "#alerts"
    rate_limit: {count: 20, per: 1m}
  email:
    smtp_host: smtp.example.org
    smtp_port: 587
    security: starttls
    username: alerts@example.org
    password: ${SMTP_PASSWORD}
    from: logwarden <alerts@example.org>
    to: [oncall@example.org]
    digest: {every: 15m, max_alerts: 20}
    rate_limit: {count: 30, per: 1h}
  webhook: {url: "https://hooks.example.org/logwarden", headers: {Authorization: "Bearer ${HOOK_TOKEN}"}}
  alertmanager: {url: "http://127.0.0.1:9093"}
  remediation:
    dry_run: true
    allowed_commands: [/usr/local/bin/restart-pool]
    rate_limit: {count: 1, per: 10m}
    actions:
      restart_connection_pool:
        rules: [db_connection_failure]
        command: [/usr/local/bin/restart-pool, --service]
"""
ENV = {"PD_ROUTING_KEY": "pdkey", "SLACK_BOT_TOKEN": "xoxb-1", "SMTP_PASSWORD": "pw", "HOOK_TOKEN": "t0k"}


def test_example_config_file_loads_with_secrets_from_the_environment(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "logwarden.yaml"
    path.write_text(EXAMPLE)
    section = load_settings(path).raw["alerting"]
    config = parse_alerting(section)
    assert config.channels["pagerduty"]["routing_key"] == "pdkey"
    assert config.channels["webhook"]["headers"]["Authorization"] == "Bearer t0k"
    assert config.group_wait == 30 and config.digest.every == 900 and config.rate_limits["slack"].count == 20
    assert config.after_hours[0].escalate_to == ("pagerduty",)
    assert config.remediation.actions[0].command[0] == "/usr/local/bin/restart-pool"
    service = build_alerting(section, ROUTING, tmp_path / "alerts")
    try:
        assert sorted(service.workers) == [
            "alertmanager",
            "email",
            "pagerduty",
            "remediation.restart_connection_pool",
            "slack",
            "webhook",
        ]
    finally:
        service.close()


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"email": {"smtp_host": "h", "smtp_port": "x", "from": "a", "to": ["b"]}},
            r"alerting\.email\.smtp_port: 'x' is not of type 'integer'",
        ),
        ({"slak": {}}, r"alerting: Additional properties are not allowed \('slak' was unexpected\)"),
        (
            {"slack": {"token": "${NOT_SET_ANYWHERE}", "channel": "#a"}},
            r"alerting\.slack\.token: environment variable NOT_SET_ANYWHERE is not set",
        ),
        ({"slack": {"token": "x"}}, r"alerting\.slack\.channel: a bot token needs the channel"),
        ({"slack": {}}, r"alerting\.slack: set webhook_url"),
        ({"pagerduty": {}}, r"alerting\.pagerduty: 'routing_key' is a required property"),
        ({"group_wait": "soon"}, r"alerting\.group_wait: not a duration"),
        (
            {"business_hours": {"timezone": "Mars/Olympus"}},
            r"alerting\.business_hours\.timezone: unknown time zone",
        ),
        (
            {"business_hours": {"timezone": "UTC", "start": "25:00"}},
            r"alerting\.business_hours\.start: not a time",
        ),
        (
            {"after_hours": [{"channel": "slack", "action": "hold"}]},
            r"alerting\.after_hours: needs alerting\.business_hours",
        ),
        (
            {
                "business_hours": {"timezone": "UTC"},
                "after_hours": [{"channel": "slack", "action": "escalate"}],
            },
            r"alerting\.after_hours\.0\.escalate_to: action 'escalate' needs",
        ),
        (
            {"email": {"smtp_host": "h", "from": "a", "to": []}},
            r"alerting\.email\.to: \[\] should be non-empty",
        ),
        (
            {"email": {"smtp_host": "h", "from": "a", "to": ["b"], "username": "u"}},
            r"alerting\.email\.password: username and password go together",
        ),
    ],
)
def test_errors_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_alerting(section, env={})


def test_no_section_means_defaults():
    config = parse_alerting(None)
    assert config.channels == {} and config.escalation.after == 900 and config.remediation.dry_run
