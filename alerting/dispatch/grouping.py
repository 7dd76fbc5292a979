"""Grouping of the routing tree, as Alertmanager does it, kept in the alert database.

Under a route, alerts with the same values of the route's ``group_by`` labels form a group, one per
channel. The first alert of a group is notified after ``group_wait`` (alerts arriving meanwhile join
that message); an alert arriving after the group was notified waits for the group's next flush,
``group_interval`` after the last one; a group that still has firing alerts is notified again,
with those alerts, ``repeat_interval`` after its last flush. A group whose alerts all resolved (and
whose resolution was notified) is forgotten: the next alert starts it anew with ``group_wait``.

Tables (next to those of :mod:`logwarden.alerting.store`):
  ``route_groups``        one row per (channel, group): its route, labels, timers and last flush;
  ``route_group_alerts``  the latest alert of each incident (dedup key) of a group.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import orjson

from logwarden.alerting.dispatch.tree import RouteNode
from logwarden.alerting.notify.base import NOTIFY
from logwarden.alerting.store import AlertStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS route_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    route TEXT NOT NULL,
    labels TEXT NOT NULL,
    created_at REAL NOT NULL,
    flushed_at REAL NOT NULL,
    group_interval REAL NOT NULL,
    repeat_interval REAL,
    UNIQUE (channel, group_key)
);
CREATE TABLE IF NOT EXISTS route_group_alerts (
    group_id INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    alert_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, dedup_key)
);
"""
_LIVE = (
    "SELECT count(*) FROM route_group_alerts g JOIN alerts a ON a.id=g.alert_id WHERE g.group_id=? "
    "AND a.status='firing' AND (a.resolved_at IS NULL OR a.resolved_at>=?)"
)


def ensure_schema(store: AlertStore) -> None:
    """Create the grouping tables when missing."""
    store.connection().executescript(SCHEMA)


def group_key(node: RouteNode, labels: Mapping[str, str]) -> str:
    """The group of an alert with ``labels`` under ``node``: ``route.routes[0]|{service="x",...}``."""
    inner = ",".join(f'{k}="{v}"' for k, v in node.group_labels(labels).items())
    return f"{node.path}|{{{inner}}}"


@dataclass(frozen=True)
class Grouped:
    """Where an alert went: its group and the message it joined or opened (None when muted)."""

    group_id: int
    message_id: int | None
    due: float | None


def queue(
    store: AlertStore,
    db: sqlite3.Connection,
    channel: str,
    node: RouteNode,
    labels: Mapping[str, str],
    alert: tuple[int, str],
    now: float,
    wait: float,
    meta: dict | None = None,
    notify: bool = True,
) -> Grouped:
    """Put the alert ``(alert_id, dedup_key)`` in its group of ``channel`` under ``node`` (which has a
    ``group_interval``) and queue its notification at the group's next flush (none when ``notify``
    is False: the route is muted by its time intervals now). ``wait`` is the route's group_wait."""
    assert node.group_interval is not None
    key = group_key(node, labels)
    row = db.execute("SELECT * FROM route_groups WHERE channel=? AND group_key=?", (channel, key)).fetchone()
    live = row is not None and db.execute(_LIVE, (row["id"], now)).fetchone()[0] > 0
    if row is None:
        due = now + wait
        cursor = db.execute(
            "INSERT INTO route_groups(channel, group_key, route, labels, created_at, flushed_at, group_interval, "
            "repeat_interval) VALUES (?,?,?,?,?,?,?,?)",
            (channel, key, node.path, orjson.dumps(node.group_labels(labels)).decode(), now, due,
             node.group_interval, node.repeat_interval),
        )
        group_id = int(cursor.lastrowid)
    elif not live and row["flushed_at"] + row["group_interval"] <= now:
        group_id, due = int(row["id"]), now + wait  # the group had ended: it starts anew
        db.execute("DELETE FROM route_group_alerts WHERE group_id=?", (group_id,))
        db.execute("UPDATE route_groups SET created_at=?, flushed_at=? WHERE id=?", (now, due, group_id))
    else:
        group_id = int(row["id"])
        due = max(now, row["flushed_at"] + row["group_interval"]) if row["flushed_at"] <= now else row["flushed_at"]
    alert_id, dedup_key = alert
    db.execute(
        "INSERT OR REPLACE INTO route_group_alerts(group_id, dedup_key, alert_id) VALUES (?,?,?)",
        (group_id, dedup_key, alert_id),
    )
    if not notify:
        return Grouped(group_id, None, None)
    db.execute("UPDATE route_groups SET flushed_at=? WHERE id=?", (due, group_id))
    message_id = store.add_message(db, channel, key, NOTIFY, [alert_id], due, now, meta=meta, join=True)
    return Grouped(group_id, message_id, due)


@dataclass(frozen=True)
class Repeat:
    """A group notified again: its channel, route and the firing alerts it carries."""

    channel: str
    route: str
    alert_ids: list[int]
    message_id: int


def repeat_due(
    store: AlertStore,
    now: float,
    channels: set[str],
    quiet: Callable[[sqlite3.Row], bool],
    muted_route: Callable[[str], bool],
) -> list[Repeat]:
    """Queue the repeats due at ``now`` for groups of ``channels``; forget groups that ended.

    ``quiet(alert_row)`` tells an alert that must not be notified now (silenced, inhibited);
    ``muted_route(path)`` a route muted by its time intervals now (its repeat waits).
    """
    done: list[Repeat] = []
    with store.transaction() as db:
        groups = db.execute(
            "SELECT * FROM route_groups WHERE repeat_interval IS NOT NULL AND flushed_at + repeat_interval <= ?",
            (now,),
        ).fetchall()
        for group in groups:
            firing = db.execute(
                "SELECT a.* FROM route_group_alerts g JOIN alerts a ON a.id=g.alert_id WHERE g.group_id=? "
                "AND a.status='firing' AND a.resolved_at IS NULL ORDER BY a.id",
                (group["id"],),
            ).fetchall()
            if not firing:
                _forget(db, int(group["id"]))
                continue
            if group["channel"] not in channels or muted_route(group["route"]):
                continue
            loud = [int(a["id"]) for a in firing if not quiet(a)]
            db.execute("UPDATE route_groups SET flushed_at=? WHERE id=?", (now, group["id"]))
            if not loud:
                continue
            message_id = store.add_message(
                db, group["channel"], group["group_key"], NOTIFY, loud, now, now, meta={"repeat": True}, join=False
            )
            done.append(Repeat(group["channel"], group["route"], loud, message_id))
    return done


def _forget(db: sqlite3.Connection, group_id: int) -> None:
    db.execute("DELETE FROM route_group_alerts WHERE group_id=?", (group_id,))
    db.execute("DELETE FROM route_groups WHERE id=?", (group_id,))


def groups(store: AlertStore) -> list[dict[str, Any]]:
    """Every group with its channel, route, labels, timers and alert count (for the CLI and tests)."""
    rows = store.query(
        "SELECT r.*, (SELECT count(*) FROM route_group_alerts g WHERE g.group_id=r.id) AS alerts "
        "FROM route_groups r ORDER BY r.id"
    )
    return [{**dict(r), "labels": orjson.loads(r["labels"])} for r in rows]


__all__ = ["Grouped", "Repeat", "ensure_schema", "group_key", "groups", "queue", "repeat_due"]
