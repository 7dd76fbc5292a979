"""Silence an alert's incident from the alert itself (the dashboard's and the API's "silence" action).

A silence covers a rule and a key (:mod:`logwarden.alerting.inhibit.silences`): new anomalies of them
are stored without notification. Silencing from an alert also marks the incident's open firing alerts
as silenced, which stops their escalation (escalation skips silenced alerts) and shows them as silenced.
"""
from __future__ import annotations

import time
from typing import Any

from logwarden.alerting import history
from logwarden.alerting.inhibit.silences import SilenceStore
from logwarden.alerting.store import AlertStore


def silence_alert(store: AlertStore, ref: str | int, duration: float, by: str, reason: str,
                  tenant: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Silence the rule and key of alert ``ref`` for ``duration`` seconds and mark its incident's open
    firing alerts as silenced. KeyError for an unknown alert (or another tenant's, with ``tenant``);
    ValueError for a duration or reason that a silence refuses.

    Returns ``{"silence": …, "alert": …, "silenced": [alert ids]}``."""
    alert = history.get_alert(store, ref, tenant)
    if alert is None:
        raise KeyError(ref)
    now = time.time() if now is None else now
    silence = SilenceStore(store).add(alert["rule"], duration, by, reason, key=alert["key"], now=now)
    with store.transaction() as db:
        rows = db.execute(
            "SELECT id FROM alerts WHERE dedup_key=? AND tenant=? AND status='firing' AND resolved_at IS NULL "
            "AND silenced_by IS NULL", (alert["dedup_key"], alert["tenant"])).fetchall()
        ids = [r["id"] for r in rows]
        db.executemany("UPDATE alerts SET silenced_by=? WHERE id=?", [(silence.id, i) for i in ids])
    return {"silence": silence.to_dict(), "alert": history.get_alert(store, alert["id"], tenant), "silenced": ids}

