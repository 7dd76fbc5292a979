"""The one authenticator (logwarden.common.auth), its configuration, and the aiohttp middleware that puts
every route behind it (logwarden.common.http)."""
from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from logwarden.common import auth as auth_module
from logwarden.common.auth import AuthConfig, AuthError, Authenticator, Principal
from logwarden.common.http import principal, protect, public, requires
from logwarden.common.yamlconf import ConfigError
from logwarden.security import stack_auth, stack_tls
from logwarden.settings import parse_settings

OPS = "ops-token-0123456789abcdef"
TEAM_A_READ = "team-a-read-0123456789"
TEAM_A_INGEST = "team-a-ingest-0123456789"
TEAM_B_ADMIN = "team-b-admin-0123456789"
TOKENS = {
    OPS: Principal("*", "admin"),
    TEAM_A_READ: Principal("team-a", "read"),
    TEAM_A_INGEST: Principal("team-a", "ingest"),
    TEAM_B_ADMIN: Principal("team-b", "admin"),
}


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator(TOKENS)


def bearer(token: str, scheme: str = "Bearer") -> str:
    return f"{scheme} {token}"


# roles and tenants ----------------------------------------------------------------------------------
@pytest.mark.parametrize("role, allowed", [
    ("ingest", {"ingest", "admin"}), ("read", {"read", "admin"}), ("admin", {"admin"})])
def test_admin_implies_read_and_ingest_and_nothing_else_implies_anything(role, allowed):
    assert {r for r in ("ingest", "read", "admin") if Principal("t", r).allows(role)} == allowed


def test_roles_are_enforced_with_403(authenticator):
    assert authenticator.authorize(bearer(TEAM_A_READ), "10.0.0.1", "read").tenant == "team-a"
    for token, role in ((TEAM_A_READ, "ingest"), (TEAM_A_READ, "admin"), (TEAM_A_INGEST, "read")):
        with pytest.raises(AuthError) as refused:
            authenticator.authorize(bearer(token), "10.0.0.1", role)
        assert refused.value.status == 403 and role in refused.value.message
    assert authenticator.authorize(bearer(TEAM_B_ADMIN), "10.0.0.1", "ingest").role == "admin"


def test_tenant_star_sees_every_tenant_and_ingests_into_the_default_tenant(authenticator):
    ops = authenticator.authorize(bearer(OPS), "10.0.0.1", "read", all_tenants=True)
    assert ops.all_tenants and ops.tenant_filter is None
    assert authenticator.http_tenant(bearer(OPS), "10.0.0.1") == "default"
    assert authenticator.http_tenant(bearer(TEAM_A_INGEST), "10.0.0.1") == "team-a"
    team = authenticator.authenticate(bearer(TEAM_B_ADMIN), "10.0.0.1")
    assert team.tenant_filter == "team-b"
    with pytest.raises(AuthError) as refused:  # an admin of one tenant is not an operator
        authenticator.check(team, "admin", all_tenants=True)
    assert refused.value.status == 403


# credentials ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "BeArEr"])
def test_the_bearer_scheme_is_case_insensitive(authenticator, scheme):
    assert authenticator.authenticate(f"{scheme} {TEAM_A_READ}", "10.0.0.1").tenant == "team-a"
    assert authenticator.authenticate(f"  {scheme}   {TEAM_A_READ}  ", "10.0.0.1").tenant == "team-a"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", f"Basic {TEAM_A_READ}", f"Splunk {TEAM_A_READ}x", TEAM_A_READ,
                                    "Bearer wrong-token-0123456789", f"Bearer {TEAM_A_READ}x",
                                    f"Bearer {TEAM_A_READ[:-1]}"])
def test_missing_malformed_or_unknown_credentials_are_401_with_a_challenge(authenticator, header):
    with pytest.raises(AuthError) as refused:
        authenticator.authenticate(header, "127.0.0.1")  # loopback is not trusted once tokens exist
    assert refused.value.status == 401
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    assert TEAM_A_READ not in refused.value.message


def test_a_403_has_no_challenge(authenticator):
    with pytest.raises(AuthError) as refused:
        authenticator.authorize(bearer(TEAM_A_READ), "127.0.0.1", "admin")
    assert refused.value.status == 403 and refused.value.headers == {}


def test_every_token_is_compared_in_constant_time_on_each_request(authenticator, monkeypatch):
    calls = []

    def compare_digest(a, b):
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(auth_module.hmac, "compare_digest", compare_digest)
    for presented in (TEAM_A_READ, "wrong-token-0123456789", OPS):  # first, none, last: the same work
        calls.clear()
        authenticator.principal_of_token(presented)
        assert len(calls) == len(TOKENS)
        assert {len(a) for a, _ in calls} == {len(b) for _, b in calls} == {32}  # digests: equal lengths
    calls.clear()
    assert authenticator.authenticate(bearer(OPS), "10.0.0.1") == TOKENS[OPS]
    assert len(calls) == len(TOKENS)


# without tokens: loopback only ----------------------------------------------------------------------
@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_without_tokens_loopback_clients_are_the_local_operator(peer):
    local = Authenticator().authorize(None, peer, "admin", all_tenants=True)
    assert local.role == "admin" and local.all_tenants
    assert Authenticator(default_tenant="acme").http_tenant(None, peer) == "acme"


@pytest.mark.parametrize("peer", ["10.0.0.1", "192.168.1.20", "::ffff:10.0.0.1", "2001:db8::1", None, "", "nonsense"])
def test_without_tokens_other_clients_are_403(peer):
    with pytest.raises(AuthError) as refused:
        Authenticator().authenticate(f"Bearer {OPS}", peer)
    assert refused.value.status == 403 and "loopback" in refused.value.message


def test_only_known_schemes_can_be_enabled():
    with pytest.raises(ValueError):
        Authenticator(TOKENS, schemes=("bearer", "negotiate"))


def test_splunk_and_basic_schemes_carry_the_same_tokens():
    authenticator = Authenticator(TOKENS)
    assert authenticator.authenticate(f"Splunk {TEAM_A_READ}", "10.0.0.1").tenant == "team-a"
    basic = base64.b64encode(f"filebeat:{TEAM_A_READ}".encode()).decode()
    assert authenticator.authenticate(f"Basic {basic}", "10.0.0.1").tenant == "team-a"
    wrong = base64.b64encode(b"filebeat:not-a-token").decode()
    with pytest.raises(AuthError) as refused:
        authenticator.authenticate(f"Basic {wrong}", "10.0.0.1")
    assert refused.value.status == 401
    with pytest.raises(AuthError):
        Authenticator(TOKENS, schemes=("bearer",)).authenticate(f"Splunk {TEAM_A_READ}", "10.0.0.1")


# configuration --------------------------------------------------------------------------------------
def test_auth_section_maps_tokens_to_principals_and_collector_tokens_become_ingest_tokens():
    config = AuthConfig.from_dict({"tokens": {OPS: {"tenant": "*", "role": "admin"},
                                              TEAM_A_READ: {"tenant": "team-a", "role": "read"}}})
    merged = config.with_ingest_tokens({TEAM_A_INGEST: "team-a", OPS: "*"})
    assert merged.tokens[TEAM_A_INGEST] == Principal("team-a", "ingest")
    assert merged.tokens[OPS] == Principal("*", "admin")
    assert merged.token_for("ingest") == OPS and merged.token_for("read", tenant="team-a") == TEAM_A_READ
    assert OPS not in repr(merged) and TEAM_A_READ not in repr(merged)


@pytest.mark.parametrize("section, where, problem", [
    ({"tokens": {OPS: {"tenant": "*", "role": "root"}}}, "auth.tokens.<redacted>.role",
     "'root' is not one of ingest, read, admin"),
    ({"tokens": {OPS: {"tenant": "", "role": "read"}}}, "auth.tokens.<redacted>.tenant", "tenant name"),
    ({"tokens": {OPS: {"role": "read"}}}, "auth.tokens.<redacted>.tenant", "tenant name"),
    ({"tokens": {OPS: {"tenant": "a", "role": "read", "scope": "x"}}}, "auth.tokens.<redacted>.scope",
     "unknown key"),
    ({"tokens": {OPS: "team-a"}}, "auth.tokens.<redacted>", "expected a mapping"),
    ({"tokens": {"short": {"tenant": "a", "role": "read"}}}, "auth.tokens.<redacted>", "at least 16"),
    ({"tokens": [OPS]}, "auth.tokens", "expected a mapping"),
    ({"users": {}}, "auth.users", "unknown key"),
    ("tokens", "auth", "expected a mapping"),
])
def test_auth_config_errors_name_the_key_and_never_the_token(section, where, problem):
    with pytest.raises(ConfigError) as refused:
        AuthConfig.from_dict(section)
    text = str(refused.value)
    assert text.startswith(f"{where}: ") and problem in text
    assert OPS not in text and "short" not in text


def test_a_token_granted_differently_in_collector_tokens_is_refused():
    config = AuthConfig.from_dict({"tokens": {TEAM_A_READ: {"tenant": "team-a", "role": "read"}}})
    with pytest.raises(ConfigError) as refused:
        config.with_ingest_tokens({TEAM_A_READ: "team-a"})  # read does not allow ingest
    assert str(refused.value).startswith("auth.tokens.<redacted>: ") and TEAM_A_READ not in str(refused.value)
    admin = AuthConfig.from_dict({"tokens": {OPS: {"tenant": "team-a", "role": "admin"}}})
    assert admin.with_ingest_tokens({OPS: "team-a"}).tokens[OPS].role == "admin"  # the same grant, or more


def test_the_config_file_sets_tokens_from_the_environment_and_one_tls(monkeypatch, tmp_path):
    monkeypatch.setenv("OPS_TOKEN", OPS)
    monkeypatch.setenv("TEAM_A_READ", TEAM_A_READ)
    settings = parse_settings(f"""
auth:
  tokens:
    "${{OPS_TOKEN}}": {{tenant: "*", role: admin}}
    "${{TEAM_A_READ}}": {{tenant: team-a, role: read}}
collector:
  tokens: {{"{TEAM_A_INGEST}": team-a}}
tls: {{cert_file: {tmp_path}/cert.pem, key_file: {tmp_path}/key.pem}}
""")
    tokens = stack_auth(settings).tokens
    assert tokens == {OPS: Principal("*", "admin"), TEAM_A_READ: Principal("team-a", "read"),
                      TEAM_A_INGEST: Principal("team-a", "ingest")}
    assert stack_tls(settings).cert_file == tmp_path / "cert.pem"


def test_a_bad_role_in_the_config_file_names_file_line_and_key(tmp_path):
    path = tmp_path / "logwarden.yaml"
    path.write_text(f"auth:\n  tokens:\n    {OPS}:\n      tenant: '*'\n      role: root\n")
    with pytest.raises(ConfigError) as refused:
        parse_settings(path.read_text(), str(path))
    text = str(refused.value)
    assert text.startswith(f"{path}:5: auth.tokens.<redacted>.role: 'root' is not one of")
    assert OPS not in text


def test_collector_tls_is_the_same_setting_and_may_not_differ(tmp_path):
    old = parse_settings(f"collector:\n  tls: {{cert_file: {tmp_path}/c.pem, key_file: {tmp_path}/k.pem}}\n")
    assert stack_tls(old).key_file == tmp_path / "k.pem"
    both = parse_settings(f"tls: {{cert_file: {tmp_path}/a.pem, key_file: {tmp_path}/k.pem}}\n"
                          f"collector:\n  tls: {{cert_file: {tmp_path}/c.pem, key_file: {tmp_path}/k.pem}}\n")
    with pytest.raises(ConfigError, match="collector.tls: differs from the top-level tls"):
        stack_tls(both)
    with pytest.raises(ConfigError, match="tls.key_file"):
        parse_settings(f"tls: {{cert_file: {tmp_path}/a.pem}}\n")


# the middleware -------------------------------------------------------------------------------------
def _app(authenticator: Authenticator | None) -> web.Application:
    app = protect(web.Application(), authenticator)

    @public
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @requires("read")
    async def reading(request: web.Request) -> web.Response:
        who = principal(request)
        return web.json_response({"tenant": who.tenant_filter})

    @requires("admin", all_tenants=True)
    async def everything(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_get("/health", health)
    app.router.add_get("/read", reading)
    app.router.add_post("/everything", everything)
    return app


def _run(app: web.Application, requests: list[tuple[str, str, str | None]]) -> list[tuple[int, dict, dict]]:
    async def go():
        out = []
        async with TestClient(TestServer(app)) as client:
            for method, path, token in requests:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = await client.request(method, path, headers=headers)
                out.append((response.status, await response.json(), dict(response.headers)))
        return out
    return asyncio.run(go())


def test_routes_answer_by_their_declared_role_with_json_401_and_403(authenticator):
    answers = _run(_app(authenticator), [
        ("GET", "/health", None), ("GET", "/read", None), ("GET", "/read", "not-a-token-0123456789"),
        ("GET", "/read", TEAM_A_INGEST), ("GET", "/read", TEAM_A_READ), ("GET", "/read", OPS),
        ("POST", "/everything", TEAM_B_ADMIN), ("POST", "/everything", OPS)])
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 401, 401, 403, 200, 200, 403, 200]
    assert answers[1][2]["WWW-Authenticate"].startswith("Bearer") and "WWW-Authenticate" not in answers[3][2]
    assert answers[1][1]["status"] == 401 and answers[1][1]["error"]
    assert answers[4][1] == {"tenant": "team-a"} and answers[5][1] == {"tenant": None}


def test_without_tokens_the_loopback_test_client_is_served():
    assert [s for s, _, _ in _run(_app(None), [("GET", "/read", None), ("POST", "/everything", None)])] == [200, 200]


def test_an_app_with_an_undeclared_route_does_not_start(authenticator):
    app = _app(authenticator)

    async def forgotten(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/forgotten", forgotten)
    with pytest.raises(RuntimeError, match="GET /forgotten"):
        _run(app, [])
