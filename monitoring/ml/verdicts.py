"""Operators' verdicts on alerts and log lines: ``<data-dir>/ml/verdicts.sqlite``.

A verdict says whether something was worth a page: ``actionable``, ``not_actionable`` or
``expected`` (known or planned: no action needed either). Each is stored with its tenant, what it
is about (an ``alert`` by id, or a log ``line`` from search) and the features the actionable model
learns from (``monitoring.ml.actionable``), so the training never has to find the alert again.
The last verdict on a subject counts; older ones stay as history.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.ml.sqlite_store import SqliteStore

ACTIONABLE = "actionable"
NOT_ACTIONABLE = "not_actionable"
EXPECTED = "expected"
VERDICTS = (ACTIONABLE, NOT_ACTIONABLE, EXPECTED)
#: Other spellings accepted for the three verdicts (the older ML feedback words included).
ALIASES = {"not-actionable": NOT_ACTIONABLE, "false-positive": NOT_ACTIONABLE, "true-positive": ACTIONABLE}
ALERT = "alert"
LINE = "line"
SUBJECTS = (ALERT, LINE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, subject TEXT NOT NULL, ref TEXT NOT NULL,
    verdict TEXT NOT NULL, by TEXT NOT NULL, note TEXT NOT NULL, at REAL NOT NULL, features TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_subject ON verdicts (tenant, subject, ref);
"""


def normalize_verdict(text: str) -> str:
    """The verdict named by ``text`` (an alias maps to its verdict); ValueError when it names none."""
    word = str(text or "").strip().lower()
    word = ALIASES.get(word, word)
    if word not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)} (or {', '.join(ALIASES)}), "
                         f"not {text!r}")
    return word


def is_actionable(verdict: str) -> bool:
    """The training label of a verdict: only ``actionable`` is worth a page."""
    return verdict == ACTIONABLE


def verdicts_path(data_dir: str | Path) -> Path:
    """The verdict database of a data directory."""
    return VerdictStore.path_in(data_dir)


class VerdictStore(SqliteStore):
    """The verdict database (``<data-dir>/ml/verdicts.sqlite``)."""

    schema = _SCHEMA
    file_name = "verdicts.sqlite"

    def add(self, subject: str, ref: str, verdict: str, features: dict[str, Any], by: str, note: str = "",
            tenant: str | None = None) -> dict[str, Any]:
        """Record a verdict on ``subject`` (``alert`` or ``line``) ``ref`` of ``tenant``; the stored row.
        ValueError for an unknown verdict or subject."""
        if subject not in SUBJECTS:
            raise ValueError(f"subject must be one of {', '.join(SUBJECTS)}, not {subject!r}")
        row = {"tenant": tenant or DEFAULT_TENANT, "subject": subject, "ref": str(ref),
               "verdict": normalize_verdict(verdict), "by": by, "note": note, "at": time.time()}
        with self._connect() as con:
            cursor = con.execute(
                "INSERT INTO verdicts (tenant, subject, ref, verdict, by, note, at, features) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*row.values(), orjson.dumps(features, option=orjson.OPT_SERIALIZE_NUMPY).decode()))
        return {"seq": cursor.lastrowid, **row}

    def examples(self, tenant: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """(features, verdict) of the latest verdict on every subject of ``tenant``, oldest first."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT v.features, v.verdict FROM verdicts v WHERE v.tenant = ? AND v.seq = "
                "(SELECT MAX(seq) FROM verdicts w WHERE w.tenant = v.tenant AND w.subject = v.subject "
                "AND w.ref = v.ref) ORDER BY v.seq", (tenant or DEFAULT_TENANT,)).fetchall()
        return [orjson.loads(features) for features, _ in rows], [verdict for _, verdict in rows]

    def last_seq(self, tenant: str | None = None) -> int:
        """The sequence number of ``tenant``'s newest verdict (0: none), which tells a trainer whether
        something new arrived."""
        with self._connect() as con:
            (seq,) = con.execute("SELECT COALESCE(MAX(seq), 0) FROM verdicts WHERE tenant = ?",
                                 (tenant or DEFAULT_TENANT,)).fetchone()
        return int(seq)

    def count(self, tenant: str | None = None) -> int:
        """How many subjects of ``tenant`` have a verdict."""
        with self._connect() as con:
            (count,) = con.execute("SELECT COUNT(*) FROM (SELECT DISTINCT subject, ref FROM verdicts WHERE tenant = ?)",
                                   (tenant or DEFAULT_TENANT,)).fetchone()
        return int(count)

    def tenants(self) -> list[str]:
        """The tenants with at least one verdict."""
        with self._connect() as con:
            return [t for (t,) in con.execute("SELECT DISTINCT tenant FROM verdicts ORDER BY tenant")]

    def history(self, subject: str, ref: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every verdict on one subject, oldest first."""
        with self._connect() as con:
            rows = con.execute("SELECT seq, verdict, by, note, at FROM verdicts WHERE tenant = ? AND subject = ? "
                               "AND ref = ? ORDER BY seq", (tenant or DEFAULT_TENANT, subject, str(ref))).fetchall()
        return [dict(zip(("seq", "verdict", "by", "note", "at"), row)) for row in rows]


__all__ = ["ACTIONABLE", "ALERT", "ALIASES", "EXPECTED", "LINE", "NOT_ACTIONABLE", "SUBJECTS", "VERDICTS",
           "VerdictStore", "is_actionable", "normalize_verdict", "verdicts_path"]
