"""Inhibition rules and matcher silences against the real ``prometheus-alertmanager``: the same
alerts, rules and silences given to both, and the alerts each mutes compared (skipped when absent)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from logwarden.alerting.config import parse_alerting
from logwarden.alerting.dispatch.matchers import NOT_EQUAL, NOT_REGEX, REGEX, parse_matchers
from logwarden.alerting.inhibit.rules import inhibitor
from logwarden.alerting.inhibit.silences import SilenceStore
from logwarden.alerting.store import AlertStore
from tests.alerting.conftest import wait_for

INHIBIT_RULES = [
    {
        "source_matchers": ['rule="service_down"'],
        "target_matchers": ['rule=~"error_spike|slow_response"'],
        "equal": ["service", "tenant"],
    },
    {"source_matchers": ['severity="CRITICAL"', 'tier="1"'], "target_matchers": ['severity="LOW"'], "equal": ["team"]},
]
SILENCES = [
    ['team="payments"', 'severity=~"HIGH|CRITICAL"'],
    ['service!~"auth-.*"', 'rule="slow_response"'],
    ['rule="error_spikes"', 'environment!="staging"'],
]
ALERTS = [
    {"rule": "service_down", "service": "payment-service", "tenant": "default", "severity": "CRITICAL"},
    {"rule": "error_spike", "service": "payment-service", "tenant": "default", "severity": "HIGH", "team": "payments"},
    {"rule": "error_spike", "service": "payment-service", "tenant": "default", "severity": "MEDIUM"},
    {"rule": "slow_response", "service": "payment-service", "tenant": "acme", "severity": "MEDIUM"},
    {"rule": "error_spike", "service": "auth-service", "tenant": "default", "severity": "HIGH"},
    {"rule": "error_spikes", "service": "payment-service", "tenant": "default", "severity": "HIGH"},
    {"rule": "service_down", "service": "auth-service", "tenant": "acme", "severity": "CRITICAL"},
    {"rule": "slow_response", "service": "auth-service", "tenant": "acme", "severity": "MEDIUM"},
    {"rule": "service_down", "tenant": "t2", "severity": "CRITICAL"},
    {"rule": "error_spike", "tenant": "t2", "severity": "HIGH"},
    {"rule": "db_connection_failure", "severity": "CRITICAL", "tier": "1", "team": "search"},
    {"rule": "suspicious_user", "severity": "LOW", "team": "search"},
    {"rule": "suspicious_user", "severity": "LOW", "team": "edge"},
    {"rule": "error_spikes", "severity": "LOW", "environment": "staging", "service": "search-api"},
]


@pytest.fixture
def alertmanager(start_alertmanager) -> str:
    return start_alertmanager({"route": {"receiver": "blackhole"}, "receivers": [{"name": "blackhole"}],
                               "inhibit_rules": INHIBIT_RULES})


def _am_matcher(text: str) -> dict:
    [m] = parse_matchers([text])
    return {"name": m.name, "value": m.value, "isRegex": m.op in (REGEX, NOT_REGEX),
            "isEqual": m.op not in (NOT_EQUAL, NOT_REGEX)}


def _theirs(url: str) -> dict[tuple, tuple[bool, bool]]:
    now = datetime.now(timezone.utc)
    end = (now + timedelta(hours=1)).isoformat()
    for matchers in SILENCES:
        response = requests.post(f"{url}/api/v2/silences", timeout=5, json={
            "matchers": [_am_matcher(t) for t in matchers], "startsAt": now.isoformat(), "endsAt": end,
            "createdBy": "test", "comment": "compare"})
        assert response.status_code == 200, response.text
    response = requests.post(f"{url}/api/v2/alerts", timeout=5, json=[
        {"labels": labels, "startsAt": now.isoformat(), "endsAt": end} for labels in ALERTS])
    assert response.status_code == 200, response.text

    def states() -> dict[tuple, tuple[bool, bool]] | None:
        alerts = requests.get(f"{url}/api/v2/alerts", timeout=5).json()
        if len(alerts) < len(ALERTS):
            return None
        return {tuple(sorted(a["labels"].items())): (bool(a["status"]["inhibitedBy"]), bool(a["status"]["silencedBy"]))
                for a in alerts}

    wait_for(states, timeout=10)
    time.sleep(1.0)  # the inhibitor learns source alerts asynchronously: read again once it settled
    settled = states()
    assert settled is not None
    return settled


def _ours(tmp_path) -> dict[tuple, tuple[bool, bool]]:
    rules = parse_alerting({"inhibit_rules": INHIBIT_RULES}).inhibit_rules
    store = SilenceStore(AlertStore(tmp_path / "alerts"))
    for matchers in SILENCES:
        store.add_matchers(parse_matchers(matchers), 3600, "test", "compare")
    silences = SilenceStore(AlertStore(tmp_path / "alerts")).list()  # read back from the database
    out = {}
    for i, labels in enumerate(ALERTS):
        others = [(j, other) for j, other in enumerate(ALERTS) if j != i]
        inhibited = inhibitor(rules, labels, others) is not None
        out[tuple(sorted(labels.items()))] = (inhibited, any(s.covers(labels) for s in silences))
    return out


def test_inhibition_and_silences_mute_what_alertmanager_mutes(alertmanager, tmp_path):
    theirs = _theirs(alertmanager)
    ours = _ours(tmp_path)
    assert ours == theirs
    assert sum(inhibited for inhibited, _ in ours.values()) >= 4 and sum(s for _, s in ours.values()) >= 2
