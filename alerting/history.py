"""The alert history, read by the CLI, the HTTP handlers and the dashboard: plain dicts.

Every function takes the alerts folder (``<data-dir>/alerts``) or an open :class:`AlertStore`.

Tenants: an alert belongs to the tenant whose records raised it. ``list_alerts``, ``get_alert``,
``acknowledge``, ``counts`` and ``response_times`` take ``tenant``: None (the default) sees every
tenant, a name confines the call to that tenant's alerts. An alert of another tenant is then
indistinguishable from one that does not exist (None, or KeyError). A tenant may refer to its
incident by the dedup key it sees in its alerts (``tenant/rule:key``) or by ``rule:key`` alone.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson

from logwarden.alerting.inhibit.state import inhibited_by
from logwarden.alerting.notify.base import ACKNOWLEDGE
from logwarden.alerting.store import DEAD, PENDING, SENDING, AlertStore
from logwarden.common.tenants import DEFAULT_TENANT

_ALERT_COLUMNS = (
    "id",
    "anomaly_id",
    "dedup_key",
    "rule",
    "key",
    "tenant",
    "service",
    "severity",
    "status",
    "window_start",
    "window_end",
    "value",
    "threshold",
    "received_at",
    "silenced_by",
    "acked_at",
    "acked_by",
    "ack_note",
    "response_seconds",
    "escalations",
    "resolved_at",
)
ACK_CHANNELS = ("pagerduty",)
# the PagerDuty channels of named receivers: receivers[].pagerduty_configs -> <receiver>.pagerduty[.N]
_NAMED_ACK = " OR ".join(f"(m.channel GLOB '*.{c}' OR m.channel GLOB '*.{c}.[0-9]*')" for c in ACK_CHANNELS)


_STORES: dict[Path, AlertStore] = {}
_STORES_LOCK = threading.Lock()


def _store(where: AlertStore | Path | str) -> AlertStore:
    """``where`` itself, or the (cached) store of an alerts folder."""
    if isinstance(where, AlertStore):
        return where
    path = Path(where).expanduser().resolve()
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None or not store.path.exists():
            store = _STORES[path] = AlertStore(path)
        return store


def _alert_dict(row: Any, deliveries: list[dict] | None = None) -> dict[str, Any]:
    data = orjson.loads(row["data"])
    out = {name: row[name] for name in _ALERT_COLUMNS}
    out.update(
        channels=orjson.loads(row["channels"]),
        samples=data.get("samples", []),
        action=data.get("action", ""),
        description=data.get("description", ""),
        kind=data.get("kind", ""),
        why=(data.get("explanation") or {}).get("text", ""),  # ML alerts: the signals behind it
        actionable=data.get("actionable"),
    )
    if deliveries is not None:
        out["deliveries"] = deliveries
    return out


def _deliveries(store: AlertStore, alert_ids: list[int]) -> dict[int, list[dict]]:
    if not alert_ids:
        return {}
    result: dict[int, list[dict]] = {i: [] for i in alert_ids}
    for start in range(0, len(alert_ids), 500):
        chunk = alert_ids[start : start + 500]
        rows = store.query(
            f"SELECT ma.alert_id, m.id, m.channel, m.kind, m.state, m.attempts, m.last_error, m.result, "
            f"m.sent_at, "
            f"m.not_before FROM message_alerts ma JOIN messages m ON m.id=ma.message_id "
            f"WHERE ma.alert_id IN ({','.join('?' * len(chunk))}) ORDER BY m.id",
            chunk,
        )
        for r in rows:
            result[r["alert_id"]].append(
                {
                    "message_id": r["id"],
                    "channel": r["channel"],
                    "kind": r["kind"],
                    "state": r["state"],
                    "attempts": r["attempts"],
                    "last_error": r["last_error"],
                    "result": r["result"],
                    "sent_at": r["sent_at"],
                    "due_at": r["not_before"],
                }
            )
    return result


def list_alerts(
    where: AlertStore | Path | str,
    since: float | None = None,
    severity: str | None = None,
    rule: str | None = None,
    status: str | None = None,
    limit: int = 1000,
    with_deliveries: bool = True,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts received after ``since`` (epoch seconds), newest first, LOW included; only ``tenant``'s
    when given (None: every tenant)."""
    store = _store(where)
    clauses, params = [], []
    if tenant is not None:
        clauses.append("tenant = ?")
        params.append(tenant)
    if since is not None:
        clauses.append("received_at >= ?")
        params.append(since)
    if severity:
        clauses.append("severity = ?")
        params.append(severity.upper())
    if rule:
        clauses.append("rule = ?")
        params.append(rule)
    if status:
        clauses.append("status = ?")
        params.append(status.lower())
    where_sql = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.query(f"SELECT * FROM alerts {where_sql} ORDER BY id DESC LIMIT ?", (*params, limit))
    deliveries = _deliveries(store, [r["id"] for r in rows]) if with_deliveries else {}
    return [_alert_dict(r, deliveries.get(r["id"]) if with_deliveries else None) for r in rows]


def get_alert(
    where: AlertStore | Path | str, ref: str | int, tenant: str | None = None
) -> dict[str, Any] | None:
    """One alert by number, anomaly id or dedup key (the newest of that incident); None when there is
    none, or when ``tenant`` is given and the alert is another tenant's. ``inhibited_by`` says which
    firing alert and inhibition rule muted it (None when none did)."""
    store = _store(where)
    row = _find(store, ref, tenant)
    if row is None:
        return None
    out = _alert_dict(row, _deliveries(store, [row["id"]])[row["id"]])
    out["inhibited_by"] = inhibited_by(store, int(row["id"]))
    return out


def _find(store: AlertStore, ref: str | int, tenant: str | None = None) -> Any:
    """The alert ``ref`` refers to, among ``tenant``'s alerts only when given."""
    text = str(ref)
    scope, scope_params = ("", ()) if tenant is None else (" AND tenant=?", (tenant,))
    if text.isdigit():
        rows = store.query(f"SELECT * FROM alerts WHERE id=?{scope}", (int(text), *scope_params))
        if rows:
            return rows[0]
    keys = [text]
    if tenant is not None and tenant != DEFAULT_TENANT and not text.startswith(f"{tenant}/"):
        keys.append(f"{tenant}/{text}")  # the tenant's own ``rule:key``
    rows = store.query(
        f"SELECT * FROM alerts WHERE (anomaly_id=? OR dedup_key IN ({','.join('?' * len(keys))})){scope} "
        f"ORDER BY id DESC LIMIT 1",
        (text, *keys, *scope_params),
    )
    return rows[0] if rows else None


def acknowledge(
    where: AlertStore | Path | str,
    ref: str | int,
    by: str,
    note: str = "",
    now: float | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """Acknowledge the incident of alert ``ref``: every unresolved, unacknowledged firing alert of its
    dedup key (and tenant), recording who, when and the response time. PagerDuty (when it was paged)
    is told.

    Returns ``{"alert": …, "acknowledged": [ids], "already": bool}``; KeyError for an unknown alert, or
    when ``tenant`` is given and the alert is another tenant's.
    """
    store = _store(where)
    now = time.time() if now is None else now
    row = _find(store, ref, tenant)
    if row is None:
        raise KeyError(ref)
    with store.transaction() as db:
        targets = db.execute(
            "SELECT id, received_at, escalations FROM alerts WHERE dedup_key=? AND tenant=? "
            "AND status='firing' AND resolved_at IS NULL AND acked_at IS NULL",
            (row["dedup_key"], row["tenant"]),
        ).fetchall()
        if (
            row["status"] == "firing"
            and row["acked_at"] is None
            and row["id"] not in [t["id"] for t in targets]
        ):
            targets.append(
                db.execute(
                    "SELECT id, received_at, escalations FROM alerts WHERE id=?", (row["id"],)
                ).fetchone()
            )
        for target in targets:
            db.execute(
                "UPDATE alerts SET acked_at=?, acked_by=?, ack_note=?, response_seconds=? WHERE id=?",
                (now, by, note, max(0.0, now - target["received_at"]), target["id"]),
            )
        ids = [t["id"] for t in targets]
        if ids:
            paged = db.execute(
                f"SELECT DISTINCT m.channel FROM messages m JOIN message_alerts ma ON ma.message_id=m.id "
                f"WHERE ma.alert_id IN ({','.join('?' * len(ids))}) AND (m.channel IN "
                f"({','.join('?' * len(ACK_CHANNELS))}) OR {_NAMED_ACK})",
                (*ids, *ACK_CHANNELS),
            ).fetchall()
            escalations = max(int(t["escalations"]) for t in targets)
            for channel_row in paged:
                store.add_message(
                    db,
                    channel_row["channel"],
                    f"ack|{row['dedup_key']}",
                    ACKNOWLEDGE,
                    [max(ids)],
                    now,
                    now,
                    meta={"by": by, "escalations": escalations},
                    join=False,
                )
    return {"alert": get_alert(store, row["id"], tenant), "acknowledged": ids, "already": not ids}


def dead_letters(where: AlertStore | Path | str, limit: int = 500) -> list[dict[str, Any]]:
    """Messages given up on after their last attempt, newest first, with the alerts they carried."""
    store = _store(where)
    rows = store.query("SELECT * FROM messages WHERE state=? ORDER BY id DESC LIMIT ?", (DEAD, limit))
    out = []
    for r in rows:
        alerts = store.query(
            "SELECT a.id, a.rule, a.key, a.severity, a.status FROM alerts a JOIN message_alerts ma "
            "ON ma.alert_id=a.id WHERE ma.message_id=?",
            (r["id"],),
        )
        out.append(
            {
                "message_id": r["id"],
                "channel": r["channel"],
                "kind": r["kind"],
                "attempts": r["attempts"],
                "last_error": r["last_error"],
                "created_at": r["created_at"],
                "alerts": [dict(a) for a in alerts],
            }
        )
    return out


def redeliver(where: AlertStore | Path | str, message_id: int, now: float | None = None) -> bool:
    """Put a dead-lettered message back in the queue (attempts reset); False if it is not dead."""
    store = _store(where)
    now = time.time() if now is None else now
    with store.transaction() as db:
        return (
            db.execute(
                "UPDATE messages SET state=?, attempts=0, next_attempt_at=?, not_before=? "
                "WHERE id=? AND state=?",
                (PENDING, now, now, message_id, DEAD),
            ).rowcount
            == 1
        )


def delivery_summary(where: AlertStore | Path | str) -> dict[str, dict[str, int]]:
    """Message counts per channel and state (pending, sending, sent, dead, skipped)."""
    store = _store(where)
    summary: dict[str, dict[str, int]] = {}
    for r in store.query("SELECT channel, state, count(*) AS n FROM messages GROUP BY channel, state"):
        summary.setdefault(r["channel"], {})[r["state"]] = r["n"]
    return summary


def response_times(
    where: AlertStore | Path | str, since: float | None = None, tenant: str | None = None
) -> dict[str, Any]:
    """Acknowledgement response times (seconds) per severity: count, mean, max (of ``tenant``'s alerts
    when given)."""
    store = _store(where)
    scope, scope_params = ("", ()) if tenant is None else (" AND tenant = ?", (tenant,))
    rows = store.query(
        "SELECT severity, count(*) AS n, avg(response_seconds) AS mean, max(response_seconds) AS worst "
        f"FROM alerts WHERE response_seconds IS NOT NULL AND received_at >= ?{scope} GROUP BY severity",
        (since or 0, *scope_params),
    )
    return {r["severity"]: {"count": r["n"], "mean": r["mean"], "max": r["worst"]} for r in rows}


def counts(
    where: AlertStore | Path | str, since: float | None = None, tenant: str | None = None
) -> dict[str, dict[str, int]]:
    """Alerts per severity and status (the dashboard's overview), of ``tenant`` when given."""
    store = _store(where)
    scope, scope_params = ("", ()) if tenant is None else (" AND tenant = ?", (tenant,))
    out: dict[str, dict[str, int]] = {}
    for r in store.query(
        f"SELECT severity, status, count(*) AS n FROM alerts WHERE received_at >= ?{scope} "
        "GROUP BY severity, status",
        (since or 0, *scope_params),
    ):
        out.setdefault(r["severity"], {})[r["status"]] = r["n"]
    return out


def in_flight(where: AlertStore | Path | str) -> int:
    """Messages waiting for delivery or being delivered."""
    return _store(where).query("SELECT count(*) FROM messages WHERE state IN (?,?)", (PENDING, SENDING))[0][0]
