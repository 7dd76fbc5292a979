"""Digests waiting at shutdown: sent before the stack stops, or said to wait for the next start.

A digest message collects alerts of its severities until its time comes (``digest.every``); stopping
the stack before then would leave it queued in the alert store, silently, until the next start. The
stack calls :func:`flush_digests` before closing the alert service.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from logwarden.alerting.notify.base import DIGEST
from logwarden.alerting.service import AlertService
from logwarden.alerting.store import PENDING, SENDING


@dataclass(frozen=True)
class PendingDigest:
    """One digest message not sent yet."""

    message_id: int
    channel: str
    alerts: int
    due_at: float
    last_error: str | None

    def describe(self) -> str:
        """One line for the console."""
        due = datetime.fromtimestamp(self.due_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        why = f" ({self.last_error})" if self.last_error else ""
        return (f"{self.channel} digest of {self.alerts} alert(s) not sent{why}: it stays queued and goes out "
                f"after the next start (due {due})")


def pending_digests(service: AlertService) -> list[PendingDigest]:
    """Digest messages not yet delivered, oldest first."""
    rows = service.store.query(
        "SELECT m.id, m.channel, max(m.not_before, m.next_attempt_at) AS due, m.last_error, count(ma.alert_id) AS n "
        "FROM messages m LEFT JOIN message_alerts ma ON ma.message_id = m.id "
        "WHERE m.kind = ? AND m.state IN (?, ?) GROUP BY m.id ORDER BY m.id", (DIGEST, PENDING, SENDING))
    return [PendingDigest(r["id"], r["channel"], r["n"], r["due"], r["last_error"]) for r in rows]


def _make_due(message_ids: list[int], now: float, service: AlertService) -> None:
    # Both times: a message is due when ``not_before`` and ``next_attempt_at`` have passed, and a new
    # digest has ``next_attempt_at`` = ``not_before`` (as ``AlertStore.expedite`` does for groups).
    if not message_ids:
        return
    with service.store.transaction() as db:
        db.execute(f"UPDATE messages SET not_before=?, next_attempt_at=? WHERE state=? AND attempts=0 "
                   f"AND id IN ({','.join('?' * len(message_ids))})", (now, now, PENDING, *message_ids))


def flush_digests(service: AlertService, timeout: float = 10.0) -> tuple[int, list[PendingDigest]]:
    """Make every waiting digest due now and wait up to ``timeout`` seconds for its delivery.

    Returns (how many digests were sent, the digests still waiting)."""
    waiting = pending_digests(service)
    if not waiting:
        return 0, []
    _make_due([d.message_id for d in waiting if d.channel in service.workers], time.time(), service)
    for worker in service.workers.values():
        worker.wake()
    deadline = time.monotonic() + timeout
    left = waiting
    while time.monotonic() < deadline:
        left = pending_digests(service)
        if not left or all(d.last_error for d in left):
            break
        time.sleep(0.05)
    return len(waiting) - len(left), left
