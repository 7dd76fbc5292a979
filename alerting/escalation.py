"""Escalation: an unacknowledged, unresolved alert of an escalating severity pages again every
``after`` seconds, up to ``repeat`` times."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from logwarden.alerting.config import EscalationPolicy
from logwarden.alerting.inhibit.state import INHIBITED
from logwarden.alerting.notify.base import ESCALATION
from logwarden.alerting.store import AlertStore

log = logging.getLogger(__name__)
DASHBOARD = "dashboard"  # shows every alert already: nothing to page again


@dataclass(frozen=True)
class Escalated:
    """One re-page: the incident's first alert, the level reached and the channels paged."""

    alert_id: int
    level: int
    channels: list[str]
    data: bytes


def escalate_due(
    store: AlertStore, policy: EscalationPolicy, receivers: set[str], now: float
) -> list[Escalated]:
    """Queue the re-pages that are due at ``now``; returns them.

    An incident is the set of firing alerts of one dedup key since it last resolved; it escalates
    from its first alert, and acknowledging any of its alerts acknowledges the incident.
    """
    if not policy.enabled or not policy.severities:
        return []
    marks = ",".join("?" * len(policy.severities))
    done: list[Escalated] = []
    with store.transaction() as db:
        rows = db.execute(
            f"SELECT * FROM alerts a WHERE a.status='firing' AND a.resolved_at IS NULL "
            f"AND a.acked_at IS NULL "
            f"AND a.silenced_by IS NULL AND NOT {INHIBITED} AND a.severity IN ({marks}) AND a.escalations < ? "
            f"AND a.received_at + ? * (a.escalations + 1) <= ? "
            f"AND a.id = (SELECT min(b.id) FROM alerts b WHERE b.dedup_key=a.dedup_key AND b.status='firing' "
            f"AND b.resolved_at IS NULL)",
            (*policy.severities, policy.repeat, policy.after, now),
        ).fetchall()
        for row in rows:
            level = int(row["escalations"]) + 1
            channels = [c for c in (list(policy.channels) or orjson.loads(row["channels"])) if c != DASHBOARD]
            db.execute(
                "UPDATE alerts SET escalations=?, last_escalated_at=? WHERE id=?", (level, now, row["id"])
            )
            for channel in channels:
                if channel in receivers:
                    store.add_message(
                        db,
                        channel,
                        f"escalation|{row['dedup_key']}|{level}",
                        ESCALATION,
                        [row["id"]],
                        now,
                        now,
                        meta={"level": level},
                        join=False,
                    )
            done.append(Escalated(int(row["id"]), level, channels, row["data"]))
    for item in done:
        log.warning("alert %s unacknowledged: escalation %d to %s", item.alert_id, item.level, item.channels)
    return done
