"""The durable alert store: SQLite in WAL mode at ``<data-dir>/alerts/alerts.db``.

Tables:
  ``alerts``          every anomaly received (LOW included), with its tenant, acknowledgement and
                      escalation state;
  ``messages``        the delivery outbox: one row per message to one channel (a message may carry
                      several alerts, grouped), with its attempts, next attempt and final state;
  ``message_alerts``  which alerts a message carries;
  ``silences``        who silenced which rule (and key), until when, and why.

A commit is durable (``synchronous=FULL``) before ``dispatch`` returns. The running service and
the CLI open the same file from different processes; SQLite serialises their writes.

Migrations: a database of an older version is brought up to date when opened (``_migrate``): the
``tenant`` column of ``alerts`` is added with the value ``default`` for the alerts it already holds.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import orjson

from logwarden.common.tenants import DEFAULT_TENANT

DB_NAME = "alerts.db"

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
DEAD = "dead"
SKIPPED = "skipped"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    anomaly_id TEXT NOT NULL UNIQUE,
    dedup_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    service TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT,
    value REAL,
    threshold TEXT,
    received_at REAL NOT NULL,
    channels TEXT NOT NULL,
    silenced_by INTEGER,
    data TEXT NOT NULL,
    journaled INTEGER NOT NULL DEFAULT 0,
    acked_at REAL,
    acked_by TEXT,
    ack_note TEXT,
    response_seconds REAL,
    escalations INTEGER NOT NULL DEFAULT 0,
    last_escalated_at REAL,
    resolved_at REAL,
    tenant TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS alerts_received ON alerts(received_at);
CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts(dedup_key, status);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    not_before REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    result TEXT,
    sent_at REAL,
    max_alerts INTEGER,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_due ON messages(channel, state, not_before);
CREATE INDEX IF NOT EXISTS messages_sent ON messages(channel, sent_at);
CREATE TABLE IF NOT EXISTS message_alerts (
    message_id INTEGER NOT NULL,
    alert_id INTEGER NOT NULL,
    PRIMARY KEY (message_id, alert_id)
);
CREATE INDEX IF NOT EXISTS message_alerts_alert ON message_alerts(alert_id);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    key TEXT,
    created_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    expired_at REAL,
    expired_by TEXT
);
"""


class AlertStore:
    """Thread-safe access to the alert database (one connection per thread)."""

    def __init__(self, alerts_dir: Path) -> None:
        self.alerts_dir = Path(alerts_dir)
        self.alerts_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.alerts_dir / DB_NAME
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.connection().executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a database of an older version up to date (in one transaction, so two processes
        opening it at once do not both migrate)."""
        with self.transaction() as db:
            columns = {row["name"] for row in db.execute("PRAGMA table_info(alerts)")}
            if "tenant" not in columns:
                db.execute(
                    f"ALTER TABLE alerts ADD COLUMN tenant TEXT NOT NULL DEFAULT '{DEFAULT_TENANT}'"
                )
            db.execute("CREATE INDEX IF NOT EXISTS alerts_tenant ON alerts(tenant, id)")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def transaction(self) -> "_Transaction":
        """``with store.transaction() as db:`` — BEGIN IMMEDIATE … COMMIT (ROLLBACK on error)."""
        return _Transaction(self.connection())

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Rows of a read-only statement."""
        return self.connection().execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        """Close every connection opened by this store."""
        with self._lock:
            for db in self._connections:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
        self._local = threading.local()

    # messages -------------------------------------------------------------------------------
    def add_message(
        self,
        db: sqlite3.Connection,
        channel: str,
        group_key: str,
        kind: str,
        alert_ids: list[int],
        not_before: float,
        now: float,
        meta: dict | None = None,
        max_alerts: int | None = None,
        join: bool = True,
    ) -> int:
        """Queue ``alert_ids`` for ``channel``: join the open group ``group_key`` if any, else open one.

        A group is open while it waits (pending, never attempted, ``not_before`` in the future). When a
        group with ``max_alerts`` grows past it, it is made due at once.
        """
        row = None
        if join:
            row = db.execute(
                "SELECT id, max_alerts FROM messages WHERE channel=? AND group_key=? AND kind=? AND state=? "
                "AND attempts=0 AND not_before>? ORDER BY id DESC LIMIT 1",
                (channel, group_key, kind, PENDING, now),
            ).fetchone()
        if row is None:
            cursor = db.execute(
                "INSERT INTO messages(channel, group_key, kind, state, created_at, not_before, "
                "next_attempt_at, "
                "max_alerts, meta) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    channel,
                    group_key,
                    kind,
                    PENDING,
                    now,
                    not_before,
                    not_before,
                    max_alerts,
                    orjson.dumps(meta or {}).decode(),
                ),
            )
            message_id = int(cursor.lastrowid)
        else:
            message_id = int(row["id"])
            if meta:
                old = db.execute("SELECT meta FROM messages WHERE id=?", (message_id,)).fetchone()["meta"]
                merged = {**orjson.loads(old), **meta}
                db.execute(
                    "UPDATE messages SET meta=? WHERE id=?", (orjson.dumps(merged).decode(), message_id)
                )
        db.executemany(
            "INSERT OR IGNORE INTO message_alerts(message_id, alert_id) VALUES (?,?)",
            [(message_id, alert_id) for alert_id in alert_ids],
        )
        limit = row["max_alerts"] if row is not None else max_alerts
        if limit is not None:
            size = db.execute(
                "SELECT count(*) FROM message_alerts WHERE message_id=?", (message_id,)
            ).fetchone()[0]
            if size > limit:
                db.execute(
                    "UPDATE messages SET not_before=?, next_attempt_at=? WHERE id=?", (now, now, message_id)
                )
        return message_id

    def recover(self) -> int:
        """After a crash: messages caught while sending go back to pending. Returns how many."""
        with self.transaction() as db:
            return db.execute("UPDATE messages SET state=? WHERE state=?", (PENDING, SENDING)).rowcount

    def claim(self, channel: str, now: float) -> sqlite3.Row | None:
        """Take the next due message of ``channel`` (state ``sending``), or None."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM messages WHERE channel=? AND state=? AND not_before<=? AND next_attempt_at<=? "
                "ORDER BY not_before, id LIMIT 1",
                (channel, PENDING, now, now),
            ).fetchone()
            if row is not None:
                db.execute("UPDATE messages SET state=? WHERE id=?", (SENDING, row["id"]))
            return row

    def next_due(self, channel: str) -> float | None:
        """When the next pending message of ``channel`` becomes due."""
        row = self.query(
            "SELECT min(max(not_before, next_attempt_at)) FROM messages WHERE channel=? AND state=?",
            (channel, PENDING),
        )
        return row[0][0] if row else None

    def finish(
        self,
        message_id: int,
        state: str,
        attempts: int,
        now: float,
        error: str | None = None,
        next_attempt_at: float | None = None,
        result: str | None = None,
    ) -> None:
        """Record the outcome of one attempt."""
        with self.transaction() as db:
            db.execute(
                "UPDATE messages SET state=?, attempts=?, last_error=?, result=?, sent_at=?, "
                "next_attempt_at=coalesce(?, next_attempt_at) WHERE id=?",
                (
                    state,
                    attempts,
                    error,
                    result,
                    now if state in (SENT, SKIPPED) else None,
                    next_attempt_at,
                    message_id,
                ),
            )

    def release(self, message_id: int) -> None:
        """Put a claimed message back without counting an attempt."""
        with self.transaction() as db:
            db.execute("UPDATE messages SET state=? WHERE id=? AND state=?", (PENDING, message_id, SENDING))

    def alerts_of(self, message_id: int) -> list[sqlite3.Row]:
        """The alerts a message carries, oldest first."""
        return self.query(
            "SELECT a.* FROM alerts a JOIN message_alerts m ON m.alert_id=a.id WHERE m.message_id=? "
            "ORDER BY a.id",
            (message_id,),
        )

    def sent_since(self, channel: str, since: float) -> list[float]:
        """Send times of ``channel``'s messages after ``since``, oldest first (for rate limits)."""
        return [
            r[0]
            for r in self.query(
                "SELECT sent_at FROM messages WHERE channel=? AND state=? AND sent_at>? ORDER BY sent_at",
                (channel, SENT, since),
            )
        ]

    def expedite(self, channels: Iterable[str], kinds: Iterable[str], now: float) -> int:
        """Make waiting groups of ``channels`` and ``kinds`` due now (used when closing)."""
        channels, kinds = list(channels), list(kinds)
        if not channels or not kinds:
            return 0
        with self.transaction() as db:
            return db.execute(
                # never attempted: no backoff to keep, so its next attempt is due now as well
                f"UPDATE messages SET not_before=?, next_attempt_at=? WHERE state=? AND not_before>? "
                f"AND attempts=0 AND channel IN ({','.join('?' * len(channels))}) "
                f"AND kind IN ({','.join('?' * len(kinds))})",
                (now, now, PENDING, now, *channels, *kinds),
            ).rowcount

    def outstanding(self, channels: Iterable[str], now: float) -> int:
        """Messages of ``channels`` due and not yet finished."""
        channels = list(channels)
        if not channels:
            return 0
        return self.query(
            f"SELECT count(*) FROM messages WHERE state IN (?,?) AND not_before<=? "
            f"AND channel IN ({','.join('?' * len(channels))})",
            (PENDING, SENDING, now, *channels),
        )[0][0]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


def now() -> float:
    """Wall-clock seconds since the epoch (one place to read the clock)."""
    return time.time()
