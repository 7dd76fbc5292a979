"""The API port as ``logwarden up`` assembles it (alerts, search, ML feedback) behind the one authenticator:
who may list, read and acknowledge alerts, and which tenant's alerts and sample lines they see."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import requests
from aiohttp.test_utils import TestClient, TestServer

from logwarden.alerting import history
from logwarden.alerting.http import aiohttp_routes
from logwarden.api import ApiServer, api_app
from logwarden.common.auth import Authenticator, Principal
from logwarden.common.tls import TlsConfig, client_context, local_opener, server_context
from logwarden.monitoring.ml import FeedbackStore, feedback_routes
from logwarden.storage.api import install_search
from logwarden.testing.receivers import self_signed
from tests.alerting.conftest import anomaly

OPS = "ops-admin-token-0123456789"
A_READ = "team-a-read-token-0123456789"
A_ADMIN = "team-a-admin-token-0123456789"
B_READ = "team-b-read-token-0123456789"
A_INGEST = "team-a-ingest-token-0123456789"
AUTH = Authenticator({OPS: Principal("*", "admin"), A_READ: Principal("team-a", "read"),
                      A_ADMIN: Principal("team-a", "admin"), B_READ: Principal("team-b", "read"),
                      A_INGEST: Principal("team-a", "ingest")})


@pytest.fixture
def api(make_service, tmp_path):
    """(installers of the stack's API, data dir): alerts of two tenants, with distinct sample lines, and
    one ML anomaly."""
    service = make_service(alerts_dir=tmp_path / "alerts")
    service.dispatch([
        anomaly("error_spike", key="payment", severity="HIGH", tenant="team-a",
                samples=["team-a secret sample line"]),
        anomaly("db_connection_failure", key="orders", severity="CRITICAL", tenant="team-b",
                samples=["team-b secret sample line"]),
    ])
    FeedbackStore.for_data_dir(tmp_path).record("ml-1", "new_patterns", "templates", "checkout", "T1", 5.0, 0.9,
                                                {"template_id": "T1"})
    installers = [lambda app: app.add_routes(aiohttp_routes(service)),
                  lambda app: install_search(app, tmp_path / "lake"),
                  lambda app: app.add_routes(feedback_routes(tmp_path))]
    return installers, service


def call(installers, requests_: list[tuple], auth: Authenticator | None = AUTH) -> list[tuple[int, object]]:
    """Each (method, path, token[, json]) against one instance of the API app; (status, JSON body) each."""
    async def go():
        out = []
        async with TestClient(TestServer(api_app(installers, auth))) as client:
            for method, path, token, *body in requests_:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = await client.request(method, path, headers=headers, json=body[0] if body else None)
                out.append((response.status, await response.json(content_type=None)))
        return out
    return asyncio.run(go())


def alert_id(service, tenant: str) -> int:
    return next(a["id"] for a in history.list_alerts(service.store) if a["tenant"] == tenant)


def test_alerts_without_a_token_are_401_once_tokens_are_configured(api):
    installers, service = api
    answers = call(installers, [("GET", "/alerts", None), ("GET", f"/alerts/{alert_id(service, 'team-a')}", None),
                                ("POST", f"/alerts/{alert_id(service, 'team-a')}/ack", None),
                                ("GET", "/alerts/metrics", None), ("GET", "/v1/search", None),
                                ("POST", "/ml/anomalies/ml-1/feedback", None, {"verdict": "false-positive"}),
                                ("GET", "/alerts", "not-a-token-0123456789"), ("GET", "/health", None)])
    assert [status for status, _ in answers] == [401] * 7 + [200]
    assert all("secret" not in str(body) for _, body in answers)


def test_a_read_token_of_one_tenant_never_sees_another_tenants_alerts_or_samples(api):
    installers, service = api
    a_id, b_id = alert_id(service, "team-a"), alert_id(service, "team-b")
    answers = call(installers, [("GET", "/alerts", A_READ), ("GET", f"/alerts/{a_id}", A_READ),
                                ("GET", f"/alerts/{b_id}", A_READ), ("GET", "/alerts?status=firing", B_READ),
                                ("GET", "/alerts/db_connection_failure:orders", A_READ),
                                ("GET", "/alerts", OPS), ("GET", "/alerts/dead-letters", A_ADMIN)])
    (s1, listing_a), (s2, one_a), (s3, one_b), (s4, listing_b), (s5, by_key), (s6, everything), (s7, _) = answers
    assert (s1, s2, s3, s4, s5, s6, s7) == (200, 200, 404, 200, 404, 200, 403)
    assert [a["tenant"] for a in listing_a] == ["team-a"] and [a["tenant"] for a in listing_b] == ["team-b"]
    assert "team-b secret" not in str(listing_a) and "team-b secret" not in str(one_a)
    assert "team-a secret sample line" in str(listing_a) and "team-a secret" not in str(listing_b)
    assert {a["tenant"] for a in everything} == {"team-a", "team-b"}


def test_acknowledging_needs_admin_of_the_alerts_tenant(api):
    installers, service = api
    a_id, b_id = alert_id(service, "team-a"), alert_id(service, "team-b")
    answers = call(installers, [("POST", f"/alerts/{a_id}/ack", A_READ, {"by": "reader"}),
                                ("POST", f"/alerts/{b_id}/ack", A_ADMIN, {"by": "a-admin"}),
                                ("POST", f"/alerts/{a_id}/ack", A_ADMIN, {"by": "a-admin"}),
                                ("POST", f"/alerts/{b_id}/ack", OPS, {"by": "ops"})])
    assert [status for status, _ in answers] == [403, 404, 200, 200]
    assert answers[2][1]["alert"]["acked_by"] == "a-admin" and answers[3][1]["alert"]["acked_by"] == "ops"


def test_ml_feedback_needs_an_operator_admin(api):
    installers, _ = api
    verdict = {"verdict": "false-positive", "by": "x"}
    answers = call(installers, [("POST", "/ml/anomalies/ml-1/feedback", A_READ, verdict),
                                ("POST", "/ml/anomalies/ml-1/feedback", A_ADMIN, verdict),
                                ("GET", "/ml/anomalies/ml-1", B_READ),
                                ("POST", "/ml/anomalies/ml-1/feedback", OPS, verdict),
                                ("GET", "/ml/anomalies/ml-1", OPS)])
    assert [status for status, _ in answers] == [403, 403, 403, 200, 200]
    assert answers[4][1]["feedback"][0]["verdict"] == "false-positive"


def test_without_tokens_the_api_serves_loopback_as_the_local_operator(api):
    installers, service = api
    answers = call(installers, [("GET", "/alerts", None), ("POST", f"/alerts/{alert_id(service, 'team-b')}/ack",
                                                           None, {"by": "me"})], auth=None)
    assert [status for status, _ in answers] == [200, 200]
    assert {a["tenant"] for a in answers[0][1]} == {"team-a", "team-b"}


def test_the_api_serves_tls_when_given_a_certificate(api, tmp_path: Path):
    installers, _ = api
    tls = TlsConfig(*self_signed(tmp_path))
    server = ApiServer(installers, "127.0.0.1", 0, auth=AUTH, ssl_context=server_context(tls))
    server.start()
    try:
        assert server.base_url.startswith("https://127.0.0.1:")
        answer = requests.get(f"{server.base_url}/alerts", headers={"Authorization": f"Bearer {A_READ}"},
                              verify=str(tls.cert_file), timeout=10)
        assert answer.status_code == 200 and [a["tenant"] for a in answer.json()] == ["team-a"]
        with pytest.raises(requests.exceptions.SSLError):  # not trusted without the certificate
            requests.get(f"{server.base_url}/health", timeout=10)
        with pytest.raises(requests.ConnectionError):  # no plain HTTP on the TLS port
            requests.get(f"http://127.0.0.1:{server.port}/health", timeout=10)
        with local_opener(client_context(tls)).open(f"{server.base_url}/health", timeout=10) as probe:
            assert probe.status == 200  # how the stack probes its own listeners
    finally:
        server.stop()
