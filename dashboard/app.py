"""The Bokeh document: log rate per service and level, error rate, p95 latency, anomalies timeline,
top and new templates, alert delivery status and pipeline health, refreshed every few seconds."""
from __future__ import annotations

import html
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bokeh.document import Document
from bokeh.layouts import column, gridplot, row
from bokeh.models import (ColumnDataSource, DataTable, DateFormatter, Div, FactorRange, NumberFormatter, OpenURL,
                          TableColumn, TapTool)
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from logwarden.dashboard.links import NAV, logs_url
from logwarden.dashboard.sources import AlertSource, LakeMetrics, PipelineHealth, Series, alert_source
from logwarden.common.paths import DataDir
from logwarden.storage.lake import Lake

log = logging.getLogger(__name__)

SEVERITY_COLORS = {"critical": "#b2182b", "high": "#ef8a62", "medium": "#f4c542", "low": "#67a9cf",
                   "info": "#999999"}
LEVEL_COLORS = {"DEBUG": "#bbbbbb", "INFO": "#4c78a8", "WARNING": "#f4c542", "ERROR": "#e45756",
                "CRITICAL": "#7b0000"}
TITLE = "logwarden"


def epoch_ms(value: datetime) -> float:
    """Milliseconds since the epoch, Bokeh's datetime axis unit."""
    return value.timestamp() * 1000.0


@dataclass
class DashboardData:
    """Everything the page shows, gathered from the sources in one go.

    Every browser session shares one snapshot, recomputed at most every ``max_age`` seconds; the
    templates (a scan of the window's records) at most every ``templates_max_age`` seconds.
    """

    data_dir: Path
    links: dict[str, str]
    window: timedelta = timedelta(hours=1)
    max_age: float = 1.0
    templates_max_age: float = 30.0
    client_ssl: ssl.SSLContext | None = None  # to read the collector's metrics over TLS
    metrics_token: str | None = None  # a read token for the collector's /metrics
    api_url: str | None = None  # the stack's API, for processing's and alerting's metrics

    def __post_init__(self) -> None:
        paths = DataDir.at(self.data_dir)
        self.metrics = LakeMetrics(Lake(paths.lake), self.window)
        self.alerts: AlertSource = alert_source(paths.alerts)
        self.health = PipelineHealth(paths, self.links, ssl_context=self.client_ssl, token=self.metrics_token,
                                     api_url=self.api_url)
        self._lock = threading.Lock()
        self._snapshot: tuple[float, dict[str, Any]] | None = None
        self._templates: tuple[float, dict[str, list], dict[str, list]] | None = None

    def snapshot(self) -> dict[str, Any]:
        """Plain data for every chart and table."""
        with self._lock:
            now = time.monotonic()
            if self._snapshot is None or now - self._snapshot[0] >= self.max_age:
                self._snapshot = (now, self._collect(now))
            return self._snapshot[1]

    def _collect(self, now: float) -> dict[str, Any]:
        rows = self.metrics.minute_table()
        by_service, by_level, errors, p95 = self.metrics.rates(rows)
        if self._templates is None or now - self._templates[0] >= self.templates_max_age:
            newest = max((r["bucket"] for r in rows), default=None)
            self._templates = (now, _columns(self.metrics.top_templates(newest),
                                             ("template_id", "template", "count", "services")),
                               _columns(self.metrics.new_templates(), ("template_id", "template", "count",
                                                                       "first_seen")))
        return {
            "rate_by_service": _lines(by_service),
            "rate_by_level": _lines(by_level, LEVEL_COLORS),
            "error_rate": _lines(errors),
            "p95": _lines(p95),
            "anomalies": _anomalies(self.alerts.recent()),
            "top_templates": self._templates[1],
            "new_templates": self._templates[2],
            "deliveries": _columns(self.alerts.delivery_status(), ("channel", "status", "count")),
            "health": self.health.check(),
        }


def _lines(series: Series, colors: dict[str, str] | None = None) -> dict[str, list]:
    names = sorted(series.lines)
    palette = {n: (colors or {}).get(n, Category10_10[i % 10]) for i, n in enumerate(names)}
    xs = [epoch_ms(x) for x in series.x]
    return {"xs": [xs for _ in names], "ys": [series.lines[n] for n in names], "name": names,
            "color": [palette[n] for n in names]}


def _anomalies(alerts: list[dict[str, Any]]) -> dict[str, list]:
    shown = [a for a in alerts if a["window_start"] is not None]
    return {
        "start": [epoch_ms(a["window_start"]) for a in shown],
        "end": [epoch_ms(a["window_end"]) for a in shown],
        "rule": [a["rule"] for a in shown],
        "severity": [a["severity"] for a in shown],
        "key": [a["key"] for a in shown],
        "value": [a["value"] if isinstance(a["value"], (int, float)) else float("nan") for a in shown],
        "status": [a["status"] for a in shown],
        "color": [SEVERITY_COLORS.get(a["severity"], "#999999") for a in shown],
        "logs": [logs_url(a["window_start"], a["window_end"], a.get("service"), a["key"], a.get("tenant"))
                 for a in shown],
    }


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list]:
    return {n: [r.get(n) for r in rows] for n in names}


def _health_html(health) -> str:
    def fmt(value: float | None, unit: str) -> str:
        return "n/a" if value is None else f"{value:,.1f} {unit}"

    accepted = "n/a" if health.collector_accepted is None else f"{health.collector_accepted:,.0f}"
    items = [f"<li>collector rate: <b id='collector-rate'>{fmt(health.collector_rate, 'records/s')}</b></li>",
             f"<li>records accepted: <b>{accepted}</b></li>",
             f"<li>spool depth: <b id='spool-depth'>{health.spool_depth}</b> batch(es)</li>"]
    for label, value in health.series:
        shown = "n/a" if value is None else f"{value:,.0f}"
        items.append(f"<li>{html.escape(label)}: <b>{shown}</b></li>")
    for name, (status, link) in health.services.items():
        anchor = (f" — <a href='{html.escape(link)}' target='_blank'>{html.escape(name)} dashboard</a>"
                  if link else "")
        note = health.notes.get(name)
        hint = f"<br><small class='hint-{html.escape(name)}'>{html.escape(note)}</small>" if note else ""
        items.append(f"<li>{html.escape(name)}: <b class='status-{html.escape(status.split()[0])}'>"
                     f"{html.escape(status)}</b>{anchor}{hint}</li>")
    return "<h3>Pipeline health</h3><ul>" + "".join(items) + "</ul>"


def _line_chart(title: str, name: str, y_label: str) -> tuple[Any, ColumnDataSource]:
    source = ColumnDataSource({"xs": [], "ys": [], "name": [], "color": []}, name=name)
    plot = figure(title=title, x_axis_type="datetime", height=260, sizing_mode="stretch_width",
                  tools="pan,wheel_zoom,box_zoom,reset,save", name=f"{name}_plot")
    plot.multi_line(xs="xs", ys="ys", line_color="color", legend_field="name", line_width=2, source=source)
    plot.yaxis.axis_label = y_label
    plot.legend.location = "top_left"
    plot.legend.label_text_font_size = "8pt"
    return plot, source


def _table(name: str, columns: list[TableColumn], height: int = 220) -> tuple[DataTable, ColumnDataSource]:
    source = ColumnDataSource({c.field: [] for c in columns}, name=name)
    return DataTable(source=source, columns=columns, height=height, sizing_mode="stretch_width",
                     index_position=None, name=f"{name}_table"), source


def build_document(doc: Document, data: DashboardData, refresh_ms: int = 2000) -> None:
    """Lay out the page on ``doc`` and refresh it every ``refresh_ms``."""
    doc.title = TITLE
    rate_service, src_service = _line_chart("Log rate per service (records/min)", "rate_by_service", "records/min")
    rate_level, src_level = _line_chart("Log rate per level (records/min)", "rate_by_level", "records/min")
    error_rate, src_errors = _line_chart("Error rate per service (ERROR + CRITICAL share)", "error_rate", "share")
    p95, src_p95 = _line_chart("p95 latency per service (ms)", "p95", "duration_ms p95")

    src_anomalies = ColumnDataSource(_anomalies([]), name="anomalies")
    timeline = figure(title="Anomalies (colour: severity)", x_axis_type="datetime", height=260,
                      sizing_mode="stretch_width", y_range=FactorRange(factors=["-"]), name="anomalies_plot",
                      tools="pan,wheel_zoom,box_zoom,reset,hover,save",
                      tooltips=[("rule", "@rule"), ("key", "@key"), ("severity", "@severity"), ("value", "@value"),
                                ("status", "@status")])
    timeline.segment(x0="start", x1="end", y0="rule", y1="rule", line_color="color", line_width=6,
                     source=src_anomalies)
    timeline.scatter(x="start", y="rule", color="color", size=10, legend_field="severity", source=src_anomalies)
    timeline.legend.location = "top_left"
    timeline.add_tools(TapTool(callback=OpenURL(url="@logs", same_tab=True)))  # an anomaly -> its logs

    top, src_top = _table("top_templates", [TableColumn(field="template_id", title="id", width=90),
                                            TableColumn(field="template", title="top templates (window)", width=420),
                                            TableColumn(field="count", title="count", width=70,
                                                        formatter=NumberFormatter(format="0,0")),
                                            TableColumn(field="services", title="services", width=60)])
    new, src_new = _table("new_templates", [TableColumn(field="template_id", title="id", width=90),
                                            TableColumn(field="template", title="new templates", width=420),
                                            TableColumn(field="count", title="count", width=70),
                                            TableColumn(field="first_seen", title="first seen", width=150,
                                                        formatter=DateFormatter(format="%Y-%m-%d %H:%M:%S"))])
    deliveries, src_deliveries = _table("deliveries", [TableColumn(field="channel", title="channel"),
                                                       TableColumn(field="status", title="alert delivery status"),
                                                       TableColumn(field="count", title="count")], height=180)
    health = Div(text="<h3>Pipeline health</h3>", name="health", sizing_mode="stretch_width")
    header = Div(text=f"<h2>{TITLE}</h2>{NAV}<p>Last {int(data.window.total_seconds() // 60)} minutes of event "
                      f"time, refreshed every {refresh_ms / 1000:g}s; click an anomaly for its logs.</p>",
                 sizing_mode="stretch_width")

    targets = {"rate_by_service": src_service, "rate_by_level": src_level, "error_rate": src_errors, "p95": src_p95,
               "top_templates": src_top, "new_templates": src_new, "deliveries": src_deliveries}

    def refresh() -> None:
        try:
            snap = data.snapshot()
        except Exception:  # a bad read must not kill the session; the next refresh tries again
            log.exception("dashboard refresh failed")
            return
        for key, source in targets.items():
            source.data = snap[key]
        rules = sorted(set(snap["anomalies"]["rule"])) or ["-"]
        if list(timeline.y_range.factors) != rules:
            timeline.y_range.factors = rules
        src_anomalies.data = snap["anomalies"]
        health.text = _health_html(snap["health"])

    refresh()
    charts = gridplot([[rate_service, rate_level], [error_rate, p95]], sizing_mode="stretch_width")
    doc.add_root(column(header, charts, timeline, row(top, new, sizing_mode="stretch_width"),
                        row(deliveries, health, sizing_mode="stretch_width"), sizing_mode="stretch_width",
                        name="page"))
    doc.add_periodic_callback(refresh, refresh_ms)
