"""The ``alerting:`` section: an example file, environment secrets, errors naming the key, and receivers
registered by their own module (one file per receiver)."""

from __future__ import annotations

import sys
import textwrap

import orjson
import pytest

from logwarden.alerting import build_alerting
from logwarden.alerting.config import parse_alerting
from logwarden.alerting.notify import registry
from logwarden.common.yamlconf import ConfigError
from logwarden.settings import load_settings
from tests.alerting.conftest import ROUTING, anomaly, wait_for

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
    config = load_settings(path).alerting
    assert config.receivers["pagerduty"].routing_key == "pdkey"
    assert config.receivers["slack"].token == "xoxb-1"
    assert config.receivers["email"].password == "pw"
    assert config.receivers["webhook"].headers["Authorization"] == "Bearer t0k"
    assert config.group_wait == 30 and config.receivers["email"].digest.every == 900
    assert config.rate_limits["slack"].count == 20
    assert config.after_hours[0].escalate_to == ("pagerduty",)
    assert config.receivers["remediation"].actions[0].command[0] == "/usr/local/bin/restart-pool"
    service = build_alerting(config, ROUTING, tmp_path / "alerts")
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
        ({"slak": {}}, r"alerting\.slak: unknown receiver or setting \(receivers: .*slack"),
        ({"slack": {"webhook_url": "u", "timeout": "soon"}}, r"alerting\.slack\.timeout: not a duration"),
        ({"slack": {"webhook_url": "u", "group_wait": "x"}}, r"alerting\.slack\.group_wait: not a duration"),
        ({"email": {"smtp_host": "h", "from": "a", "to": ["b"], "digest": {"every": -1}}},
         r"alerting\.email\.digest\.every: negative duration"),
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
        parse_alerting(section)


def test_no_section_means_defaults():
    config = parse_alerting(None)
    assert config.receivers == {} and config.escalation.after == 900
    assert parse_alerting({"remediation": {}}).receivers["remediation"].dry_run  # dry run unless said otherwise
    email = parse_alerting({"email": {"smtp_host": "h", "from": "a", "to": ["b"]}})
    assert (email.receivers["email"].smtp_port, email.receivers["email"].security) == (587, "starttls")
    assert email.rate_limits["email"].count == 30  # the e-mail receiver's registered default


def test_secrets_are_expanded_by_the_loader_not_by_alerting(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = tmp_path / "logwarden.yaml"
    path.write_text('alerting:\n  slack:\n    token: "${NOT_SET_ANYWHERE}"\n    channel: "#a"\n')
    with pytest.raises(ConfigError, match=r"logwarden\.yaml:3: alerting\.slack\.token: environment variable "
                                          r"NOT_SET_ANYWHERE is not set"):
        load_settings(path)
    monkeypatch.setenv("NOT_SET_ANYWHERE", "xoxb-2")
    assert load_settings(path).alerting.receivers["slack"].token == "xoxb-2"
    # the section parser itself expands nothing: the file's loader is the one place that does
    assert parse_alerting({"slack": {"token": "${X}", "channel": "#a"}}).receivers["slack"].token == "${X}"


def test_an_unknown_receiver_section_is_refused_listing_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as refused:
        parse_alerting({"pagerdutty": {"routing_key": "k"}})
    known = "alertmanager, email, pagerduty, remediation, slack, webhook"
    assert str(refused.value) == (
        "config: alerting.pagerdutty: unknown receiver or setting "
        f"(receivers: {known}; settings: after_hours, business_hours, dashboard_url, delivery, escalation, "
        "flush_timeout, group_wait, inhibit_rules, poll_interval, receivers, route, time_intervals)"
    )
    path = tmp_path / "logwarden.yaml"
    path.write_text("alerting:\n  group_wait: 5s\n  pagerdutty: {routing_key: k}\n")
    with pytest.raises(ConfigError, match=rf"logwarden\.yaml:3: alerting\.pagerdutty: .*\(receivers: {known};"):
        load_settings(path)


MEMO_RECEIVER = '''
"""A receiver added by a test: one file, appending every alert of a message to a JSON-lines file."""
from dataclasses import dataclass

import orjson

from logwarden.alerting.notify.registry import (
    Channel, SectionConfig, SectionError, duration, register_receiver, setting,
)

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {"path": {"type": "string"}, "tag": {"type": "string"}, "flush_after": {"type": ["string", "number"]}},
}


@dataclass(frozen=True)
class MemoConfig(SectionConfig):
    path: str
    tag: str = "memo"
    flush_after: float = setting(1.0, convert=duration)

    def __post_init__(self):
        if not self.tag.isidentifier():
            raise SectionError(["tag"], "a tag is one word")


class MemoReceiver:
    name = "memo"

    def __init__(self, config):
        self.config = config

    def deliver(self, message):
        with open(self.config.path, "ab") as out:
            for anomaly in message.anomalies:
                out.write(orjson.dumps({"tag": self.config.tag, "kind": message.kind, "rule": anomaly.rule,
                                        "key": anomaly.key, "channel": message.channel}) + b"\\n")

    def close(self):
        pass


def build(config, context):
    return Channel(context.name, MemoReceiver(config))


register_receiver("memo", SCHEMA, MemoConfig, build)
'''


@pytest.fixture
def receiver_folder(tmp_path, monkeypatch):
    """A folder searched as part of ``logwarden.alerting.notify`` (a receiver file written there is one
    more module of the package); its modules and registrations are removed afterwards."""
    from logwarden.alerting import notify

    folder = tmp_path / "receivers"
    folder.mkdir()
    monkeypatch.setattr(notify, "__path__", [*notify.__path__, str(folder)])
    monkeypatch.setattr(registry, "_UNAVAILABLE", {})
    before = set(registry.receivers())
    yield folder
    for name in set(registry.receivers()) - before:
        registry.unregister_receiver(name)
    for path in folder.glob("*.py"):
        sys.modules.pop(f"{notify.__name__}.{path.stem}", None)


def test_a_receiver_added_as_one_file_validates_builds_and_delivers(receiver_folder, make_service, tmp_path):
    section = {"memo": {"path": str(tmp_path / "memo.jsonl"), "tag": "ops", "rate_limit": {"count": 5, "per": "1m"}}}
    with pytest.raises(ConfigError, match=r"alerting\.memo: unknown receiver or setting"):
        parse_alerting(section)  # not a receiver before its file exists
    (receiver_folder / "memo_receiver.py").write_text(textwrap.dedent(MEMO_RECEIVER))

    config = parse_alerting(section)  # found, imported and registered: nothing else was told about it
    assert "memo" in registry.receivers()
    assert config.receivers["memo"].tag == "ops" and config.receivers["memo"].flush_after == 1.0
    assert config.rate_limits["memo"].count == 5  # the generic channel keys come with every receiver
    with pytest.raises(ConfigError, match=r"alerting\.memo\.path: 3 is not of type 'string'"):
        parse_alerting({"memo": {"path": 3}})
    with pytest.raises(ConfigError, match=r"alerting\.memo\.flush_after: not a duration"):
        parse_alerting({"memo": {"path": "p", "flush_after": "later"}})
    with pytest.raises(ConfigError, match=r"alerting\.memo\.tag: a tag is one word"):
        parse_alerting({"memo": {"path": "p", "tag": "two words"}})
    with pytest.raises(ConfigError, match=r"\(receivers: alertmanager, email, memo, pagerduty,"):
        parse_alerting({"mem": {}})

    service = make_service(section, routing={**ROUTING, "HIGH": ["memo", "slack"]})
    assert "memo" in service.workers and service.workers["memo"].rate_limit.count == 5
    service.dispatch([anomaly("error_spike", key="payments", severity="HIGH")])
    lines = wait_for(lambda: (tmp_path / "memo.jsonl").exists() and (tmp_path / "memo.jsonl").read_bytes().splitlines())
    assert [orjson.loads(line) for line in lines] == [
        {"tag": "ops", "kind": "notify", "rule": "error_spike", "key": "payments", "channel": "memo"}
    ]


def test_a_receiver_file_that_cannot_import_is_named_when_configured(receiver_folder):
    (receiver_folder / "pager_extra.py").write_text("import logwarden_no_such_dependency\n")
    with pytest.raises(ConfigError, match=r"alerting\.pager_extra: receiver 'pager_extra' is unavailable: "
                                          r"No module named 'logwarden_no_such_dependency'"):
        parse_alerting({"pager_extra": {}})
    assert parse_alerting({"webhook": {"url": "http://127.0.0.1:9/"}}).receivers["webhook"].url  # others work
