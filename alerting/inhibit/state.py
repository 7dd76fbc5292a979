"""Which alerts an inhibition rule muted, kept in the alert database (table ``inhibitions``): the
muted alert, the firing alert that muted it and the rule, so that the history can say why an alert
was not notified, and escalation and resolution skip it."""

from __future__ import annotations

import sqlite3

from logwarden.alerting.store import AlertStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS inhibitions (
    alert_id INTEGER PRIMARY KEY,
    source_alert_id INTEGER NOT NULL,
    rule TEXT NOT NULL,
    at REAL NOT NULL
);
"""
#: SQL condition: the alert ``a`` was muted by an inhibition rule.
INHIBITED = "a.id IN (SELECT alert_id FROM inhibitions)"


def ensure_schema(store: AlertStore) -> None:
    """Create the ``inhibitions`` table when missing."""
    store.connection().executescript(SCHEMA)


def record(db: sqlite3.Connection, alert_id: int, source_alert_id: int, rule: str, now: float) -> None:
    """Remember that ``source_alert_id`` muted ``alert_id`` under ``rule`` (its text)."""
    db.execute(
        "INSERT OR REPLACE INTO inhibitions(alert_id, source_alert_id, rule, at) VALUES (?,?,?,?)",
        (alert_id, source_alert_id, rule, now),
    )


def inhibited_by(store: AlertStore, alert_id: int) -> dict | None:
    """``{"source_alert_id", "rule", "at"}`` when alert ``alert_id`` was muted, else None."""
    try:
        rows = store.query("SELECT source_alert_id, rule, at FROM inhibitions WHERE alert_id=?", (alert_id,))
    except sqlite3.OperationalError:  # a database no service with inhibition rules has opened yet
        return None
    return dict(rows[0]) if rows else None


__all__ = ["INHIBITED", "ensure_schema", "inhibited_by", "record"]
