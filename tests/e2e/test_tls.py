"""End to end with TLS and tokens: ``logwarden up`` with a certificate and an ``auth:`` section starts (its
supervisor probes the collector over https), takes logs over HTTPS and TLS-TCP with an ingest token,
raises the alerts, and answers its API by role and tenant; the demo runs over TLS with the configured
ingest token, and the dashboard asks for a token."""
from __future__ import annotations

import secrets
import socket

import pytest
import requests

from logwarden.storage import Lake, query
from logwarden.testing.cluster import free_port
from logwarden.testing.receivers import self_signed
from tests.e2e.cluster import StackProcess
from tests.e2e.test_stack import SEED_RULES, assert_all_five_alerts, lake_count, send_incidents

pytestmark = pytest.mark.cluster


@pytest.fixture
def secured(tmp_path):
    """(config file, certificate, tokens, environment): TLS on every listener, an operator, a team reader
    and a team ingest token (the last in the older ``collector.tokens``), given through the environment."""
    cert, key = self_signed(tmp_path)
    tokens = {name: f"{name.lower()}-{secrets.token_hex(12)}" for name in ("OPS", "TEAM_READ", "TEAM_INGEST")}
    config = tmp_path / "logwarden.yaml"
    config.write_text(f"""
tls: {{cert_file: {cert}, key_file: {key}}}
auth:
  tokens:
    "${{LW_E2E_OPS}}": {{tenant: "*", role: admin}}
    "${{LW_E2E_TEAM_READ}}": {{tenant: team-a, role: read}}
collector:
  tokens: {{"${{LW_E2E_TEAM_INGEST}}": team-a}}
  stream_tenant: team-a               # the TCP and syslog input of this installation
""")
    env = {f"LW_E2E_{name}": token for name, token in tokens.items()}
    return config, cert, tokens, env


def start(tmp_path, ray_head, secured, extra: list[str] = ()) -> StackProcess:
    config, cert, tokens, env = secured
    stack = StackProcess(tmp_path / "data", ray_head, ["--config", str(config), *extra], cert=cert,
                         ingest_token=tokens["TEAM_INGEST"], read_token=tokens["OPS"])
    stack.env.update(env)
    return stack


def test_tls_and_tokens_from_logs_to_alerts_and_the_api(tmp_path, ray_head, secured):
    _, cert, tokens, _ = secured
    stack = start(tmp_path, ray_head, secured).start()
    try:
        banner = stack.output()
        assert f"https://127.0.0.1:{stack.http_port}/v1/logs" in banner
        assert f"https://127.0.0.1:{stack.api_port}/v1/search" in banner
        ours = [line for line in banner.splitlines() if line.strip().startswith(("collector", "API"))]
        assert len(ours) == 7 and not any("http://" in line for line in ours), ours  # Dask's own link stays http
        with pytest.raises(requests.ConnectionError):  # no plain HTTP on the TLS port
            requests.get(f"http://127.0.0.1:{stack.http_port}/health", timeout=10)
        anonymous = requests.post(f"{stack.http_url}/v1/logs", data=b"{}", verify=stack.verify, timeout=10)
        assert anonymous.status_code == 401

        sent = send_incidents(stack)  # HTTPS (NDJSON and JSON) and TLS-TCP, with the ingest token
        assert_all_five_alerts(stack)
        stack.wait_for(lambda: lake_count(stack) == sent, timeout=60, what=f"{sent} records in the lake")
        lake = Lake(stack.data_dir / "lake")
        assert query(lake, "SELECT DISTINCT tenant FROM logs") == [("team-a",)]

        def api(method: str, path: str, token: str | None, **kwargs) -> requests.Response:
            return requests.request(method, f"{stack.api_url}{path}", headers=stack.bearer(token),
                                    verify=stack.verify, timeout=30, **kwargs)

        assert api("GET", "/health", None).status_code == 200
        assert api("GET", "/alerts", None).status_code == 401
        assert api("GET", "/alerts", tokens["TEAM_INGEST"]).status_code == 403
        team_view = api("GET", "/alerts", tokens["TEAM_READ"])
        assert team_view.status_code == 200 and len(team_view.json()) >= 5
        assert {a["tenant"] for a in team_view.json()} == {"team-a"}
        search = api("GET", "/v1/search", tokens["TEAM_READ"], params={"limit": "5"})
        assert search.status_code == 200 and search.json()["tenant"] == "team-a"
        # a firing alert: a resolved one (the list can start with one) has nothing left to acknowledge
        first = next(a["id"] for a in team_view.json() if a["status"] == "firing" and a["acked_at"] is None)
        assert api("POST", f"/alerts/{first}/ack", tokens["TEAM_READ"], json={"by": "reader"}).status_code == 403
        acked = api("POST", f"/alerts/{first}/ack", tokens["OPS"], json={"by": "ops"})
        assert acked.status_code == 200 and acked.json()["alert"]["acked_by"] == "ops"

        assert stack.stop() == 0
        assert stack.stray_processes() == []
    finally:
        stack.kill()


def test_demo_over_tls_with_the_configured_token_and_a_guarded_dashboard(tmp_path, ray_head, secured):
    """The demo (``make run``) fires all five seed rules and stops cleanly; here over TLS, with its
    dashboard on (the same run over plain HTTP would only repeat this one's path without TLS)."""
    _, _, tokens, _ = secured
    dashboard_port = free_port()
    stack = start(tmp_path, ray_head, secured, ["--demo", "--demo-speed", "40", "--dashboard-port",
                                                str(dashboard_port), "--dask-dashboard-port", str(free_port())])
    stack.command.remove("--no-dashboards")
    stack.start()
    try:
        def fired_rules():
            return {a["rule"] for a in stack.outbox() if a["status"] == "firing"}

        stack.wait_for(lambda: fired_rules() >= SEED_RULES, timeout=150, what="all five demo incidents over TLS")
        assert stack.accepted("http") > 0 and stack.accepted("tcp") > 0  # the demo's HTTPS and TLS-TCP traffic
        dashboard = f"https://127.0.0.1:{dashboard_port}"
        assert dashboard in stack.output()
        assert requests.get(dashboard, verify=stack.verify, timeout=30).status_code == 401
        assert requests.get(dashboard, params={"token": tokens["TEAM_READ"]}, verify=stack.verify,
                            timeout=30).status_code == 403
        opened = requests.get(dashboard, params={"token": tokens["OPS"]}, verify=stack.verify, timeout=30)
        assert opened.status_code == 200 and "Bokeh" in opened.text
        assert stack.stop() == 0
        assert stack.stray_processes() == []
        assert "logwarden: stopped" in stack.output()
    finally:
        stack.kill()


def test_a_certificate_that_cannot_be_loaded_stops_up_with_a_message(tmp_path):
    config = tmp_path / "logwarden.yaml"
    config.write_text(f"tls: {{cert_file: {tmp_path}/missing.pem, key_file: {tmp_path}/missing-key.pem}}\n")
    stack = StackProcess(tmp_path / "data", None, ["--config", str(config)])
    with pytest.raises(AssertionError, match="cannot start: tls: cannot load"):
        stack.start(timeout=60)
    assert stack.popen.wait(30) == 1
    with socket.socket() as probe:  # nothing was left listening
        assert probe.connect_ex(("127.0.0.1", stack.http_port)) != 0
