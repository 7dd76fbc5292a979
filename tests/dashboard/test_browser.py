"""The dashboard in a real browser: headless Chromium loads the page and the charts hold the data sent."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from logwarden import dashboard
from tests.dashboard.browser import Chromium, find_chromium
from tests.dashboard.fixtures import make_data_dir

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

SOURCE_DATA = """
(() => {
  const doc = Bokeh.documents[0];
  const out = {};
  for (const name of %s) {
    const src = doc.get_model_by_name(name);
    if (!src) return null;
    const data = src.data instanceof Map ? Object.fromEntries(src.data) : src.data;
    out[name] = {};
    for (const [k, v] of Object.entries(data))
      out[name][k] = Array.from(v, x => ArrayBuffer.isView(x) ? Array.from(x) : x);
  }
  out.health = doc.get_model_by_name('health').text;
  return out;
})()
"""
NAMES = ["rate_by_service", "rate_by_level", "error_rate", "p95", "anomalies", "top_templates", "new_templates",
         "deliveries"]


def test_dashboard_page_shows_the_data_sent(tmp_path):
    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver); browser test skipped")
    sent = make_data_dir(tmp_path / "data")
    handle = dashboard.serve(0, tmp_path / "data", {"Dask dashboard": "http://127.0.0.1:9/status",
                                                    "Ray dashboard": "http://127.0.0.1:9/"}, refresh_ms=1000)
    browser = Chromium(binary)
    try:
        data = asyncio.run(_load(browser, handle.url))
    finally:
        browser.close()
        handle.stop()
    service_totals = {n: sum(ys) for n, ys in zip(data["rate_by_service"]["name"], data["rate_by_service"]["ys"])}
    assert service_totals == dict(sent["per_service"])
    level_totals = {n: sum(ys) for n, ys in zip(data["rate_by_level"]["name"], data["rate_by_level"]["ys"]) if sum(ys)}
    assert level_totals == dict(sent["per_level"])
    assert sorted(data["anomalies"]["rule"]) == sorted(a["rule"] for a in sent["alerts"])
    colours = dict(zip(data["anomalies"]["severity"], data["anomalies"]["color"]))
    assert len(set(colours.values())) == 3  # one colour per severity
    assert dict(zip(data["top_templates"]["template_id"], data["top_templates"]["count"])) == dict(sent["templates"])
    assert data["new_templates"]["template_id"] == ["T1", "T0"]
    assert sorted(data["deliveries"]["channel"]) == sorted(a["channel"] for a in sent["alerts"])
    assert "spool-depth'>2<" in data["health"] and "Dask dashboard" in data["health"]
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


async def _load(browser: Chromium, url: str) -> dict:
    async with aiohttp.ClientSession() as session:
        page = await browser.page(session)
        await page.call("Page.enable")
        await page.call("Page.navigate", url=url)
        await page.wait_for("typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0 && "
                            "Bokeh.documents[0].get_model_by_name('rate_by_service') !== null")
        data = await page.wait_for(SOURCE_DATA % json.dumps(NAMES))
        await asyncio.sleep(1.5)  # let the canvases paint
        await page.screenshot(ARTIFACTS / "dashboard.png")
        await page.socket.close()
        return data
