"""The search API: a token's tenant only ever sees its own records, whatever the query says."""
from __future__ import annotations

import asyncio
import io

import pyarrow.parquet as pq
import pytest
from aiohttp.test_utils import TestClient, TestServer

from logwarden.common.auth import Authenticator, Principal
from logwarden.storage import Lake
from logwarden.storage.api import search_app
from tests.storage.sample import rows, table

TOKENS = {"tok-acme": "acme", "tok-globex": "globex"}  # read tokens
AUTH = Authenticator({**{token: Principal(tenant, "read") for token, tenant in TOKENS.items()},
                      "tok-acme-ingest": Principal("acme", "ingest"), "tok-operator": Principal("*", "read")})
ATTACKS = [
    {},
    {"tenant": "globex"},
    {"where": "tenant = 'globex'"},
    {"where": "tenant <> 'acme' OR true"},
    {"where": "1=1) OR (tenant = 'globex'"},
    {"where": "true) OR (true"},
    {"where": "EXISTS (SELECT 1 FROM read_parquet('/'))"},
    {"where": "tenant = 'globex'; SELECT * FROM src"},
    {"q": "request", "service": "api,billing,search"},
]


@pytest.fixture()
def lake_root(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.commit_batch("b1", table(rows(120)))
    return lake.root


def call(app, path: str, params: dict, token: str | None = None) -> tuple[int, object]:
    """One request to a fresh instance of the app (``app`` is (lake_root, authenticator))."""
    async def go():
        async with TestClient(TestServer(search_app(*app))) as client:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.get(path, params=params, headers=headers)
            body = await response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, (await response.json() if kind.startswith("application/json") else body)
    return asyncio.run(go())


@pytest.mark.parametrize("params", ATTACKS)
def test_a_tenant_never_reads_another_tenants_records(lake_root, params):
    app = (lake_root, AUTH)
    status, body = call(app, "/v1/search", {**params, "limit": "10000"}, "tok-acme")
    if status == 400:  # refused outright: also no leak
        assert "error" in body
        return
    assert status == 200, body
    acme = {r["record_id"] for r in rows(120) if r["tenant"] == "acme"}
    assert body["tenant"] == "acme"
    assert {r["record_id"] for r in body["records"]} <= acme
    assert {r["tenant"] for r in body["records"]} <= {"acme"}
    status, counted = call(app, "/v1/count", params, "tok-acme")
    assert status == 200 and counted["count"] == body["count"]


def test_each_token_sees_exactly_its_tenant(lake_root):
    app = (lake_root, AUTH)
    for token, tenant in TOKENS.items():
        status, body = call(app, "/v1/search", {"limit": "10000"}, token)
        assert status == 200
        assert sorted(r["record_id"] for r in body["records"]) == sorted(
            r["record_id"] for r in rows(120) if r["tenant"] == tenant)


def test_exports_and_aggregates_are_confined_too(lake_root):
    app = (lake_root, AUTH)
    status, body = call(app, "/v1/search", {"format": "parquet", "limit": "10000", "tenant": "acme"}, "tok-globex")
    assert status == 200
    assert set(pq.read_table(io.BytesIO(body)).column("tenant").to_pylist()) == {"globex"}
    status, body = call(app, "/v1/aggregates", {"by": "tenant", "bucket": "1d"}, "tok-globex")
    assert status == 200 and {r["tenant"] for r in body["rows"]} == {"globex"}
    assert sum(r["count"] for r in body["rows"]) == sum(r["tenant"] == "globex" for r in rows(120))


def test_missing_or_unknown_tokens_are_refused(lake_root):
    app = (lake_root, AUTH)
    assert call(app, "/v1/search", {})[0] == 401
    assert call(app, "/v1/search", {}, "nope")[0] == 401
    status, body = call(app, "/v1/search", {}, "tok-acme-ingest")  # an ingest token may not read
    assert status == 403 and "read" in body["error"]


def test_an_operator_token_sees_every_tenant(lake_root):
    status, body = call((lake_root, AUTH), "/v1/search", {"limit": "10000"}, "tok-operator")
    assert status == 200 and body["tenant"] is None
    assert {r["tenant"] for r in body["records"]} == {"acme", "globex"}


def test_without_tokens_loopback_sees_every_tenant(lake_root):
    status, body = call((lake_root, None), "/v1/search", {"limit": "10000", "level": "ERROR"})
    assert status == 200 and body["tenant"] is None
    assert {r["tenant"] for r in body["records"]} == {"acme", "globex"}
    assert body["count"] == sum(r["level"] == "ERROR" for r in rows(120))


def test_bad_parameters_answer_400(lake_root):
    app = (lake_root, AUTH)
    for params in ({"limit": "-1"}, {"sort": "nope"}, {"since": "never"}, {"format": "xml"}, {"order": "up"}):
        status, body = call(app, "/v1/search", params, "tok-acme")
        assert status == 400 and body["error"], params


def test_search_server_in_a_thread(lake_root):
    import requests

    from logwarden.storage.api import SearchServer

    server = SearchServer(lake_root, AUTH, port=0).start()
    try:
        answer = requests.get(f"{server.url}/v1/count", headers={"Authorization": "Bearer tok-acme"}, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["count"] == sum(r["tenant"] == "acme" for r in rows(120))
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/v1/count", timeout=2)
