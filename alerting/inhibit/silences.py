"""Silences: no notification for a rule (and optionally one key) until a time, recording who and why.

Silenced anomalies are still stored (and shown on the dashboard), marked with the silence.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from logwarden.alerting.store import AlertStore


@dataclass(frozen=True)
class Silence:
    """One silence."""

    id: int
    rule: str
    key: str | None
    created_at: float
    ends_at: float
    created_by: str
    reason: str
    expired_at: float | None = None
    expired_by: str | None = None

    def active(self, now: float) -> bool:
        """Whether the silence applies at ``now``."""
        return self.expired_at is None and self.created_at <= now < self.ends_at

    def matches(self, rule: str, key: str) -> bool:
        """Whether the silence covers an anomaly of ``rule`` and ``key``."""
        return self.rule == rule and (self.key is None or self.key == key)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with the state at the current time."""
        now = time.time()
        state = "active" if self.active(now) else "expired"
        return {**asdict(self), "state": state}

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Silence":
        """The silence of a ``silences`` row."""
        return cls(**{k: row[k] for k in row.keys()})


class SilenceStore:
    """Silences in the alert database: added, listed and expired from the CLI while the stack runs."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def add(
        self,
        rule: str,
        duration: float,
        created_by: str,
        reason: str,
        key: str | None = None,
        now: float | None = None,
    ) -> Silence:
        """Silence ``rule`` (and ``key``) for ``duration`` seconds from now."""
        if duration <= 0:
            raise ValueError("a silence needs a positive duration")
        if not reason.strip():
            raise ValueError("a silence needs a reason")
        now = time.time() if now is None else now
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO silences(rule, key, created_at, ends_at, created_by, reason) "
                "VALUES (?,?,?,?,?,?)",
                (rule, key, now, now + duration, created_by, reason),
            )
            row = db.execute("SELECT * FROM silences WHERE id=?", (cursor.lastrowid,)).fetchone()
        return Silence.from_row(row)

    def expire(self, silence_id: int, expired_by: str, now: float | None = None) -> Silence:
        """End a silence now; KeyError when there is no such silence, ValueError when already ended."""
        now = time.time() if now is None else now
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM silences WHERE id=?", (silence_id,)).fetchone()
            if row is None:
                raise KeyError(silence_id)
            if not Silence.from_row(row).active(now):
                raise ValueError(f"silence {silence_id} has already ended")
            db.execute(
                "UPDATE silences SET expired_at=?, expired_by=? WHERE id=?", (now, expired_by, silence_id)
            )
            row = db.execute("SELECT * FROM silences WHERE id=?", (silence_id,)).fetchone()
        return Silence.from_row(row)

    def list(self, include_expired: bool = False, now: float | None = None) -> list[Silence]:
        """Silences, newest first (active ones only unless ``include_expired``)."""
        now = time.time() if now is None else now
        silences = [Silence.from_row(r) for r in self.store.query("SELECT * FROM silences ORDER BY id DESC")]
        return silences if include_expired else [s for s in silences if s.active(now)]

    def active(self, db: sqlite3.Connection, now: float) -> list[Silence]:
        """Active silences, read inside a transaction."""
        rows = db.execute(
            "SELECT * FROM silences WHERE expired_at IS NULL AND created_at<=? AND ends_at>?", (now, now)
        ).fetchall()
        return [Silence.from_row(r) for r in rows]
