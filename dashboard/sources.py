"""Where the dashboard's numbers come from: the lake, the alert store (or outbox), the running pipeline.

Each source is a small class with plain-data methods, so the Bokeh app does not care
where a number comes from and a source can be switched (e.g. the alert outbox for
``alerting.history``) without touching the charts.
"""
from __future__ import annotations

import importlib.util
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow.parquet as pq

from logwarden.common.paths import DataDir
from logwarden.storage.lake import Lake
from logwarden.storage.search import arrow_table, connect_locked

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "high", "medium", "low", "info")


def to_datetime(value: Any) -> datetime | None:
    """A UTC datetime from an ISO string, epoch seconds, epoch microseconds or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        seconds = value / 1e6 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass
class Series:
    """Per-minute values of several named lines (``x`` shared)."""

    x: list[datetime] = field(default_factory=list)
    lines: dict[str, list[float]] = field(default_factory=dict)


class LakeMetrics:
    """Log rate, error rate and p95 latency from the lake's per-minute aggregates; templates from the records."""

    def __init__(self, lake: Lake, window: timedelta = timedelta(hours=1)) -> None:
        self.lake = lake
        self.window = window

    def _aggregate_files(self) -> list[str]:
        dates = [d for d, _ in self.lake.date_folders(self.lake.aggregates)]
        if not dates:
            return []
        last = dates[-1]
        first = (datetime.combine(last, datetime.min.time()) - self.window).date()
        return [str(p) for p in self.lake.aggregate_files(first, last)]

    def minute_table(self) -> list[dict[str, Any]]:
        """Per service and minute of the window ending at the newest minute: count, per-level counts, p95.

        Aggregates are per batch, so a minute spread over several batches has several rows: counts add
        up exactly; the p95 shown is the largest of the batches' p95s (an upper bound)."""
        files = self._aggregate_files()
        if not files:
            return []
        con = connect_locked(self.lake)
        try:
            sql = ("WITH a AS (SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)), "
                   "newest AS (SELECT max(bucket) AS b FROM a) "
                   "SELECT service, bucket, sum(count) AS count, sum(count_debug) AS debug, sum(count_info) AS info, "
                   "sum(count_warning) AS warning, sum(count_error) AS error, sum(count_critical) AS critical, "
                   "max(duration_p95) AS p95 FROM a, newest WHERE bucket > newest.b - to_seconds(?) "
                   "GROUP BY service, bucket ORDER BY bucket, service")
            return arrow_table(con, sql, [files, self.window.total_seconds()]).to_pylist()
        finally:
            con.close()

    @staticmethod
    def _series(rows: list[dict[str, Any]], key: str, value) -> Series:
        minutes = sorted({r["bucket"] for r in rows})
        index = {m: i for i, m in enumerate(minutes)}
        series = Series(x=minutes)
        for r in rows:
            for name, number in value(r):
                line = series.lines.setdefault(name, [0.0] * len(minutes))
                line[index[r["bucket"]]] += number if number is not None else 0.0
        return series

    def rates(self, rows: list[dict[str, Any]]) -> tuple[Series, Series, Series, Series]:
        """(records/min per service, records/min per level, error rate per service, p95 ms per service)."""
        by_service = self._series(rows, "service", lambda r: [(r["service"], float(r["count"]))])
        by_level = self._series(rows, "level", lambda r: [(lv.upper(), float(r[lv] or 0)) for lv in
                                                          ("debug", "info", "warning", "error", "critical")])
        errors = self._series(rows, "service", lambda r: [(r["service"], (float(r["error"] or 0) + float(
            r["critical"] or 0)) / float(r["count"]) if r["count"] else 0.0)])
        p95 = self._series(rows, "service", lambda r: [(r["service"], float(r["p95"]) if r["p95"] is not None
                                                        else float("nan"))])
        return by_service, by_level, errors, p95

    def top_templates(self, newest: datetime | None, limit: int = 10) -> list[dict[str, Any]]:
        """The most frequent templates of the records in the window ending at ``newest`` (the newest
        aggregate minute; None: no data), empty before template mining."""
        if newest is None:
            return []
        files = [str(p) for p in self.lake.log_files((newest - self.window).date(), newest.date())]
        if not files:
            return []
        con = connect_locked(self.lake)
        try:
            columns = {r[0] for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)",
                [files]).fetchall()}
            if not {"template_id", "template"} <= columns:
                return []
            sql = ("SELECT template_id, any_value(template) AS template, count(*) AS count, "
                   "count(DISTINCT service) AS services FROM read_parquet(?, union_by_name = true, "
                   "hive_partitioning = false) WHERE template_id IS NOT NULL AND \"timestamp\" > ? "
                   "GROUP BY template_id ORDER BY count DESC, template_id LIMIT ?")
            return arrow_table(con, sql, [files, newest - self.window, limit]).to_pylist()
        finally:
            con.close()

    def new_templates(self, limit: int = 10, now: float | None = None) -> list[dict[str, Any]]:
        """Templates first seen within the window, newest first (from the template store's table)."""
        path = self.lake.root / "templates" / "templates.parquet"
        if not path.is_file():
            return []
        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, ValueError) as exc:
            log.debug("templates table unreadable: %s", exc)
            return []
        horizon = (now or time.time()) - self.window.total_seconds()
        fresh = [r for r in rows if (r.get("first_seen") or 0) >= horizon]
        fresh.sort(key=lambda r: r.get("first_seen") or 0, reverse=True)
        return [{"template_id": r["template_id"], "template": r["template"], "count": r.get("count") or 0,
                 "first_seen": to_datetime(r.get("first_seen"))} for r in fresh[:limit]]


class AlertSource(Protocol):
    """Anomalies/alerts for the timeline and the delivery status table."""

    def recent(self, limit: int = 500) -> list[dict[str, Any]]:
        """Recent alerts: rule, severity (lower case), key, window_start, window_end, value, status."""

    def delivery_status(self) -> list[dict[str, Any]]:
        """Rows of channel, status, count."""


class OutboxSource:
    """Alerts from ``<data-dir>/alerts/outbox.jsonl`` (one routed alert per line)."""

    def __init__(self, path: Path, tail_bytes: int = 4 * 1024 * 1024) -> None:
        self.path = path
        self.tail_bytes = tail_bytes

    def _entries(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with open(self.path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - self.tail_bytes))
            data = handle.read()
        lines = data.splitlines()
        if size > self.tail_bytes and lines:
            lines = lines[1:]  # the first line may be cut
        entries = []
        for line in lines:
            try:
                entries.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return entries

    def recent(self, limit: int = 500) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts, one per (rule, key, tenant, window) whatever the channels."""
        seen: dict[tuple, dict[str, Any]] = {}
        for entry in self._entries():
            ident = (entry.get("rule"), entry.get("key"), entry.get("tenant"), entry.get("window_start"),
                     entry.get("status"))
            seen[ident] = _normalized(entry)
        return list(seen.values())[-limit:]

    def delivery_status(self) -> list[dict[str, Any]]:
        """Alerts routed per channel and alert status."""
        counts = Counter((str(e.get("channel") or "-"), str(e.get("status") or "-")) for e in self._entries())
        return [{"channel": c, "status": s, "count": n} for (c, s), n in sorted(counts.items())]


class HistorySource:
    """Alerts from the alert store (``alerting.history``, SQLite under ``<data-dir>/alerts``)."""

    def __init__(self, alerts_dir: Path) -> None:
        self.alerts_dir = alerts_dir

    def recent(self, limit: int = 500) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts."""
        from logwarden.alerting import history

        return [_normalized(a) for a in history.list_alerts(self.alerts_dir, limit=limit)]

    def delivery_status(self) -> list[dict[str, Any]]:
        """Messages per channel and delivery state."""
        from logwarden.alerting import history

        summary = history.delivery_summary(self.alerts_dir)
        return [{"channel": c, "status": s, "count": n} for c, states in sorted(summary.items())
                for s, n in sorted(states.items())]


def _normalized(entry: dict[str, Any]) -> dict[str, Any]:
    start = to_datetime(entry.get("window_start"))
    return {"rule": str(entry.get("rule") or "-"), "severity": str(entry.get("severity") or "info").lower(),
            "key": str(entry.get("key") or ""), "window_start": start,
            "window_end": to_datetime(entry.get("window_end")) or start,
            "value": entry.get("value"), "status": str(entry.get("status") or ""),
            "service": entry.get("service"), "tenant": entry.get("tenant")}


def alert_source(alerts_dir: Path) -> AlertSource:
    """The alert store when it exists and ``alerting.history`` is importable, else the outbox."""
    if (alerts_dir / "alerts.db").is_file():
        if importlib.util.find_spec("logwarden.alerting.history") is not None:
            return HistorySource(alerts_dir)
        log.info("alerting.history not available; reading the outbox")
    return OutboxSource(alerts_dir / "outbox.jsonl")


# (label, source, metric family): the series the health panel shows, read from the /metrics of the
# collector, of the API (processing) and of alerting. A series not (yet) exported shows "n/a".
HEALTH_SERIES = (
    ("records rejected", "collector", "logwarden_collector_records_rejected"),
    ("collector spool depth", "collector", "logwarden_collector_spool_depth"),
    ("requests throttled", "collector", "logwarden_collector_throttled"),
    ("write-ahead log errors", "collector", "logwarden_collector_wal_errors"),
    ("batches processed", "api", "logwarden_processing_batches"),
    ("records processed", "api", "logwarden_processing_records"),
    ("records dead-lettered in processing", "api", "logwarden_processing_records_dead_lettered"),
    ("quarantined batches", "api", "logwarden_spool_quarantined_batches"),
    ("alert messages", "alerting", "logwarden_alert_messages"),
    ("alert deliveries given up", "alerting", "logwarden_alert_dead_letters"),
    ("alert channels with an open circuit", "alerting", "logwarden_alert_circuit_open"),
    ("silenced alerts", "alerting", "logwarden_alerts_silenced"),
)
METRICS_PATHS = {"api": "/metrics", "alerting": "/alerts/metrics"}


def metric_totals(text: str) -> dict[str, float]:
    """The sum of every family's samples in a Prometheus text exposition (a counter's ``_total`` samples
    under the family name; histograms and summaries by their ``_count``), by family name."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                if name.endswith(("_sum", "_bucket", "_created", "_gsum", "_gcount")):
                    continue
                if name.endswith(("_total", "_count")):
                    name = name[:-6]
                totals[name] = totals.get(name, 0.0) + float(sample.value)
    except ValueError as exc:  # a malformed exposition: what was read so far
        log.debug("metrics unreadable: %s", exc)
    return totals


@dataclass
class Health:
    """One look at the running pipeline."""

    collector_rate: float | None
    collector_accepted: float | None
    spool_depth: int
    services: dict[str, tuple[str, str | None]]  # name -> (status, link)
    series: list[tuple[str, float | None]] = field(default_factory=list)  # (label, value; None: not exported)
    notes: dict[str, str] = field(default_factory=dict)  # service name -> a hint (how to open it)


class PipelineHealth:
    """Collector rate (from its /metrics), spool depth, and whether the Dask and Ray dashboards answer."""

    LINK_KEYS = {"Dask": ("Dask dashboard", "dask"), "Ray": ("Ray dashboard", "ray")}
    METRICS_KEYS = ("collector metrics", "metrics")

    NOTE_KEYS = {"Ray": "Ray dashboard token"}

    def __init__(self, paths: DataDir, links: dict[str, str], timeout: float = 1.0,
                 ssl_context: ssl.SSLContext | None = None, token: str | None = None,
                 api_url: str | None = None) -> None:
        self.paths = paths
        self.links = {k: v for k, v in links.items() if isinstance(v, str) and v.startswith("http")}
        self.notes = {name: links[key] for name, key in self.NOTE_KEYS.items() if links.get(key)}
        self.api_url = api_url.rstrip("/") if api_url else None
        self.timeout = timeout
        self.ssl_context = ssl_context  # trusts the collector's certificate (https metrics)
        self.token = token  # a read token for the collector's /metrics, when tokens are configured
        self._last: tuple[float, float] | None = None

    def _link(self, names: tuple[str, ...]) -> str | None:
        return next((self.links[n] for n in names if n in self.links), None)

    def _scrape(self, url: str | None) -> str | None:
        """The text of a /metrics page; None when there is none or it does not answer. Several URLs
        separated by ", " (one per collector of ``up --collectors N``): the pages that answer, one after the
        other (their counters then add up)."""
        if url is None:
            return None
        if ", " in url:
            texts = [text for text in map(self._scrape, url.split(", ")) if text is not None]
            return "\n".join(texts) if texts else None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout,
                                        context=self.ssl_context) as answer:
                return answer.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError):
            return None

    def _accepted(self, text: str | None = None) -> float | None:
        text = self._scrape(self._link(self.METRICS_KEYS)) if text is None else text
        if text is None:
            return None
        prefix = "logwarden_collector_records_accepted_total"
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(prefix) and not line.startswith("#"))

    def _series(self, collector_text: str | None) -> list[tuple[str, float | None]]:
        texts = {"collector": collector_text}
        for source, path in METRICS_PATHS.items():
            texts[source] = self._scrape(f"{self.api_url}{path}" if self.api_url else None)
        totals = {source: metric_totals(text) if text else {} for source, text in texts.items()}
        return [(label, totals[source].get(family)) for label, source, family in HEALTH_SERIES]

    def _status(self, url: str | None) -> str:
        if url is None:
            return "not running"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                return "up" if answer.status < 500 else f"error {answer.status}"
        except urllib.error.HTTPError as exc:
            return "up" if exc.code < 500 else f"error {exc.code}"
        except (urllib.error.URLError, OSError):
            return "down"

    def check(self) -> Health:
        """Poll everything once; the collector rate is the accepted-records rate since the previous poll."""
        collector_text = self._scrape(self._link(self.METRICS_KEYS))
        accepted = self._accepted(collector_text) if collector_text is not None else None
        now = time.monotonic()
        rate = None
        if accepted is not None and self._last is not None and now > self._last[0]:
            rate = max(0.0, (accepted - self._last[1]) / (now - self._last[0]))
        if accepted is not None:
            self._last = (now, accepted)
        spool = self.paths.spool
        depth = sum(1 for _ in spool.glob("*.parquet")) if spool.is_dir() else 0
        services = {}
        for name, keys in self.LINK_KEYS.items():
            link = self._link(keys)
            services[name] = (self._status(link), link)
        return Health(rate, accepted, depth, services, self._series(collector_text), dict(self.notes))
