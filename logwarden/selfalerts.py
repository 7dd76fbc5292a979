"""Alerts logwarden raises about itself, built here (the wiring) from what the layers report.

A spool batch that processing quarantined (``processing.quarantine``) becomes a CRITICAL anomaly of
rule ``batch_quarantined``, key = the batch id, tenant ``*`` (only principals of every tenant see it:
a batch mixes tenants). It goes through the normal router (severity CRITICAL: PagerDuty where
configured), and is resolved once the batch, retried with ``logwarden spool failed retry``, goes through.
"""
from __future__ import annotations

from datetime import datetime, timezone
import time

from logwarden.common.auth import ALL_TENANTS
from logwarden.monitoring.anomaly import FIRING, RESOLVED, Anomaly
from logwarden.processing.quarantine import RESOLVED as BATCH_RESOLVED, QuarantinedBatch

QUARANTINE_RULE = "batch_quarantined"
QUARANTINE_SEVERITY = "CRITICAL"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def quarantine_anomaly(entry: QuarantinedBatch, now: float | None = None) -> Anomaly:
    """The self-alert of a quarantined batch (resolved when ``entry.status`` is resolved)."""
    resolved = entry.status == BATCH_RESOLVED
    at = _iso(entry.time)
    records = "unknown" if entry.records is None else str(entry.records)
    samples = [f"reason: {entry.reason}", f"records: {records}, {entry.size} bytes, attempts: {entry.attempts}"]
    if entry.error:
        samples.append(f"error: {entry.error[:500]}")
    return Anomaly(
        rule=QUARANTINE_RULE, kind="self", severity=QUARANTINE_SEVERITY, key=entry.batch_id,
        window_start=at, window_end=_iso(time.time() if now is None else now) if resolved else at,
        value=0.0 if resolved else 1.0, threshold="> 0 batches in quarantine", status=RESOLVED if resolved else FIRING,
        samples=samples, tenant=ALL_TENANTS,
        description=f"spool batch {entry.batch_id} quarantined ({entry.kind}): {entry.reason}; its records are "
                    "not in the lake",
        action=f"Inspect it with `logwarden spool failed show {entry.batch_id}`, fix the cause, then "
               f"`logwarden spool failed retry {entry.batch_id}`.",
    )
