"""The dashboard's data: what the charts get equals what was sent."""
from __future__ import annotations

import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from logwarden.dashboard.app import DashboardData
from logwarden.dashboard.sources import OutboxSource, alert_source
from tests.dashboard.fixtures import make_data_dir


class Metrics(BaseHTTPRequestHandler):
    accepted = 100.0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/metrics":
            Metrics.accepted += 50
        body = (f'# HELP x\nlogwarden_collector_records_accepted_total{{protocol="http"}} {Metrics.accepted}\n'
                f'logwarden_collector_records_accepted_total{{protocol="tcp"}} 10.0\n').encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return


def test_snapshot_matches_the_data_sent(tmp_path):
    sent = make_data_dir(tmp_path)
    server = HTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        links = {"collector metrics": f"http://127.0.0.1:{server.server_port}/metrics",
                 "Dask dashboard": f"http://127.0.0.1:{server.server_port}/status", "Ray dashboard": "(none)"}
        data = DashboardData(tmp_path, links, max_age=0.0)
        snap = data.snapshot()
        snap2 = data.snapshot()
    finally:
        server.shutdown()
    by_service = dict(zip(snap["rate_by_service"]["name"], (sum(ys) for ys in snap["rate_by_service"]["ys"])))
    assert by_service == dict(sent["per_service"])
    by_level = dict(zip(snap["rate_by_level"]["name"], (sum(ys) for ys in snap["rate_by_level"]["ys"])))
    assert {k: v for k, v in by_level.items() if v} == dict(sent["per_level"])
    assert all(0 <= v <= 1 for ys in snap["error_rate"]["ys"] for v in ys)
    assert all(math.isnan(v) or 0 <= v <= 100 for ys in snap["p95"]["ys"] for v in ys)
    assert dict(zip(snap["top_templates"]["template_id"], snap["top_templates"]["count"])) == dict(sent["templates"])
    assert snap["new_templates"]["template_id"] == ["T1", "T0"]  # T9 is days old
    assert sorted(snap["anomalies"]["rule"]) == sorted(a["rule"] for a in sent["alerts"])
    assert set(snap["anomalies"]["severity"]) == {"high", "medium", "critical"}
    assert {(c, s) for c, s in zip(snap["deliveries"]["channel"], snap["deliveries"]["status"])} == {
        (a["channel"], a["status"]) for a in sent["alerts"]}
    health = snap2["health"]
    assert health.spool_depth == 2 and health.collector_accepted == 160.0 + 50
    assert health.collector_rate is not None and health.collector_rate > 0
    assert health.services["Dask"][0] == "up" and health.services["Ray"] == ("not running", None)


def test_outbox_is_the_source_until_the_alert_store_exists(tmp_path):
    make_data_dir(tmp_path)
    assert isinstance(alert_source(tmp_path / "alerts"), OutboxSource)
    assert DashboardData(tmp_path / "empty", {}).snapshot()["rate_by_service"]["name"] == []
