"""Remediation actions: allow-list, dry run, rate limit, command and webhook with the anomaly as input."""

from __future__ import annotations

import json
import sys
import time

import pytest

from logwarden.alerting import history
from logwarden.common.yamlconf import ConfigError
from tests.alerting.conftest import anomaly, wait_for

SCRIPT = (
    "import sys, os; open(sys.argv[1], 'ab').write(sys.stdin.buffer.read() + b'\\n'); print('pool restarted')"
)


def remediation(tmp_path, dry_run: bool, **extra) -> dict:
    out = tmp_path / "restarts.jsonl"
    return {
        "remediation": {
            "dry_run": dry_run,
            "allowed_commands": [sys.executable],
            "actions": {
                "restart_connection_pool": {
                    "rules": ["db_connection_failure"],
                    "command": [sys.executable, "-c", SCRIPT, str(out)],
                    **extra,
                }
            },
        }
    }, out


def test_dry_run_records_what_would_run_and_runs_nothing(make_service, tmp_path):
    section, out = remediation(tmp_path, dry_run=True)
    service = make_service(section)
    service.dispatch([anomaly("db_connection_failure", key="orders", severity="CRITICAL")])
    delivery = wait_for(
        lambda: [d for d in history.get_alert(service.store, 1)["deliveries"] if d["state"] == "sent"]
    )
    assert delivery[0]["channel"] == "remediation.restart_connection_pool"
    assert delivery[0]["result"].startswith("dry run: would run")
    assert not out.exists()


def test_command_runs_with_the_anomaly_on_stdin_under_a_rate_limit(make_service, tmp_path):
    section, out = remediation(tmp_path, dry_run=False, rate_limit={"count": 1, "per": "1h"})
    service = make_service(section)
    service.dispatch(
        [
            anomaly("db_connection_failure", key="orders", severity="CRITICAL"),
            anomaly("error_spike", key="orders", severity="HIGH"),
        ]
    )  # not a rule of the action
    wait_for(lambda: out.exists())
    payload = json.loads(out.read_text().splitlines()[0])
    assert (
        payload["action"] == "restart_connection_pool"
        and payload["anomaly"]["rule"] == "db_connection_failure"
    )
    assert payload["dedup_key"] == "db_connection_failure:orders"
    sent = wait_for(
        lambda: [d for d in history.get_alert(service.store, 1)["deliveries"] if d["state"] == "sent"]
    )
    assert "pool restarted" in sent[0]["result"]
    service.dispatch([anomaly("db_connection_failure", key="orders", severity="CRITICAL", minute=5)])
    skipped = wait_for(
        lambda: [d for d in history.get_alert(service.store, 3)["deliveries"] if d["state"] == "skipped"]
    )
    assert skipped[0]["result"] == "rate limited: not run"
    time.sleep(0.2)
    assert len(out.read_text().splitlines()) == 1


def test_webhook_action(make_service, http_server):
    service = make_service(
        {
            "remediation": {
                "dry_run": False,
                "allowed_urls": [f"{http_server.url}/hook"],
                "actions": {
                    "restart_pool": {
                        "rules": ["db_connection_failure"],
                        "webhook": f"{http_server.url}/hook/pool",
                    }
                },
            }
        }
    )
    service.dispatch([anomaly("db_connection_failure", key="orders", severity="CRITICAL")])
    body = wait_for(lambda: http_server.posts("/hook/pool"))[0]
    assert (
        body["action"] == "restart_pool" and body["anomaly"]["key"] == "orders" and body["dry_run"] is False
    )


def test_actions_outside_the_allow_list_are_refused_on_load(make_service, tmp_path):
    with pytest.raises(
        ConfigError, match=r"alerting\.remediation\.actions\.rm\.command: '/bin/rm' is not in"
    ):
        make_service(
            {"remediation": {"actions": {"rm": {"rules": ["x"], "command": ["/bin/rm", "-rf", "/tmp/x"]}}}}
        )
    with pytest.raises(
        ConfigError, match=r"alerting\.remediation\.actions\.hook\.webhook: .* matches no prefix"
    ):
        make_service(
            {
                "remediation": {
                    "allowed_urls": ["http://ops.internal/"],
                    "actions": {"hook": {"rules": ["x"], "webhook": "http://evil.example/"}},
                }
            }
        )
