"""The alert service: durable enqueue on ``dispatch``, delivery in background threads.

dispatch(anomalies)
  → labels (rule, severity, service, tenant, key; team, tier, environment from the inventory)
  → the routing tree (``alerting.route``, else the default tree of the rules file), time intervals,
    business hours → silences, inhibition rules → one SQLite transaction (alerts, messages, groups)
  → the journal ``outbox.jsonl`` (one line per alert per channel) → console → wake the workers
workers (one per configured channel) → receivers (PagerDuty, Slack, e-mail, webhook, Alertmanager,
remediation actions), with retries, circuit breaker, rate limit, dead letter
scheduler → escalation of unacknowledged alerts, repeats of groups still firing (``repeat_interval``)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson

from logwarden.alerting import history
from logwarden.alerting.config import AlertingConfig
from logwarden.alerting.delivery.breaker import OPEN
from logwarden.alerting.delivery.worker import ChannelWorker
from logwarden.alerting.dispatch import grouping
from logwarden.alerting.dispatch.labels import alert_labels
from logwarden.alerting.dispatch.matchers import EQUAL, matches_all
from logwarden.alerting.dispatch.routing import Muted, Route, plan, time_muted
from logwarden.alerting.dispatch.tree import RouteNode, default_tree
from logwarden.alerting.escalation import escalate_due
from logwarden.alerting.format import service_of
from logwarden.alerting.inhibit import state as inhibition
from logwarden.alerting.inhibit.rules import InhibitRule, inhibitor
from logwarden.alerting.inhibit.silences import Silence, SilenceStore
from logwarden.alerting.metrics import AlertingCollector, metrics_text, registry_for
from logwarden.alerting.notify.base import DIGEST, ESCALATION, NOTIFY, REMEDIATE, Notifier, Outgoing, Receiver
from logwarden.alerting.notify.console import ConsoleNotifier
from logwarden.alerting.notify.registry import Channel
from logwarden.alerting.outbox import Outbox
from logwarden.alerting.store import AlertStore
from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.anomaly import RESOLVED, Anomaly
from logwarden.processing.config import shipped_inventory
from logwarden.processing.enrich import Inventory

log = logging.getLogger(__name__)
HELD = "held"
DASHBOARD = "dashboard"
#: Labels that are columns of ``alerts`` (an inhibition's ``equal`` on them is a WHERE clause).
_COLUMNS = {"rule": "rule", "alertname": "rule", "severity": "severity", "service": "service", "tenant": "tenant",
            "key": "key"}
LABEL_CACHE = 50_000  # labels of stored alerts kept for inhibition (cleared when full)
_ANOMALY_FIELDS = {f.name for f in dataclasses.fields(Anomaly)}


def _tenant_suffix(anomaly: Anomaly) -> str:
    """What keeps the message groups of tenants apart (nothing for the default tenant)."""
    return "" if anomaly.tenant == DEFAULT_TENANT else f"|tenant={anomaly.tenant}"


def _source_rules(rules: list[InhibitRule]) -> list[str] | None:
    """The rules whose alerts can be sources of ``rules`` (each names one with ``rule="…"`` or
    ``alertname="…"``), or None when some source may be of any rule."""
    names: list[str] = []
    for rule in rules:
        named = [m.value for m in rule.source if m.name in ("rule", "alertname") and m.op == EQUAL]
        if not named:
            return None
        names.append(named[0])
    return sorted(set(names))


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
        inventory: Inventory | None = None,
    ) -> None:
        """``channels``: the built channels by name (``alerting.build.build_channels``); a bare
        receiver gets the rate limit and grouping delay of ``config``. ``inventory`` gives the team,
        tier and environment labels of services (None: the inventory shipped with logwarden)."""
        self.config = config
        self.routing = {k: list(v) for k, v in routing.items()}
        self.inventory = shipped_inventory() if inventory is None else inventory
        self._rule_channels: dict[str, list[str]] = {}
        self._tree = config.route or default_tree(self.routing, {})
        self._labels: dict[int, dict[str, str]] = {}  # labels of stored alerts, by alert id
        self.alerts_dir = Path(alerts_dir)
        self.dashboard_url = dashboard_url or config.dashboard_url
        self.store = AlertStore(self.alerts_dir)
        self.journal = Outbox(self.alerts_dir / "outbox.jsonl")
        self.silences = SilenceStore(self.store)
        grouping.ensure_schema(self.store)
        inhibition.ensure_schema(self.store)
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
        #: What gives each anomaly its ``actionable`` confidence (``monitoring.ml.actionable.ActionableScorer``;
        #: None: no learning from verdicts), and where verdicts on alerts go (``monitoring.ml.verdicts``).
        self.scorer: Any = None
        self.verdicts: Any = None

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
        with self._dispatch_lock:
            self.routing = {k: list(v) for k, v in routing.items()}
            self._rebuild_default_tree()

    @property
    def tree(self) -> RouteNode:
        """The routing tree in use: ``alerting.route``, else the default tree of the rules file."""
        return self._tree

    def _rebuild_default_tree(self) -> None:
        if self.config.route is None:
            self._tree = default_tree(self.routing, self._rule_channels)

    def _learn_rule_channels(self, anomalies: list[Anomaly]) -> None:
        """Keep the default tree's rule routes equal to the channels the rules name now."""
        changed = False
        for anomaly in anomalies:
            channels = list(anomaly.channels)
            if self._rule_channels.get(anomaly.rule, []) != channels:
                if channels:
                    self._rule_channels[anomaly.rule] = channels
                else:
                    self._rule_channels.pop(anomaly.rule, None)
                changed = True
        if changed:
            self._rebuild_default_tree()

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
            plans = []
            firing: dict[str, float | None] = {}  # confidence of this batch's firing alerts, by incident
            for a in anomalies:
                self._learn_rule_channels([a])
                self._score(a, firing)
                labels = alert_labels(a, self.inventory)
                plans.append((a, labels, *plan(a, labels, self._tree, self.config, now)))
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

    def _score(self, anomaly: Anomaly, firing: dict[str, float | None]) -> None:
        """Set ``anomaly.actionable`` from the verdict model (left None without one, or when scoring fails:
        the alert must still be routed). A resolution takes its incident's firing confidence (``firing``:
        those of the batch so far), so that it follows the firing alert's route (the page it resolves)."""
        if self.scorer is None or anomaly.actionable is not None:
            return
        try:
            if anomaly.status == RESOLVED and anomaly.dedup_key in firing:
                anomaly.actionable = firing[anomaly.dedup_key]
            elif anomaly.status == RESOLVED:
                rows = self.store.query("SELECT data FROM alerts WHERE dedup_key=? AND status='firing' "
                                        "ORDER BY id DESC LIMIT 1", (anomaly.dedup_key,))
                anomaly.actionable = orjson.loads(rows[0]["data"]).get("actionable") if rows else None
            else:
                anomaly.actionable = firing[anomaly.dedup_key] = self.scorer.score(anomaly)
        except Exception:  # noqa: BLE001 - a broken model must not stop routing
            log.exception("could not score alert %s for actionability", anomaly.id)

    def _enqueue(
        self, plans: list[tuple[Anomaly, dict, list[Route], list[Muted]]], now: float
    ) -> tuple[list[dict], list[tuple[Anomaly, str]], list[int]]:
        journal: list[dict] = []
        shown: list[tuple[Anomaly, str]] = []
        alert_ids: list[int] = []
        with self.store.transaction() as db:
            silences = self.silences.active(db, now)
            stored = []
            for anomaly, labels, routes, muted in plans:  # all first: a source inhibits in its own batch
                alert_id = self._insert(db, anomaly, [r.channel for r in routes], now)
                if alert_id is not None:
                    if len(self._labels) >= LABEL_CACHE:
                        self._labels.clear()
                    self._labels[alert_id] = labels
                    alert_ids.append(alert_id)
                    stored.append((alert_id, anomaly, labels, routes, muted))
            for alert_id, anomaly, labels, routes, muted in stored:
                meta: dict[str, Any] = {}
                if not self._loud(db, alert_id, anomaly, labels, silences, meta, now):
                    continue
                service = labels["service"]
                for route in routes:
                    self._queue(db, anomaly, labels, alert_id, route, meta, now)
                    journal.append(self._journal_entry(anomaly, service, alert_id, route, now))
                    shown.append((anomaly, route.channel))
                for quiet in muted:
                    self._record_muted(db, anomaly, labels, alert_id, quiet, now)
                if anomaly.status != RESOLVED:
                    for channel, spec in self.channels.items():
                        if anomaly.rule in spec.triggered_by:
                            self.store.add_message(
                                db, channel, anomaly.dedup_key, REMEDIATE, [alert_id], now, now, join=False
                            )
        return journal, shown, alert_ids

    def _insert(self, db: Any, anomaly: Anomaly, channels: list[str], now: float) -> int | None:
        """Store ``anomaly``; its alert id, or None when it was received before."""
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
                service_of(anomaly),
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
            return None
        return int(cursor.lastrowid)

    def _loud(
        self, db: Any, alert_id: int, anomaly: Anomaly, labels: dict, silences: list[Silence], meta: dict,
        now: float,
    ) -> bool:
        """Whether the alert is notified: not silenced, not inhibited (a resolution is notified when its
        incident was). Resolves the incident's firing alerts; marks a quiet alert with why."""
        notified_incident = False
        muted_source: int | None = None
        if anomaly.status == RESOLVED:
            open_rows = db.execute(
                f"SELECT max(a.escalations) AS esc, sum(a.silenced_by IS NULL AND NOT {inhibition.INHIBITED}) AS loud, "
                f"max(CASE WHEN {inhibition.INHIBITED} THEN a.id END) AS muted FROM alerts a "
                "WHERE a.dedup_key=? AND a.status='firing' AND a.resolved_at IS NULL AND a.id<?",
                (anomaly.dedup_key, alert_id),
            ).fetchone()
            meta["escalations"] = int(open_rows["esc"] or 0)
            notified_incident = bool(open_rows["loud"])
            muted_source = open_rows["muted"]
            db.execute(
                "UPDATE alerts SET resolved_at=? WHERE dedup_key=? AND status='firing' AND resolved_at IS NULL "
                "AND id<?",
                (now, anomaly.dedup_key, alert_id),
            )
        silence = next((s for s in silences if s.covers(labels)), None)
        if silence is not None and not notified_incident:
            db.execute("UPDATE alerts SET silenced_by=? WHERE id=?", (silence.id, alert_id))
            log.info("alerting: %s silenced by silence %d (%s)", anomaly.dedup_key, silence.id, silence.reason)
            return False
        if notified_incident:
            return True
        if anomaly.status == RESOLVED and muted_source is not None:
            source = db.execute("SELECT source_alert_id, rule FROM inhibitions WHERE alert_id=?",
                                (muted_source,)).fetchone()
            inhibition.record(db, alert_id, source["source_alert_id"], source["rule"], now)
            return False
        return not self._inhibited(db, alert_id, anomaly, labels, now)

    def _inhibited(self, db: Any, alert_id: int, anomaly: Anomaly, labels: dict, now: float) -> bool:
        """Whether a firing alert mutes this one under an inhibition rule (recorded when it does)."""
        rules = [r for r in self.config.inhibit_rules if matches_all(r.target, labels)]
        if not rules or anomaly.status == RESOLVED:
            return False
        sql = "SELECT id, data FROM alerts WHERE status='firing' AND resolved_at IS NULL AND dedup_key<>?"
        params: list[Any] = [anomaly.dedup_key]
        source_rules = _source_rules(rules)
        if source_rules is not None:  # every rule names its source's rule: read only those alerts
            sql += f" AND rule IN ({','.join('?' * len(source_rules))})"
            params += source_rules
        shared = set.intersection(*(set(r.equal) for r in rules))
        for label in sorted(shared & set(_COLUMNS)):  # sources must agree on it: let SQLite filter
            sql += f" AND {_COLUMNS[label]}=?"
            params.append(labels.get(label, ""))
        rows = db.execute(sql, params).fetchall()
        found = inhibitor(rules, labels, ((int(r["id"]), self._labels_of(r)) for r in rows))
        if found is None:
            return False
        source_id, rule = found
        inhibition.record(db, alert_id, source_id, rule.describe(), now)
        log.info("alerting: %s inhibited by alert %d (%s)", anomaly.dedup_key, source_id, rule.describe())
        return True

    def _labels_of(self, row: Any) -> dict[str, str]:
        """The labels of a stored alert (``id`` and ``data`` columns), cached."""
        labels = self._labels.get(int(row["id"]))
        if labels is None:
            if len(self._labels) >= LABEL_CACHE:
                self._labels.clear()
            labels = self._labels[int(row["id"])] = alert_labels(anomaly_from_json(row["data"]), self.inventory)
        return labels

    def _journal_entry(self, anomaly: Anomaly, service: str, alert_id: int, route: Route, now: float) -> dict:
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
        if self.config.route is not None and route.node is not None:
            entry["route"] = route.node.path
        return entry

    def _record_muted(self, db: Any, anomaly: Anomaly, labels: dict, alert_id: int, quiet: Muted,
                      now: float) -> None:
        """An alert of a route muted by its time intervals joins its groups without a notification, so
        the group's repeat notifies it once the route is active again."""
        log.info("alerting: %s not notified by %s now: %s", anomaly.dedup_key, quiet.node.path, quiet.reason)
        if quiet.node.group_interval is None:
            return
        for channel in self.config.channels_of(quiet.node.receiver):
            if channel in self.workers:
                grouping.queue(self.store, db, channel, quiet.node, labels, (alert_id, anomaly.dedup_key), now,
                               self._wait(channel, quiet.node), notify=False)

    def _wait(self, channel: str, node: RouteNode | None) -> float:
        """The group_wait of ``channel`` under ``node`` (the route's, else the channel's, else the section's)."""
        if node is not None and node.group_wait is not None:
            return node.group_wait
        spec = self.channels.get(channel)
        if spec is not None and spec.group_wait is not None:
            return spec.group_wait
        return self.config.group_wait

    def _queue(
        self, db: Any, anomaly: Anomaly, labels: dict, alert_id: int, route: Route, meta: dict, now: float
    ) -> None:
        channel = route.channel
        if channel not in self.workers:
            return  # the dashboard reads the store; an unconfigured channel is the console and the journal
        spec = self.channels[channel]
        digest = spec.digest
        service = labels["service"]
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
        elif route.node is not None and route.node.group_interval is not None:
            grouping.queue(self.store, db, channel, route.node, labels, (alert_id, anomaly.dedup_key), now,
                           self._wait(channel, route.node), meta=meta)
        else:
            wait = self._wait(channel, route.node)
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
            if row["silenced_by"] is not None or inhibition.inhibited_by(self.store, int(row["id"])):
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
                self.repeat(time.time())
            except Exception:
                log.exception("alerting scheduler")

    def repeat(self, now: float) -> int:
        """Queue the repeats due at ``now`` of groups still firing (``repeat_interval``); returns how many."""
        with self._dispatch_lock:
            silences = self.silences.active(self.store.connection(), now)
            moment = datetime.fromtimestamp(now, tz=timezone.utc)
            routes = {node.path: node for node in self._tree.walk()}

            def quiet(row: Any) -> bool:
                if row["silenced_by"] is not None or inhibition.inhibited_by(self.store, int(row["id"])):
                    return True
                labels = self._labels_of(row)
                return any(s.covers(labels) for s in silences)

            def muted(path: str) -> bool:
                node = routes.get(path)
                return node is not None and time_muted(node, self.config, moment) is not None

            done = grouping.repeat_due(self.store, now, set(self.workers), quiet, muted)
        entries = []
        for item in done:
            for row in self.store.alerts_of(item.message_id):
                anomaly = anomaly_from_json(row["data"])
                entries.append({**anomaly.to_dict(), "channel": item.channel, "routed_at": now,
                                "alert_id": row["id"], "service": row["service"], "event": "repeated",
                                "route": item.route})
        if entries:
            self.journal.append(entries)
            for worker in self.workers.values():
                worker.wake()
        return len(done)

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
