"""The alert service: durable enqueue on ``dispatch``, delivery in background threads.

dispatch(anomalies)
  → routing (rules file + business hours) → silences → one SQLite transaction (alerts, messages)
  → the journal ``outbox.jsonl`` (one line per alert per channel) → console → wake the workers
workers (one per configured channel) → receivers (PagerDuty, Slack, e-mail, webhook, Alertmanager,
remediation actions), with retries, circuit breaker, rate limit, dead letter
scheduler → escalation of unacknowledged alerts
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson

from logwarden.alerting import history
from logwarden.alerting.config import AlertingConfig
from logwarden.alerting.delivery.breaker import OPEN
from logwarden.alerting.delivery.worker import ChannelWorker
from logwarden.alerting.dispatch.routing import Route, routes_for
from logwarden.alerting.escalation import escalate_due
from logwarden.alerting.format import service_of
from logwarden.alerting.inhibit.silences import SilenceStore
from logwarden.alerting.metrics import AlertingCollector, metrics_text, registry_for
from logwarden.alerting.notify.base import DIGEST, ESCALATION, NOTIFY, REMEDIATE, Notifier, Outgoing, Receiver
from logwarden.alerting.notify.console import ConsoleNotifier
from logwarden.alerting.notify.registry import Channel
from logwarden.alerting.outbox import Outbox
from logwarden.alerting.store import AlertStore
from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.anomaly import RESOLVED, Anomaly

log = logging.getLogger(__name__)
HELD = "held"
DASHBOARD = "dashboard"
_ANOMALY_FIELDS = {f.name for f in dataclasses.fields(Anomaly)}


def _tenant_suffix(anomaly: Anomaly) -> str:
    """What keeps the message groups of tenants apart (nothing for the default tenant)."""
    return "" if anomaly.tenant == DEFAULT_TENANT else f"|tenant={anomaly.tenant}"


def anomaly_from_json(data: str | bytes) -> Anomaly:
    """An Anomaly from its stored JSON (fields unknown to this version are ignored)."""
    raw = orjson.loads(data)
    return Anomaly.from_dict({k: v for k, v in raw.items() if k in _ANOMALY_FIELDS})


class AlertService:
    """Routes anomalies to channels through a durable outbox and delivers them in the background."""

    def __init__(
        self,
        config: AlertingConfig,
        routing: dict[str, list[str]],
        alerts_dir: Path,
        channels: Mapping[str, Channel | Receiver],
        dashboard_url: str | None = None,
        console: Notifier | None = None,
    ) -> None:
        """``channels``: the built channels by name (``alerting.build.build_channels``); a bare
        receiver gets the rate limit and grouping delay of ``config``."""
        self.config = config
        self.routing = {k: list(v) for k, v in routing.items()}
        self.alerts_dir = Path(alerts_dir)
        self.dashboard_url = dashboard_url or config.dashboard_url
        self.store = AlertStore(self.alerts_dir)
        self.journal = Outbox(self.alerts_dir / "outbox.jsonl")
        self.silences = SilenceStore(self.store)
        self.console = console if console is not None else ConsoleNotifier()
        self.channels: dict[str, Channel] = {
            name: c if isinstance(c, Channel)
            else Channel(name, c, config.rate_limits.get(name), config.group_waits.get(name))
            for name, c in channels.items()
        }
        self.receivers = {name: c.receiver for name, c in self.channels.items()}
        self.workers: dict[str, ChannelWorker] = {}
        self.metrics = AlertingCollector(self.store, self.workers)
        self.registry = registry_for(self.metrics)
        for channel, spec in self.channels.items():
            self.workers[channel] = ChannelWorker(
                self.store,
                channel,
                spec.receiver,
                config.delivery,
                spec.rate_limit,
                self._outgoing,
                poll_interval=config.poll_interval,
                on_result=self.metrics.record,
            )
        self._dispatch_lock = threading.Lock()
        self._stop = threading.Event()
        self._scheduler = threading.Thread(target=self._schedule, name="alerting-scheduler", daemon=True)
        self._started = False
        self._closed = False
        self.routed = 0

    # lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Recover from a crash (messages caught mid-send, journal lines not written), then start
        the workers and the escalation scheduler."""
        if self._started:
            return
        recovered = self.store.recover()
        if recovered:
            log.warning("alerting: %d message(s) interrupted by a stop will be delivered again", recovered)
        self._journal_missing()
        for worker in self.workers.values():
            worker.start()
        self._scheduler.start()
        self._started = True
        pending = history.in_flight(self.store)
        if pending:
            log.info("alerting: %d message(s) waiting for delivery", pending)
        for channel, states in history.delivery_summary(self.store).items():
            waiting = states.get("pending", 0)
            if waiting and channel not in self.workers:
                log.warning(
                    "alerting: %d message(s) for %s wait for a receiver: "
                    "configure alerting.%s to deliver them",
                    waiting,
                    channel,
                    channel,
                )

    def close(self, timeout: float | None = None) -> None:
        """Send what is waiting for its group (not digests or held alerts: they stay queued), wait up
        to ``timeout`` (default ``flush_timeout``) for due messages, then stop the threads."""
        if self._closed:
            return
        self._closed = True
        timeout = self.config.flush_timeout if timeout is None else timeout
        if self._started:
            self.store.expedite(self.workers, (NOTIFY, ESCALATION), time.time())
            for worker in self.workers.values():
                worker.wake()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                live = [c for c, w in self.workers.items() if w.breaker.state != OPEN or w.busy]
                if not self.store.outstanding(live, time.time()):
                    break
                time.sleep(0.05)
            self._stop.set()
            for worker in self.workers.values():
                worker.stop()
            self._scheduler.join(timeout=5)
            self._started = False
        for receiver in self.receivers.values():
            try:
                receiver.close()
            except Exception:
                log.exception("closing receiver %s", getattr(receiver, "name", "?"))
        self.store.close()

    def update_routing(self, routing: dict[str, list[str]]) -> None:
        """Use the routing of a reloaded rules file from now on."""
        self.routing = {k: list(v) for k, v in routing.items()}

    # dispatch ---------------------------------------------------------------------------------
    def dispatch(self, anomalies: Iterable[Anomaly]) -> None:
        """Record ``anomalies`` durably and queue their messages; delivery happens in the background.

        An anomaly already received (same id) is ignored, so a replay delivers nothing twice.
        """
        anomalies = list(anomalies)
        if not anomalies:
            return
        with self._dispatch_lock:
            now = time.time()
            routing = self.routing
            plans = [(a, routes_for(a, routing, self.config, now)) for a in anomalies]
            journal_entries, shown, alert_ids = self._enqueue(plans, now)
            self.journal.append(journal_entries)
            self._mark_journaled(alert_ids)
        for anomaly, channel in shown:
            try:
                self.console.send(anomaly, channel)
            except Exception:
                log.exception("console output failed")
        self.routed += len(journal_entries)
        for worker in self.workers.values():
            worker.wake()

    def _enqueue(
        self, plans: list[tuple[Anomaly, list[Route]]], now: float
    ) -> tuple[list[dict], list[tuple[Anomaly, str]], list[int]]:
        journal: list[dict] = []
        shown: list[tuple[Anomaly, str]] = []
        alert_ids: list[int] = []
        with self.store.transaction() as db:
            silences = self.silences.active(db, now)
            for anomaly, routes in plans:
                channels = [r.channel for r in routes]
                service = service_of(anomaly)
                cursor = db.execute(
                    "INSERT OR IGNORE INTO alerts(anomaly_id, dedup_key, rule, key, tenant, service, severity, "
                    "status, window_start, window_end, value, threshold, received_at, channels, data) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        anomaly.id,
                        anomaly.dedup_key,
                        anomaly.rule,
                        anomaly.key,
                        anomaly.tenant,
                        service,
                        anomaly.severity,
                        anomaly.status,
                        anomaly.window_start,
                        anomaly.window_end,
                        float(anomaly.value),
                        str(anomaly.threshold),
                        now,
                        orjson.dumps(channels).decode(),
                        orjson.dumps(anomaly.to_dict()).decode(),
                    ),
                )
                if cursor.rowcount == 0:
                    log.info("alerting: anomaly %s already received, ignored", anomaly.id)
                    continue
                alert_id = int(cursor.lastrowid)
                alert_ids.append(alert_id)
                meta: dict[str, Any] = {}
                notified_incident = False
                if anomaly.status == RESOLVED:
                    open_rows = db.execute(
                        "SELECT max(escalations) AS esc, sum(silenced_by IS NULL) AS loud FROM alerts "
                        "WHERE dedup_key=? AND status='firing' AND resolved_at IS NULL",
                        (anomaly.dedup_key,),
                    ).fetchone()
                    meta["escalations"] = int(open_rows["esc"] or 0)
                    notified_incident = bool(open_rows["loud"])
                    db.execute(
                        "UPDATE alerts SET resolved_at=? WHERE dedup_key=? AND status='firing' "
                        "AND resolved_at IS NULL",
                        (now, anomaly.dedup_key),
                    )
                silence = next((s for s in silences if s.matches(anomaly.rule, anomaly.key)), None)
                if silence is not None and not notified_incident:
                    db.execute("UPDATE alerts SET silenced_by=? WHERE id=?", (silence.id, alert_id))
                    log.info(
                        "alerting: %s silenced by silence %d (%s)",
                        anomaly.dedup_key,
                        silence.id,
                        silence.reason,
                    )
                    continue
                for route in routes:
                    self._queue(db, anomaly, service, alert_id, route, meta, now)
                    entry = {
                        **anomaly.to_dict(),
                        "channel": route.channel,
                        "routed_at": now,
                        "alert_id": alert_id,
                        "service": service,
                        "event": "routed",
                    }
                    if route.held_until is not None:
                        entry["held_until"] = route.held_until
                    if route.escalated_from is not None:
                        entry["escalated_from"] = route.escalated_from
                    journal.append(entry)
                    shown.append((anomaly, route.channel))
                if anomaly.status != RESOLVED:
                    for channel, spec in self.channels.items():
                        if anomaly.rule in spec.triggered_by:
                            self.store.add_message(
                                db, channel, anomaly.dedup_key, REMEDIATE, [alert_id], now, now, join=False
                            )
        return journal, shown, alert_ids

    def _queue(
        self, db: Any, anomaly: Anomaly, service: str, alert_id: int, route: Route, meta: dict, now: float
    ) -> None:
        channel = route.channel
        if channel not in self.workers:
            return  # the dashboard reads the store; an unconfigured channel is the console and the journal
        spec = self.channels[channel]
        digest = spec.digest
        if route.held_until is not None:
            self.store.add_message(
                db,
                channel,
                f"held|{anomaly.rule}|{service}{_tenant_suffix(anomaly)}",
                HELD,
                [alert_id],
                route.held_until,
                now,
                meta=meta,
            )
        elif digest is not None and anomaly.severity in digest.severities:
            self.store.add_message(
                db,
                channel,
                "digest",
                DIGEST,
                [alert_id],
                now + digest.every,
                now,
                meta=meta,
                max_alerts=digest.max_alerts,
            )
        else:
            wait = self.config.group_wait if spec.group_wait is None else spec.group_wait
            self.store.add_message(
                db,
                channel,
                f"{anomaly.rule}|{service}|{anomaly.status}{_tenant_suffix(anomaly)}",
                NOTIFY,
                [alert_id],
                now + wait,
                now,
                meta=meta,
                join=wait > 0,
            )

    def _mark_journaled(self, alert_ids: list[int]) -> None:
        if not alert_ids:
            return
        with self.store.transaction() as db:
            db.executemany("UPDATE alerts SET journaled=1 WHERE id=?", [(i,) for i in alert_ids])

    def _journal_missing(self) -> None:
        """Write the journal lines a crash prevented (the alert was stored, its lines were not)."""
        rows = self.store.query("SELECT * FROM alerts WHERE journaled=0 ORDER BY id")
        if not rows:
            return
        entries = []
        for row in rows:
            if row["silenced_by"] is not None:
                continue
            data = orjson.loads(row["data"])
            for channel in orjson.loads(row["channels"]):
                entries.append(
                    {
                        **data,
                        "channel": channel,
                        "routed_at": row["received_at"],
                        "alert_id": row["id"],
                        "service": row["service"],
                        "event": "routed",
                    }
                )
        self.journal.append(entries)
        self._mark_journaled([r["id"] for r in rows])
        log.warning("alerting: wrote %d journal line(s) missing after a stop", len(entries))

    # background -------------------------------------------------------------------------------
    def _schedule(self) -> None:
        while not self._stop.wait(self.config.poll_interval):
            try:
                self.escalate(time.time())
            except Exception:
                log.exception("alerting scheduler")

    def escalate(self, now: float) -> int:
        """Queue the re-pages due at ``now``; returns how many incidents escalated."""
        done = escalate_due(self.store, self.config.escalation, set(self.workers), now)
        if not done:
            return 0
        entries = []
        for item in done:
            anomaly = anomaly_from_json(item.data)
            for channel in item.channels:
                entries.append(
                    {
                        **anomaly.to_dict(),
                        "channel": channel,
                        "routed_at": now,
                        "alert_id": item.alert_id,
                        "service": service_of(anomaly),
                        "event": "escalated",
                        "level": item.level,
                    }
                )
                try:
                    self.console.send(anomaly, f"{channel} (escalation {item.level}, unacknowledged)")
                except Exception:
                    log.exception("console output failed")
        self.journal.append(entries)
        for worker in self.workers.values():
            worker.wake()
        return len(done)

    def _outgoing(self, row: Any) -> Outgoing:
        alerts = self.store.alerts_of(row["id"])
        return Outgoing(
            message_id=int(row["id"]),
            channel=row["channel"],
            kind=row["kind"],
            anomalies=[anomaly_from_json(a["data"]) for a in alerts],
            alert_ids=[a["id"] for a in alerts],
            meta=orjson.loads(row["meta"] or "{}"),
            dashboard_url=self.dashboard_url,
        )

    # acknowledge, query, metrics -----------------------------------------------------------------
    def acknowledge(self, ref: str | int, by: str, note: str = "", tenant: str | None = None) -> dict[str, Any]:
        """Acknowledge the incident of alert ``ref`` (stops its escalation); KeyError if unknown, or if
        ``tenant`` is given and the alert is another tenant's (None: any tenant)."""
        result = history.acknowledge(self.store, ref, by, note, tenant=tenant)
        for worker in self.workers.values():
            worker.wake()
        return result

    def metrics_text(self) -> bytes:
        """Alerting's metrics in the Prometheus text format."""
        return metrics_text(self.registry)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no message is due or in delivery (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.store.outstanding(self.workers, time.time()):
                return True
            time.sleep(0.05)
        return False
