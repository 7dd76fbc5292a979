"""The dashboard as a place to work, on a running ``logwarden up`` in headless Chromium with real clicks:
log search with paging, acknowledging and silencing alerts, a read-only token without actions, and
a closed tab that prints no traceback."""
from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson
import pyarrow.parquet as pq
import pytest
import requests

from logwarden.alerting.inhibit.silences import SilenceStore
from logwarden.alerting.store import AlertStore
from logwarden.dashboard.apiclient import ApiClient, ApiError
from logwarden.dashboard.alerts import AlertActions
from logwarden.dashboard.auth import Grant
from logwarden.common.auth import Principal
from logwarden.testing.cluster import free_port
from logwarden.testing.receivers import SmtpServer, self_signed
from tests.dashboard.browser import Chromium, find_chromium
from tests.dashboard.pages_helpers import (bokeh_ready, click, has_model, model_text, navigate, source_data,
                                           type_into)
from tests.e2e.cluster import StackProcess

pytestmark = pytest.mark.cluster
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN = "ops-admin-token-0123456789abcdef"
READ = "ops-read-token-0123456789abcdef"
TEAM_READ = "team-a-read-token-0123456789abcd"
TEAM_INGEST = "team-a-ingest-token-0123456789ab"
CHECKOUT = 120  # records of service checkout saying "placed"
ALERT_IDS = ("(() => { const d = Bokeh.documents[0].get_model_by_name('alerts_rows').data; "
             "return Array.from(d instanceof Map ? d.get('id') : d.id); })()")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _records() -> tuple[list[dict], list[dict]]:
    """(the operator's records, team-a's)."""
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    ours = [{"timestamp": _iso(start + timedelta(seconds=i)), "level": "INFO", "service": "checkout",
             "message": f"order {i} placed", "user_id": f"u-{i % 7}"} for i in range(CHECKOUT)]
    ours += [{"timestamp": _iso(start + timedelta(seconds=i, milliseconds=500)), "level": "ERROR",
              "service": "checkout", "message": f"order {i} failed"} for i in range(10)]
    ours += [{"timestamp": _iso(start + timedelta(seconds=200 + i)), "level": "WARNING", "service": service,
              "message": f"GET /report took {6000 + i}ms", "duration_ms": 6000.0 + i}
             for i, service in enumerate(("api-gateway", "search-svc"))]  # two slow_response alerts
    theirs = [{"timestamp": _iso(start + timedelta(seconds=i)), "level": "INFO", "service": "billing",
               "message": f"invoice {i} placed"} for i in range(7)]
    return ours, theirs


@pytest.fixture(scope="module")
def stack(tmp_path_factory, ray_head):
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    root = tmp_path_factory.mktemp("pages")
    cert, key = self_signed(root)
    smtp = SmtpServer(cert, key).start()  # the MEDIUM alerts' e-mail digest
    config = root / "logwarden.yaml"
    config.write_text(f"""
alerting:
  email: {{smtp_host: 127.0.0.1, smtp_port: {smtp.port}, username: {SmtpServer.USER},
          password: {SmtpServer.PASSWORD}, ca_file: "{cert}", from: a@example.org, to: [b@example.org]}}
auth:
  tokens:
    {ADMIN}: {{tenant: "*", role: admin}}
    {READ}: {{tenant: "*", role: read}}
    {TEAM_READ}: {{tenant: team-a, role: read}}
collector:
  tokens: {{{TEAM_INGEST}: team-a}}
""")
    process = StackProcess(root / "data", ray_head, ["--config", str(config)], ingest_token=ADMIN, read_token=READ)
    process.command.remove("--no-dashboards")
    process.dashboard_port = free_port()
    process.command += ["--dashboard-port", str(process.dashboard_port), "--dask-dashboard-port", str(free_port())]
    process.start()
    try:
        ours, theirs = _records()
        process.post(b"\n".join(orjson.dumps(r) for r in ours))
        team = requests.post(f"{process.http_url}/v1/logs", data=b"\n".join(orjson.dumps(r) for r in theirs),
                             headers={"Authorization": f"Bearer {TEAM_INGEST}"}, timeout=30)
        assert team.status_code == 200, team.text
        process.wait_for(lambda: len(_alerts(process, ADMIN)) >= 2 and _count(process, "") == len(ours) + len(theirs),
                         timeout=90, what="two slow_response alerts and every record searchable")
        process.smtp = smtp
        yield process
    finally:
        process.stop()
        smtp.stop()


def _api(stack: StackProcess, token: str, path: str, **params) -> requests.Response:
    return requests.get(f"{stack.api_url}{path}", params=params, headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def _alerts(stack: StackProcess, token: str) -> list[dict]:
    answer = _api(stack, token, "/alerts")
    return answer.json() if answer.status_code == 200 else []


def _count(stack: StackProcess, service: str) -> int:
    params = {"service": service} if service else {}
    answer = _api(stack, ADMIN, "/v1/count", since="1h", **params)
    return answer.json()["count"] if answer.status_code == 200 else -1


@pytest.fixture(scope="module")
def browser(stack):
    chromium = Chromium(find_chromium())
    try:
        yield chromium
    finally:
        chromium.close()


def dashboard_url(stack: StackProcess, path: str, **params) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"http://127.0.0.1:{stack.dashboard_port}{path}{query}"


def test_search_by_service_and_text_pages_through_the_records(stack, browser):
    async def run() -> list[dict]:
        async with aiohttp.ClientSession() as session:
            page = await browser.page(session)
            await navigate(page, dashboard_url(stack, "/search", token=ADMIN))
            await bokeh_ready(page, "search_button")
            await type_into(page, "search_service", "checkout")
            await type_into(page, "search_text", "placed")
            await click(page, "search_button", "button_el")
            pages = []
            for step in ("first", "search_next", "search_next", "search_prev"):
                if step != "first":
                    await click(page, step, "button_el")
                expected = {"first": 1, "search_next": len(pages) + 1, "search_prev": 2}[step]
                await page.wait_for(f"(Bokeh.documents[0].get_model_by_name('search_status').text || '')"
                                    f".includes('page {expected}:')")
                pages.append({**await source_data(page, "search_results"),
                              "status": await model_text(page, "search_status")})
            pages.append({"downloads": await model_text(page, "search_downloads")})
            await page.screenshot(ARTIFACTS / "dashboard-search.png")
            return pages

    pages = asyncio.run(run())
    first, second, third, back = pages[:4]
    assert f"of {CHECKOUT}" in first["status"]
    assert [len(p["record_id"]) for p in (first, second, third)] == [50, 50, 20]
    ids = first["record_id"] + second["record_id"] + third["record_id"]
    assert len(set(ids)) == CHECKOUT  # no record twice, none left out
    assert all(s == "checkout" and "placed" in m for p in (first, second, third)
               for s, m in zip(p["service"], p["message"]))
    assert sorted(first["timestamp"], reverse=True) == first["timestamp"]  # newest first
    assert back["record_id"] == second["record_id"]
    assert "export-csv" in pages[4]["downloads"] and "export-parquet" in pages[4]["downloads"]


def test_the_health_panel_and_the_banner_say_how_to_open_the_ray_dashboard(stack, browser):
    async def run() -> str:
        async with aiohttp.ClientSession() as session:
            page = await browser.page(session)
            await navigate(page, dashboard_url(stack, "/", token=ADMIN))
            await bokeh_ready(page, "health")
            await page.wait_for("(Bokeh.documents[0].get_model_by_name('health').text || '')"
                                ".includes('batches processed: <b>')")
            return await model_text(page, "health")

    health = asyncio.run(run())
    assert "batches processed: <b>n/a" not in health and "ray get-auth-token" in health
    banner = next(line for line in stack.output().splitlines() if "Ray dashboard token" in line)
    assert "ray get-auth-token" in banner and "auth_token" in banner


def test_exports_follow_the_tenant_of_the_token(stack, tmp_path):
    url = dashboard_url(stack, "/export")
    ops = requests.get(url, params={"service": "checkout", "q": "placed", "format": "csv", "since": "1h"},
                       headers={"Authorization": f"Bearer {READ}"}, timeout=30)
    assert ops.status_code == 200 and "attachment" in ops.headers["Content-Disposition"]
    assert len(ops.text.strip().splitlines()) == CHECKOUT + 1  # a header line
    parquet = requests.get(url, params={"q": "placed", "format": "parquet", "since": "1h"},
                           headers={"Authorization": f"Bearer {TEAM_READ}"}, timeout=30)
    assert parquet.status_code == 200
    (tmp_path / "team.parquet").write_bytes(parquet.content)
    table = pq.read_table(tmp_path / "team.parquet")
    assert table.num_rows == 7 and set(table.column("tenant").to_pylist()) == {"team-a"}  # never another tenant's
    assert requests.get(dashboard_url(stack, "/"), headers={"Authorization": f"Bearer {TEAM_READ}"},
                        timeout=30).status_code == 403  # the overview shows every tenant


def _row_of(stack: StackProcess, key: str) -> dict:
    return next(a for a in _alerts(stack, ADMIN) if a["key"] == key and a["rule"] == "slow_response")


def test_acknowledge_and_silence_from_the_alerts_page(stack, browser):
    acked, silenced = _row_of(stack, "api-gateway"), _row_of(stack, "search-svc")

    async def select(page, alert_id: str) -> None:
        await page.wait_for(f"{ALERT_IDS}"
                            f".includes('{alert_id}')", timeout=30)
        row = await page.evaluate(f"{ALERT_IDS}"
                                  f".indexOf('{alert_id}')")
        await click(page, "alerts_table", css=f".slick-row:nth-child({row + 1}) .slick-cell.l3")
        await page.wait_for(f"(Bokeh.documents[0].get_model_by_name('alerts_message').text || '')"
                            f".includes('selected: alert {alert_id} ')")

    async def run() -> dict:
        async with aiohttp.ClientSession() as session:
            page = await browser.page(session)
            await navigate(page, dashboard_url(stack, "/alerts", token=ADMIN))
            await bokeh_ready(page, "alert_ack")
            await select(page, str(acked["id"]))
            await click(page, "alert_ack", "button_el")
            await page.wait_for("(Bokeh.documents[0].get_model_by_name('alerts_message').text || '')"
                                ".includes('acknowledged')")
            await select(page, str(silenced["id"]))
            await click(page, "alert_silence", "button_el")
            await page.wait_for("(Bokeh.documents[0].get_model_by_name('alerts_message').text || '')"
                                ".includes('silenced')")
            await click(page, "alerts_state", css="button:nth-child(4)")  # the "silenced" tab
            await page.wait_for(f"{ALERT_IDS}"
                                f".includes('{silenced['id']}')", timeout=30)
            shown = await source_data(page, "alerts_rows")
            await page.screenshot(ARTIFACTS / "dashboard-alerts.png")
            await click(page, "alerts_table", css=".slick-row:nth-child(1) a.alert-logs")  # to its logs
            await bokeh_ready(page, "search_status")
            await page.wait_for("(Bokeh.documents[0].get_model_by_name('search_status').text || '')"
                                ".includes('page 1:')")
            return {"silenced_tab": shown, "logs": await source_data(page, "search_results"),
                    "logs_url": await page.evaluate("location.href")}

    seen = asyncio.run(run())
    after = _api(stack, ADMIN, f"/alerts/{acked['id']}").json()
    assert after["acked_at"] is not None and after["acked_by"]
    assert _api(stack, ADMIN, f"/alerts/{silenced['id']}").json()["silenced_by"] is not None
    silences = SilenceStore(AlertStore(stack.data_dir / "alerts")).list()
    assert [(s.rule, s.key) for s in silences] == [("slow_response", "search-svc")]
    assert set(seen["silenced_tab"]["state"]) == {"silenced"} and seen["silenced_tab"]["key"] == ["search-svc"]
    assert "service=search-svc" in seen["logs_url"]
    assert seen["logs"]["service"] == ["search-svc"] and "6001ms" in seen["logs"]["message"][0]


def test_a_read_only_token_gets_no_actions_and_a_forged_one_is_refused(stack, browser):
    alert = _row_of(stack, "api-gateway")

    async def run() -> tuple[bool, bool]:
        async with aiohttp.ClientSession() as session:
            page = await browser.page(session)
            await navigate(page, dashboard_url(stack, "/alerts", token=READ))
            await bokeh_ready(page, "alerts_read_only")
            return await has_model(page, "alert_ack"), await has_model(page, "alert_silence")

    assert asyncio.run(run()) == (False, False)
    for path, body in ((f"/alerts/{alert['id']}/ack", {}),
                       (f"/alerts/{alert['id']}/silence", {"duration": "1h", "reason": "forged"})):
        forged = requests.post(f"{stack.api_url}{path}", json=body, headers={"Authorization": f"Bearer {READ}"},
                               timeout=30)
        assert forged.status_code == 403, path
    actions = AlertActions(type("Context", (), {"api": ApiClient(stack.api_url)})(),
                           Grant(Principal("*", "admin", "forger"), f"Bearer {READ}"))
    with pytest.raises(ApiError) as refused:  # the page's check bypassed: the API still refuses
        actions.acknowledge(str(alert["id"]))
    assert refused.value.status == 403


def test_browsers_that_go_away_print_no_traceback(stack):
    """Tabs closed, and a browser quitting with its tabs open while the pages refresh: the server's writes
    to those sockets fail (Bokeh logged "Failed sending message as connection was closed" for each)."""
    chromium = Chromium(find_chromium())

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            for n, path in enumerate(("/", "/alerts", "/", "/search")):
                async with session.put(f"http://127.0.0.1:{chromium.port}/json/new?"
                                       f"{dashboard_url(stack, path, token=ADMIN)}") as answer:
                    target = await answer.json()
                await asyncio.sleep(1.5)
                if n % 2 == 0:  # closed; the others stay open until the browser is killed
                    async with session.get(f"http://127.0.0.1:{chromium.port}/json/close/{target['id']}"):
                        pass
            await asyncio.sleep(2.5)  # connected, refreshing

    before = len(stack.output())
    try:
        asyncio.run(run())
        chromium.process.send_signal(signal.SIGTERM)  # quits as a user closing its window would
        time.sleep(5)  # two refreshes of the overview into the dead sockets
    finally:
        chromium.close()
    after = stack.output()[before:]
    assert "Traceback" not in after and "Failed sending message" not in after, after[-3000:]


def test_stopping_sends_the_digest_that_waits(stack):
    """Last: the two MEDIUM alerts wait for the 15-minute e-mail digest; stopping sends it."""
    assert not stack.smtp.messages
    assert stack.stop() == 0
    assert [m["Subject"] for m in stack.smtp.messages] == ["[logwarden] digest: 2 alerts (2 MEDIUM)"]
    assert "logwarden: sent 1 pending digest(s) before stopping" in stack.output()
