"""The dashboard behind the stack's authenticator and TLS, seen by a plain HTTP client; and its scrape of
the collector's metrics over TLS with a read token."""
from __future__ import annotations

import pytest
import requests

from logwarden import dashboard
from logwarden.common.auth import AuthConfig, Authenticator, Principal
from logwarden.common.paths import DataDir
from logwarden.common.tls import TlsConfig, client_context, server_context
from logwarden.dashboard.auth import COOKIE
from logwarden.dashboard.sources import PipelineHealth
from logwarden.testing.receivers import self_signed
from tests.collector.helpers import RunningCollector, collector_config, ndjson, record
from tests.dashboard.fixtures import make_data_dir

OPS_READ = "ops-read-token-0123456789"
TEAM_READ = "team-a-read-token-0123456789"
OPS_INGEST = "ops-ingest-token-0123456789"
AUTH = Authenticator({OPS_READ: Principal("*", "read"), TEAM_READ: Principal("team-a", "read"),
                      OPS_INGEST: Principal("*", "ingest")})


@pytest.fixture
def tls(tmp_path) -> TlsConfig:
    return TlsConfig(*self_signed(tmp_path))


@pytest.fixture
def served(tmp_path, tls):
    make_data_dir(tmp_path / "data")
    handle = dashboard.serve(0, tmp_path / "data", {}, auth=AUTH, ssl_context=server_context(tls))
    try:
        yield handle
    finally:
        handle.stop()


def session(tls: TlsConfig) -> requests.Session:
    client = requests.Session()
    client.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, replaces ``verify``
    client.verify = str(tls.cert_file)
    return client


def test_the_dashboard_is_served_over_tls_and_asks_for_a_token(served, tls):
    assert served.url.startswith("https://")
    answer = session(tls).get(served.url, timeout=30)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "token" in answer.json()["error"] and answer.url.startswith(f"{served.url}login")
    page = session(tls).get(served.url, headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 401 and '<form method="post"' in page.text and 'type="password"' in page.text
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(served.url, timeout=30)


def test_a_read_token_of_every_tenant_opens_a_secure_session(served, tls):
    client = session(tls)
    first = client.get(served.url, params={"token": OPS_READ}, timeout=30)
    assert first.status_code == 200 and "Bokeh" in first.text
    cookie = next(c for c in client.cookies if c.name == COOKIE)
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Strict"
    assert OPS_READ not in cookie.value and OPS_READ not in first.headers["Set-Cookie"]
    again = client.get(served.url, timeout=30)  # the cookie alone
    assert again.status_code == 200 and "Bokeh" in again.text
    stranger = session(tls)
    stranger.cookies.set(COOKIE, "forged-session-id", domain=cookie.domain, path="/")
    assert stranger.get(served.url, timeout=30).status_code == 401


def test_other_tokens_are_refused_with_401_or_403(served, tls):
    assert session(tls).get(served.url, params={"token": "not-a-token-0123456789"}, timeout=30).status_code == 401
    for token in (TEAM_READ, OPS_INGEST):  # one tenant only; not a reader
        answer = session(tls).get(served.url, params={"token": token}, timeout=30)
        assert answer.status_code == 403, token
        assert token not in answer.url  # the token is not carried to the login page
        by_header = session(tls).get(served.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert by_header.status_code == 403, token
    assert session(tls).get(served.url, headers={"Authorization": f"bearer {OPS_READ}"}, timeout=30).status_code == 200


def test_the_login_form_opens_a_session(served, tls):
    client = session(tls)
    answer = client.post(f"{served.url}login", params={"next": "/"}, data={"token": OPS_READ},
                         allow_redirects=False, timeout=30)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    assert client.get(served.url, timeout=30).status_code == 200
    bad = session(tls).post(f"{served.url}login", data={"token": TEAM_READ}, allow_redirects=False, timeout=30)
    assert bad.status_code == 403
    away = session(tls).post(f"{served.url}login", params={"next": "//evil.example/"}, data={"token": OPS_READ},
                             allow_redirects=False, timeout=30)
    assert away.headers["Location"] == "/"  # never sent off this dashboard


def test_without_tokens_loopback_opens_it(tmp_path):
    make_data_dir(tmp_path / "data")
    handle = dashboard.serve(0, tmp_path / "data", {})
    try:
        assert handle.url.startswith("http://")
        answer = requests.get(handle.url, timeout=30)
        assert answer.status_code == 200 and "Bokeh" in answer.text
    finally:
        handle.stop()


def test_the_collector_metrics_are_scraped_over_tls_with_a_read_token(tmp_path, tls):
    config = collector_config(tls=tls, tokens={"team-a-ingest-0123456789": "team-a"})
    with RunningCollector(tmp_path, config, AuthConfig({OPS_READ: Principal("*", "read")})) as collector:
        url = f"https://127.0.0.1:{collector.server.http_port}"
        sent = requests.post(f"{url}/v1/logs", data=ndjson([record(1), record(2)]), verify=str(tls.cert_file),
                             headers={"Authorization": "Bearer team-a-ingest-0123456789"}, timeout=10)
        assert sent.status_code == 200
        links = {"collector metrics": f"{url}/metrics"}
        paths = DataDir.at(tmp_path)
        assert PipelineHealth(paths, links, ssl_context=client_context(tls), token=OPS_READ)._accepted() == 2.0
        assert PipelineHealth(paths, links, ssl_context=client_context(tls))._accepted() is None  # 401
        assert PipelineHealth(paths, links, token=OPS_READ)._accepted() is None  # certificate not trusted
        team_a = {"Authorization": "Bearer team-a-ingest-0123456789"}  # an ingest token may not read metrics
        assert requests.get(f"{url}/metrics", headers=team_a, verify=str(tls.cert_file), timeout=10).status_code == 403
