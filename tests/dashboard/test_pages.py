"""The working pages' parts without a browser: the search queries (through the search API's own parsing, on
a real lake), alert states and links, who may open which page, the health series and the Ray hint."""
from __future__ import annotations

import io

import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from multidict import MultiDict

from logwarden import dashboard
from logwarden.common.auth import Authenticator, Principal
from logwarden.common.paths import DataDir
from logwarden.dashboard import rayauth
from logwarden.dashboard.alerts import alert_rows, alert_state
from logwarden.dashboard.links import logs_url
from logwarden.dashboard.logquery import Cursor, LogQuery, QueryError, parse_conditions
from logwarden.dashboard.sources import HEALTH_SERIES, PipelineHealth
from logwarden.storage import Lake
from logwarden.storage.api import request_from_query
from logwarden.storage.search import count, search
from tests.dashboard.fixtures import make_data_dir

OPS = "ops-read-token-0123456789"
TEAM = "team-a-read-token-0123456789"
AUTH = Authenticator({OPS: Principal("*", "read"), TEAM: Principal("team-a", "read")})


def _api_search(lake: Lake, query: LogQuery, with_cursor: bool = True) -> list[dict]:
    """What ``GET /v1/search`` answers for the page's parameters (the API's parser, the lake's search)."""
    return search(lake, request_from_query(MultiDict(query.params(with_cursor)))).to_pylist()


def test_pages_cover_every_match_once_newest_first(tmp_path):
    make_data_dir(tmp_path)
    lake = Lake(DataDir.at(tmp_path).lake)
    query = LogQuery(services=("api", "billing"), since="2h", page_size=17)
    total = count(lake, request_from_query(MultiDict(query.params(with_cursor=False))))
    seen: list[dict] = []
    while True:
        page = _api_search(lake, query)
        seen += page
        if len(page) < query.page_size:
            break
        query = query.next_page(Cursor(page[-1]["timestamp"].isoformat(), page[-1]["record_id"]))
    assert total > 3 * 17 and len(seen) == total == len({r["record_id"] for r in seen})
    assert {r["service"] for r in seen} == {"api", "billing"}
    assert [r["timestamp"] for r in seen] == sorted((r["timestamp"] for r in seen), reverse=True)
    assert query.previous_page().page == query.page - 1 and LogQuery().previous_page().page == 1


def test_any_field_and_key_conditions(tmp_path):
    make_data_dir(tmp_path)
    lake = Lake(DataDir.at(tmp_path).lake)
    some = _api_search(lake, LogQuery(since="2h", page_size=1000))
    user = next(r["user_id"] for r in some if r["user_id"])
    by_field = _api_search(lake, LogQuery(since="2h", page_size=1000, conditions=parse_conditions(f"user_id={user}")))
    by_key = _api_search(lake, LogQuery(since="2h", page_size=1000, key=user))
    assert by_field and {r["user_id"] for r in by_field} == {user}
    assert [r["record_id"] for r in by_key] == [r["record_id"] for r in by_field]
    assert _api_search(lake, LogQuery(since="2h", conditions=parse_conditions("team=nobody"))) == []  # attributes
    for bad in ("no condition here", "bad name!=1", "x; drop=1"):
        with pytest.raises(QueryError):
            parse_conditions(bad)
    injected = LogQuery(conditions=parse_conditions("service=x' OR '1'='1"))
    assert _api_search(lake, injected) == []  # a value stays a value


def test_alert_states_and_their_logs_link():
    base = {"id": 1, "rule": "slow_response", "key": "u-1", "service": "api", "tenant": "team-a",
            "window_start": "2026-11-22T10:00:00Z", "window_end": "2026-11-22T10:05:00Z", "status": "firing",
            "silenced_by": None, "acked_at": None, "resolved_at": None}
    assert alert_state(base) == "firing"
    assert alert_state({**base, "acked_at": 1.0}) == "acknowledged"
    assert alert_state({**base, "acked_at": 1.0, "silenced_by": 3}) == "silenced"
    assert alert_state({**base, "status": "resolved", "silenced_by": 3}) == "resolved"
    rows = alert_rows([base, {**base, "id": 2, "acked_at": 1.0, "acked_by": "alice"}], "acknowledged")
    assert rows["id"] == ["2"] and rows["by"] == ["alice"]
    link = dict(parse_qsl(urlsplit(rows["logs"][0]).query))
    assert urlsplit(rows["logs"][0]).path == "/search"
    assert link == {"service": "api", "key": "u-1", "tenant": "team-a", "since": "2026-11-22T10:00:00Z",
                    "until": "2026-11-22T10:05:01Z"}
    start = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
    assert "key=" not in logs_url(start, start, "api", "api", None)  # the key is the service itself


def test_a_tenant_reader_opens_the_working_pages_but_not_the_overview(tmp_path):
    make_data_dir(tmp_path / "data")
    handle = dashboard.serve(0, tmp_path / "data", {}, auth=AUTH, api_url="http://127.0.0.1:9")
    try:
        def status(path: str, token: str) -> int:
            return requests.get(f"{handle.url.rstrip('/')}{path}", headers={"Authorization": f"Bearer {token}"},
                                timeout=30).status_code

        assert [status(p, TEAM) for p in ("/", "/search", "/alerts")] == [403, 200, 200]
        assert [status(p, OPS) for p in ("/", "/search", "/alerts")] == [200, 200, 200]
        assert status("/search", "not-a-token-0123456789") == 401
        down = requests.get(f"{handle.url}export", params={"format": "csv"}, timeout=30,
                            headers={"Authorization": f"Bearer {TEAM}"})
        assert down.status_code == 502 and "cannot be reached" in down.json()["error"]  # the API is down
        login = requests.post(f"{handle.url}login", params={"next": "/search"}, data={"token": TEAM},
                              allow_redirects=False, timeout=30)
        assert login.status_code == 303 and login.headers["Location"] == "/search"
    finally:
        handle.stop()


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path != "/metrics":
            self.send_response(404)
            self.end_headers()
            return
        body = (b"# TYPE logwarden_processing_batches counter\nlogwarden_processing_batches_total 7.0\n"
                b"logwarden_spool_quarantined_batches 2.0\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return


def test_the_health_panel_shows_what_is_exported_and_n_a_for_the_rest(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        links = {"Ray dashboard": "http://127.0.0.1:9/", "Ray dashboard token": "asks for a token: …"}
        health = PipelineHealth(DataDir.at(tmp_path), links, api_url=f"http://127.0.0.1:{server.server_port}").check()
    finally:
        server.shutdown()
    series = dict(health.series)
    assert series["batches processed"] == 7 and series["quarantined batches"] == 2
    assert series["silenced alerts"] is None and series["records rejected"] is None  # not exported: n/a
    assert len(series) == len(HEALTH_SERIES) and health.notes == {"Ray": "asks for a token: …"}


def test_the_ray_hint_names_where_the_token_is(monkeypatch, tmp_path):
    monkeypatch.setattr(rayauth, "_token_auth_enabled", lambda: False)
    assert rayauth.ray_dashboard_hint() is None
    monkeypatch.setattr(rayauth, "_token_auth_enabled", lambda: True)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    assert "ray get-auth-token" in rayauth.ray_dashboard_hint() and str(tmp_path / "token") in \
        rayauth.ray_dashboard_hint()
    monkeypatch.setenv("RAY_AUTH_TOKEN", "x")
    assert "RAY_AUTH_TOKEN environment variable" in rayauth.ray_dashboard_hint()


def test_a_verdict_from_the_alerts_page_is_recorded_for_the_actionable_model(tmp_path):
    from logwarden.alerting import ConsoleNotifier, build_alerting
    from logwarden.alerting.http import aiohttp_routes
    from logwarden.api import ApiServer
    from logwarden.common.paths import DataDir
    from logwarden.dashboard.alerts import AlertActions
    from logwarden.dashboard.apiclient import ApiClient, ApiError
    from logwarden.dashboard.auth import Grant
    from logwarden.dashboard.pages import PageContext
    from logwarden.monitoring.ml.verdicts import ALERT, VerdictStore
    from tests.alerting.conftest import FAST, ROUTING, anomaly

    admin = "ops-admin-token-0123456789"
    auth = Authenticator({admin: Principal("*", "admin"), OPS: Principal("*", "read")})
    service = build_alerting(FAST, ROUTING, DataDir.at(tmp_path).alerts, console=ConsoleNotifier(io.StringIO()))
    service.verdicts = VerdictStore.for_data_dir(tmp_path)
    alert = anomaly()
    service.dispatch([alert])
    server = ApiServer([lambda app: app.add_routes(aiohttp_routes(service))], "127.0.0.1", 0, auth=auth)
    server.start()
    try:
        context = PageContext(ApiClient(server.base_url), None)
        actions = AlertActions(context, Grant(Principal("*", "admin", "alice"), f"Bearer {admin}"))
        actions.feedback(alert.id, "expected")
        with pytest.raises(ApiError) as unknown:
            actions.feedback("no-such-alert", "actionable")
        with pytest.raises(ApiError) as reader:  # the page's own check
            AlertActions(context, Grant(Principal("*", "read"), f"Bearer {OPS}")).feedback(alert.id, "actionable")
        with pytest.raises(ApiError) as forged:  # past the page's check, the API's
            AlertActions(context, Grant(Principal("*", "admin"), f"Bearer {OPS}")).feedback(alert.id, "actionable")
    finally:
        server.stop()
        service.close(timeout=0.5)
    history = VerdictStore.for_data_dir(tmp_path).history(ALERT, alert.id)
    assert [(entry["verdict"], entry["by"]) for entry in history] == [("expected", "alice")]
    assert (unknown.value.status, reader.value.status, forged.value.status) == (404, 403, 403)
