"""Silences: no notification for the alerts a set of label matchers covers, until a time, recording
who and why.

A silence holds matchers on the labels of an alert (``=``, ``!=``, ``=~``, ``!~``; see
:mod:`logwarden.alerting.dispatch.matchers`); it covers an alert every matcher holds for. The older
form, one rule and optionally one key, is the silence ``rule="R"`` (and ``key="K"``). Silenced
anomalies are still stored (and shown on the dashboard), marked with the silence.

Storage: the ``silences`` table of the alert database (its ``rule`` column holds the rule of a
rule silence, else the matchers as text) and ``silence_matchers``, one row per matcher; a silence
written before matchers existed has no rows there and is read as its rule and key.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

from logwarden.alerting.dispatch.matchers import EQUAL, Matcher, matches_all
from logwarden.alerting.store import AlertStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS silence_matchers (
    silence_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    op TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (silence_id, position)
);
"""


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
    matchers: tuple[Matcher, ...] = ()

    def active(self, now: float) -> bool:
        """Whether the silence applies at ``now``."""
        return self.expired_at is None and self.created_at <= now < self.ends_at

    def covers(self, labels: Mapping[str, str]) -> bool:
        """Whether the silence covers an alert with ``labels``."""
        return matches_all(self.matchers, labels)

    def matches(self, rule: str, key: str) -> bool:
        """Whether the silence covers an anomaly of ``rule`` and ``key`` (labels beyond those absent)."""
        return self.covers({"rule": rule, "key": key})

    def describe(self) -> str:
        """The matchers as text: ``{rule="error_spike",key="api"}``."""
        return "{" + ",".join(str(m) for m in self.matchers) + "}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with the state at the current time."""
        now = time.time()
        state = "active" if self.active(now) else "expired"
        data = asdict(self)
        data["matchers"] = [m.to_dict() for m in self.matchers]
        return {**data, "state": state}

    @classmethod
    def from_row(cls, row: sqlite3.Row, matchers: Iterable[Matcher] = ()) -> "Silence":
        """The silence of a ``silences`` row and its matchers (none: its rule and key)."""
        fields = {k: row[k] for k in row.keys()}
        found = tuple(matchers) or rule_matchers(fields["rule"], fields["key"])
        return cls(**fields, matchers=found)


def rule_matchers(rule: str, key: str | None = None) -> tuple[Matcher, ...]:
    """The matchers of the older form of silence: ``rule="R"`` (and ``key="K"``)."""
    found = [Matcher.of("rule", EQUAL, rule)]
    if key is not None:
        found.append(Matcher.of("key", EQUAL, key))
    return tuple(found)


def _columns(matchers: tuple[Matcher, ...]) -> tuple[str, str | None]:
    """The ``rule`` and ``key`` columns of a silence: its rule and key when it is a rule silence."""
    names = [m.name for m in matchers]
    plain = all(m.op == EQUAL for m in matchers) and names in (["rule"], ["rule", "key"])
    if plain:
        return matchers[0].value, (matchers[1].value if len(matchers) > 1 else None)
    return "{" + ",".join(str(m) for m in matchers) + "}", None


class SilenceStore:
    """Silences in the alert database: added, listed and expired from the CLI while the stack runs."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        store.connection().executescript(SCHEMA)

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
        return self.add_matchers(rule_matchers(rule, key), duration, created_by, reason, now=now)

    def add_matchers(
        self,
        matchers: Iterable[Matcher],
        duration: float,
        created_by: str,
        reason: str,
        now: float | None = None,
    ) -> Silence:
        """Silence the alerts every one of ``matchers`` holds for, ``duration`` seconds from now."""
        matchers = tuple(matchers)
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if all(m.matches({}) for m in matchers):
            raise ValueError("a silence must not cover every alert (its matchers all hold for empty labels)")
        if duration <= 0:
            raise ValueError("a silence needs a positive duration")
        if not reason.strip():
            raise ValueError("a silence needs a reason")
        now = time.time() if now is None else now
        rule, key = _columns(matchers)
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO silences(rule, key, created_at, ends_at, created_by, reason) VALUES (?,?,?,?,?,?)",
                (rule, key, now, now + duration, created_by, reason),
            )
            silence_id = int(cursor.lastrowid)
            db.executemany(
                "INSERT INTO silence_matchers(silence_id, position, name, op, value) VALUES (?,?,?,?,?)",
                [(silence_id, i, m.name, m.op, m.value) for i, m in enumerate(matchers)],
            )
            return self._read(db, [db.execute("SELECT * FROM silences WHERE id=?", (silence_id,)).fetchone()])[0]

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
            return self._read(db, [row])[0]

    def get(self, silence_id: int) -> Silence | None:
        """One silence, or None."""
        db = self.store.connection()
        rows = db.execute("SELECT * FROM silences WHERE id=?", (silence_id,)).fetchall()
        return self._read(db, rows)[0] if rows else None

    def list(self, include_expired: bool = False, now: float | None = None) -> list[Silence]:
        """Silences, newest first (active ones only unless ``include_expired``)."""
        now = time.time() if now is None else now
        db = self.store.connection()
        silences = self._read(db, db.execute("SELECT * FROM silences ORDER BY id DESC").fetchall())
        return silences if include_expired else [s for s in silences if s.active(now)]

    def active(self, db: sqlite3.Connection, now: float) -> list[Silence]:
        """Active silences, read inside a transaction."""
        rows = db.execute(
            "SELECT * FROM silences WHERE expired_at IS NULL AND created_at<=? AND ends_at>?", (now, now)
        ).fetchall()
        return self._read(db, rows)

    @staticmethod
    def _read(db: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Silence]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        found: dict[int, list[Matcher]] = {}
        for m in db.execute(
            f"SELECT * FROM silence_matchers WHERE silence_id IN ({','.join('?' * len(ids))}) "
            "ORDER BY silence_id, position",
            ids,
        ):
            found.setdefault(m["silence_id"], []).append(Matcher.of(m["name"], m["op"], m["value"]))
        return [Silence.from_row(r, found.get(r["id"], ())) for r in rows]


__all__ = ["Silence", "SilenceStore", "rule_matchers"]
