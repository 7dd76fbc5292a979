"""Feedback on ML anomalies: ``<data-dir>/ml/feedback.sqlite``.

Every anomaly an ML rule raises is recorded with its pattern (what makes it "the same" anomaly:
a service's template, a session's unexpected transition, a window's leading features) and the
data it was raised on. A ``false-positive`` verdict suppresses the pattern for that rule and
hands the data to the next training as normal; ``true-positive`` confirms it.

Verdicts on log lines (``actionable``, ``not_actionable``, ``expected``), given from search, go to the
verdict store (``monitoring.ml.verdicts``) through ``POST /ml/verdicts/lines``; verdicts on alerts through
alerting's ``POST /alerts/{ref}/verdict``. Both teach the actionable model (``monitoring.ml.actionable``).
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import orjson

from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.ml.actionable import line_features
from logwarden.monitoring.ml.verdicts import LINE, VerdictStore
from logwarden.monitoring.ml.sqlite_store import SqliteStore

log = logging.getLogger(__name__)

FALSE_POSITIVE = "false-positive"
TRUE_POSITIVE = "true-positive"
VERDICTS = (FALSE_POSITIVE, TRUE_POSITIVE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ml_anomalies (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, model TEXT NOT NULL, key TEXT NOT NULL,
    pattern TEXT NOT NULL, score REAL, confidence REAL, created_at REAL NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ml_anomalies_rule_pattern ON ml_anomalies (rule, pattern);
CREATE TABLE IF NOT EXISTS ml_feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, anomaly_id TEXT NOT NULL REFERENCES ml_anomalies (id),
    verdict TEXT NOT NULL, by TEXT NOT NULL, note TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ml_feedback_anomaly ON ml_feedback (anomaly_id);
"""


def feedback_path(data_dir: str | Path) -> Path:
    """The feedback database of a data directory."""
    return FeedbackStore.path_in(data_dir)


class FeedbackStore(SqliteStore):
    """The feedback database (``<data-dir>/ml/feedback.sqlite``)."""

    schema = _SCHEMA
    file_name = "feedback.sqlite"

    def record(self, anomaly_id: str, rule: str, model: str, key: str, pattern: str, score: float,
               confidence: float, payload: dict[str, Any]) -> None:
        """Store an anomaly raised by an ML rule (a repeated id is ignored)."""
        with self._connect() as con:
            con.execute("INSERT OR IGNORE INTO ml_anomalies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (anomaly_id, rule, model, key, pattern, float(score), float(confidence), time.time(),
                         orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY).decode()))

    def set_feedback(self, anomaly_id: str, verdict: str, by: str, note: str = "") -> dict[str, Any]:
        """Record a verdict on a stored anomaly; the anomaly with its feedback. KeyError if unknown."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        with self._connect() as con:
            if con.execute("SELECT 1 FROM ml_anomalies WHERE id = ?", (anomaly_id,)).fetchone() is None:
                raise KeyError(anomaly_id)
            con.execute("INSERT INTO ml_feedback (anomaly_id, verdict, by, note, at) VALUES (?, ?, ?, ?, ?)",
                        (anomaly_id, verdict, by, note, time.time()))
        log.info("feedback %s on ML anomaly %s by %s", verdict, anomaly_id, by)
        return self.get(anomaly_id)

    def get(self, anomaly_id: str) -> dict[str, Any] | None:
        """A stored anomaly with its feedback history and current verdict, or None."""
        with self._connect() as con:
            row = con.execute("SELECT id, rule, model, key, pattern, score, confidence, created_at, payload "
                              "FROM ml_anomalies WHERE id = ?", (anomaly_id,)).fetchone()
            if row is None:
                return None
            history = con.execute("SELECT verdict, by, note, at FROM ml_feedback WHERE anomaly_id = ? "
                                  "ORDER BY seq", (anomaly_id,)).fetchall()
        names = ("id", "rule", "model", "key", "pattern", "score", "confidence", "created_at")
        result: dict[str, Any] = dict(zip(names, row[:-1]))
        result["payload"] = orjson.loads(row[-1])
        result["feedback"] = [dict(zip(("verdict", "by", "note", "at"), h)) for h in history]
        result["verdict"] = history[-1][0] if history else None
        return result

    def _latest(self, rule: str, verdict: str) -> list[tuple[str, str]]:
        with self._connect() as con:
            return con.execute(
                "SELECT a.pattern, a.payload FROM ml_anomalies a JOIN ml_feedback f ON f.anomaly_id = a.id "
                "WHERE a.rule = ? AND f.seq = (SELECT MAX(seq) FROM ml_feedback WHERE anomaly_id = a.id) "
                "AND f.verdict = ?", (rule, verdict)).fetchall()

    def suppressed_patterns(self, rule: str) -> set[str]:
        """Patterns of ``rule`` whose anomalies were last judged false positives."""
        return {pattern for pattern, _ in self._latest(rule, FALSE_POSITIVE)}

    def flagged_payloads(self, rule: str) -> list[dict[str, Any]]:
        """The data of ``rule``'s anomalies not judged false positives (kept out of the next training)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT a.payload FROM ml_anomalies a WHERE a.rule = ? AND COALESCE((SELECT f.verdict FROM "
                "ml_feedback f WHERE f.anomaly_id = a.id ORDER BY f.seq DESC LIMIT 1), '') != ?",
                (rule, FALSE_POSITIVE)).fetchall()
        return [orjson.loads(payload) for (payload,) in rows]

    def false_positive_payloads(self, rule: str) -> list[dict[str, Any]]:
        """The data of ``rule``'s false positives, for the next training (as normal examples)."""
        return [orjson.loads(payload) for _, payload in self._latest(rule, FALSE_POSITIVE)]


def handle_feedback(store: FeedbackStore, anomaly_id: str, body: dict[str, Any]) -> tuple[int, dict]:
    """Framework-free handler: record ``body['verdict']`` (by ``body['by']``, ``body['note']``)."""
    verdict = str(body.get("verdict") or "")
    try:
        result = store.set_feedback(anomaly_id, verdict, str(body.get("by") or "http"),
                                    str(body.get("note") or ""))
    except KeyError:
        return 404, {"error": f"no ML anomaly {anomaly_id}"}
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return 200, result


def line_ref(record: dict[str, Any]) -> str:
    """What identifies a log line among verdicts: its ``id`` when it has one, else a digest of its time,
    service and message."""
    if record.get("id"):
        return str(record["id"])
    text = "\x1f".join(str(record.get(name) or "") for name in ("timestamp", "service", "message"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def handle_line_verdict(store: VerdictStore, body: dict[str, Any], tenant: str | None = None) -> tuple[int, dict]:
    """Framework-free handler: record ``body["verdict"]`` on the log line ``body["record"]`` (a record as
    search returns it: ``service``, ``level``, ``message``, ``template``…), by ``body["by"]``, with
    ``body["note"]``. ``tenant``: the principal's tenant (None: every tenant, then the record's own)."""
    record = body.get("record")
    if not isinstance(record, dict) or not str(record.get("message") or "").strip():
        return 400, {"error": "record must be a JSON object with a message (a log line as search returns it)"}
    owner = tenant or str(record.get("tenant") or DEFAULT_TENANT)
    try:
        stored = store.add(LINE, line_ref(record), str(body.get("verdict") or ""), line_features(record),
                           str(body.get("by") or "http"), str(body.get("note") or ""), owner)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return 200, stored


def feedback_routes(data_dir: str | Path, prefix: str = "/ml/anomalies") -> list:
    """aiohttp routes: ``POST {prefix}/{id}/feedback`` (JSON ``{"verdict", "by", "note"}``) and
    ``GET {prefix}/{id}`` (the anomaly with its feedback). Mount with ``app.add_routes(...)`` on an
    application behind :func:`logwarden.common.http.protect`: both need role admin of every tenant
    (tenant ``"*"``), since the ML anomalies and the models that learn from the verdicts are not
    per tenant. Also ``POST /ml/verdicts/lines`` (JSON ``{"verdict", "record", "by", "note"}``, role
    admin of the line's tenant): a verdict on a log line, for the actionable model of that tenant."""
    from aiohttp import web

    from logwarden.common.auth import ADMIN
    from logwarden.common.http import principal, requires

    store = FeedbackStore.for_data_dir(data_dir)
    verdicts = VerdictStore.for_data_dir(data_dir)

    @requires(ADMIN, all_tenants=True)
    async def post(request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        for name in ("verdict", "by", "note"):
            if name in request.query:
                body.setdefault(name, request.query[name])
        status, out = handle_feedback(store, request.match_info["id"], body)
        return web.json_response(out, status=status)

    @requires(ADMIN, all_tenants=True)
    async def get(request: web.Request) -> web.Response:
        found = store.get(request.match_info["id"])
        if found is None:
            return web.json_response({"error": f"no ML anomaly {request.match_info['id']}"}, status=404)
        return web.json_response(found)

    @requires(ADMIN)
    async def line_verdict(request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        status, out = handle_line_verdict(verdicts, body, principal(request).tenant_filter)
        return web.json_response(out, status=status)

    return [web.post(prefix + "/{id}/feedback", post), web.get(prefix + "/{id}", get),
            web.post("/ml/verdicts/lines", line_verdict)]
