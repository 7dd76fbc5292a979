"""The alerts page (``/alerts``): alerts by state (firing, acknowledged, resolved, silenced), each with a
link to the logs of its window and key; for admin tokens, acknowledge, silence and ML feedback.

Everything goes through the API with the visitor's credentials: the list is the API's (confined to
the visitor's tenant), and an action is the API's too, which refuses a principal without role admin
(403). The page checks the role as well, and builds no action controls for a read-only principal.
"""
from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (Button, ColumnDataSource, DataTable, Div, HTMLTemplateFormatter, RadioButtonGroup, Select,
                          TableColumn, TextInput)

from logwarden.dashboard.apiclient import ApiError
from logwarden.dashboard.auth import Grant
from logwarden.dashboard.links import NAV, logs_url
from logwarden.dashboard.pages import PageContext, grant_of, in_background
from logwarden.dashboard.sources import to_datetime

STATES = ["firing", "acknowledged", "resolved", "silenced", "all"]
SILENCE_DURATIONS = ["15m", "1h", "4h", "1d", "7d"]
# the page's words -> the operator's verdict on an alert (what the actionable model learns from)
VERDICTS = {"actionable": "actionable", "not actionable": "not_actionable", "expected": "expected"}
COLUMNS = ("id", "received", "severity", "rule", "key", "tenant", "service", "state", "window", "value", "why",
           "by", "logs", "anomaly_id")
REFRESH_MS = 5000


def alert_state(alert: dict[str, Any]) -> str:
    """resolved, silenced, acknowledged or firing."""
    if alert.get("status") == "resolved" or alert.get("resolved_at"):
        return "resolved"
    if alert.get("silenced_by") is not None:
        return "silenced"
    if alert.get("acked_at"):
        return "acknowledged"
    return "firing"


def _when(value: Any) -> str:
    moment = to_datetime(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def alert_rows(alerts: list[dict[str, Any]], state: str) -> dict[str, list]:
    """The table's columns for the alerts in ``state`` (``all``: every alert)."""
    shown = [a for a in alerts if state == "all" or alert_state(a) == state]
    rows: dict[str, list] = {c: [] for c in COLUMNS}
    for a in shown:
        start, end = to_datetime(a.get("window_start")), to_datetime(a.get("window_end"))
        silenced = f"silence #{a['silenced_by']}" if a.get("silenced_by") is not None else ""
        values = {"id": str(a["id"]), "received": _when(a.get("received_at")), "severity": a.get("severity") or "",
                  "rule": a.get("rule") or "", "key": a.get("key") or "", "tenant": a.get("tenant") or "",
                  "service": a.get("service") or "", "state": alert_state(a),
                  "window": f"{_when(start)} – {_when(end)}", "value": "" if a.get("value") is None else str(a["value"]),
                  "why": a.get("why") or "", "by": a.get("acked_by") or silenced,
                  "anomaly_id": a.get("anomaly_id") or "",
                  "logs": logs_url(start, end, a.get("service"), a.get("key"), a.get("tenant"))}
        for c in COLUMNS:
            rows[c].append(values[c])
    return rows


def _column(name: str, width: int, link: HTMLTemplateFormatter) -> TableColumn:
    if name == "logs":
        return TableColumn(field=name, title=name, width=width, formatter=link)
    return TableColumn(field=name, title=name, width=width)


class AlertActions:
    """Acknowledge, silence, feedback: with the visitor's credentials, for admins only."""

    def __init__(self, context: PageContext, grant: Grant) -> None:
        self.api, self.grant = context.api, grant

    def _admin(self) -> None:
        if not self.grant.is_admin:
            raise ApiError(403, f"{self.grant.principal} may not act on alerts: it needs role admin")

    def acknowledge(self, alert_id: str, note: str = "") -> dict:
        """``POST /alerts/{id}/ack``."""
        self._admin()
        return self.api.post_json(f"/alerts/{quote(alert_id, safe='')}/ack", self.grant.authorization,
                                  {"by": self.grant.who, "note": note})

    def silence(self, alert_id: str, duration: str, reason: str) -> dict:
        """``POST /alerts/{id}/silence``: the alert's rule and key, for ``duration``."""
        self._admin()
        return self.api.post_json(f"/alerts/{quote(alert_id, safe='')}/silence", self.grant.authorization,
                                  {"by": self.grant.who, "duration": duration, "reason": reason})

    def feedback(self, alert_id: str, choice: str) -> dict:
        """``POST /alerts/{id}/verdict`` with the verdict of ``choice`` (see ``VERDICTS``): any alert, rule or
        ML, teaches the model of what is actionable."""
        self._admin()
        return self.api.post_json(f"/alerts/{quote(alert_id, safe='')}/verdict", self.grant.authorization,
                                  {"verdict": VERDICTS[choice], "by": self.grant.who})


class AlertsPage:
    """The widgets and what they do; one per browser session."""

    def __init__(self, doc: Document, context: PageContext, grant: Grant) -> None:
        self.doc, self.context, self.grant = doc, context, grant
        self.actions = AlertActions(context, grant)
        self.alerts: list[dict[str, Any]] = []
        self.state = RadioButtonGroup(labels=STATES, active=0, name="alerts_state")
        self.source = ColumnDataSource(alert_rows([], "all"), name="alerts_rows")
        link = HTMLTemplateFormatter(template="<a href='<%= value %>' class='alert-logs'>logs</a>")
        widths = {"id": 50, "received": 140, "severity": 70, "window": 280, "logs": 50, "state": 90, "why": 300}
        self.table = DataTable(source=self.source, index_position=None, height=420, sizing_mode="stretch_width",
                               name="alerts_table", columns=[_column(c, widths.get(c, 110), link) for c in COLUMNS])
        self.message = Div(text="", name="alerts_message", sizing_mode="stretch_width")
        self.state.on_change("active", lambda _attr, _old, _new: self._show_rows())
        self.source.selected.on_change("indices", lambda _attr, _old, _new: self._selected_changed())

    def layout(self):
        """The page's root: the admin's action controls only for an admin."""
        who = html.escape(f"{self.grant.principal.name or 'local'} (tenant {self.grant.principal.tenant}, "
                          f"role {self.grant.principal.role})")
        header = Div(text=f"<h2>logwarden · alerts</h2>{NAV}<p>as {who}; select an alert to act on it, "
                          f"“logs” opens the records of its window.</p>", sizing_mode="stretch_width")
        parts = [header, self.state, self.table]
        if self.grant.is_admin:
            parts.append(self._action_controls())
        else:
            parts.append(Div(text="<p class='read-only'>Read-only token: acknowledging, silencing and feedback "
                                  "need a token with role admin.</p>", name="alerts_read_only"))
        parts.append(self.message)
        return column(*parts, sizing_mode="stretch_width", name="alerts_page")

    def _action_controls(self):
        ack = Button(label="Acknowledge", button_type="primary", name="alert_ack")
        duration = Select(title="silence for", value="1h", options=SILENCE_DURATIONS, name="alert_silence_duration")
        reason = TextInput(title="reason", value="silenced from the dashboard", name="alert_silence_reason")
        silence = Button(label="Silence", button_type="warning", name="alert_silence")
        verdict = Select(title="Verdict", value="actionable", options=list(VERDICTS), name="alert_verdict")
        feedback = Button(label="Send feedback", name="alert_feedback")
        ack.on_click(lambda: self._act("acknowledged", lambda a: self.actions.acknowledge(a["id"])))
        silence.on_click(lambda: self._act("silenced", lambda a: self.actions.silence(
            a["id"], duration.value, reason.value.strip() or "silenced from the dashboard")))
        feedback.on_click(lambda: self._act("feedback sent", lambda a: self.actions.feedback(
            str(a["id"]), verdict.value)))
        return row(ack, duration, reason, silence, verdict, feedback, sizing_mode="stretch_width",
                   name="alerts_actions")

    def _selected(self) -> dict[str, str] | None:
        indices = self.source.selected.indices
        if not indices or indices[0] >= len(self.source.data["id"]):
            return None
        return {c: self.source.data[c][indices[0]] for c in COLUMNS}

    def _selected_changed(self) -> None:
        alert = self._selected()
        if alert is not None:
            self.message.text = (f"selected: alert {html.escape(alert['id'])} · {html.escape(alert['rule'])} · "
                                 f"{html.escape(alert['key'])} ({html.escape(alert['state'])})")

    def _act(self, done: str, call) -> None:
        alert = self._selected()
        if alert is None:
            self.message.text = "<span class='error'>select an alert first</span>"
            return

        def finished(_result: Any, error: Exception | None) -> None:
            if error is not None:
                text = error.message if isinstance(error, ApiError) else str(error)
                self.message.text = (f"<span class='error action-error'>alert {html.escape(alert['id'])}: "
                                     f"{html.escape(text)}</span>")
            else:
                self.message.text = f"<span class='action-done'>alert {html.escape(alert['id'])}: {done}</span>"
            self.refresh()

        in_background(self.doc, lambda: call(alert), finished)

    def refresh(self) -> None:
        """Reload the alerts from the API."""
        api, authorization = self.context.api, self.grant.authorization
        in_background(self.doc, lambda: api.get_json("/alerts", authorization, [("limit", "500")]), self._loaded)

    def _loaded(self, alerts: list[dict[str, Any]] | None, error: Exception | None) -> None:
        if error is not None:
            text = error.message if isinstance(error, ApiError) else str(error)
            self.message.text = f"<span class='error'>alerts unavailable: {html.escape(text)}</span>"
            return
        self.alerts = alerts or []
        self._show_rows()

    def _show_rows(self) -> None:
        selected = self._selected()
        rows = alert_rows(self.alerts, STATES[self.state.active])
        if rows == dict(self.source.data):
            return
        self.source.data = rows
        keep = [rows["id"].index(selected["id"])] if selected and selected["id"] in rows["id"] else []
        self.source.selected.indices = keep


def build_alerts(doc: Document, context: PageContext) -> None:
    """Lay out the alerts page on ``doc`` for the person it was made for."""
    doc.title = "logwarden · alerts"
    grant = grant_of(doc, context.auth)
    if grant is None:
        doc.add_root(Div(text="<p>Your dashboard session has expired: reload the page.</p>", name="alerts_page"))
        return
    page = AlertsPage(doc, context, grant)
    doc.add_root(page.layout())
    page.refresh()
    doc.add_periodic_callback(page.refresh, REFRESH_MS)
