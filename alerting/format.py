"""How an alert reads: the design's fields (type, service, count and window, severity, time, action),
plus sample log lines and a link to the dashboard."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from logwarden.common.durations import format_duration
from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.anomaly import RESOLVED, Anomaly

SEVERITY_COLOURS = {"CRITICAL": "#B71C1C", "HIGH": "#E65100", "MEDIUM": "#F9A825", "LOW": "#1565C0"}
RESOLVED_COLOUR = "#2E7D32"
_SAMPLE = re.compile(r"^\S+ [A-Z]+ ([^:\s]+):")


def _hhmm(iso: str | None) -> str:
    return iso[11:19] if iso else "?"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        return (
            datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))
        ).total_seconds()
    except (AttributeError, ValueError):
        return None


def service_of(anomaly: Anomaly) -> str:
    """The service an anomaly concerns: its ``service`` field if set, else the one its sample lines
    share, else its key."""
    explicit = getattr(anomaly, "service", "")
    if explicit:
        return str(explicit)
    services = {match.group(1) for line in anomaly.samples if (match := _SAMPLE.match(line))}
    if len(services) == 1:
        return services.pop()
    return anomaly.key


def title(anomaly: Anomaly) -> str:
    """A one-line headline (the key after its tenant, for a tenant other than the default)."""
    state = "RESOLVED" if anomaly.status == RESOLVED else anomaly.severity
    tenant = getattr(anomaly, "tenant", DEFAULT_TENANT) or DEFAULT_TENANT
    key = anomaly.key if tenant == DEFAULT_TENANT else f"{tenant}/{anomaly.key}"
    return f"[{state}] {anomaly.rule} · {key}"


def why(anomaly: Anomaly) -> str:
    """Why an ML alert fired, in one line: its top signals with their values against normal ("" for the
    other rule kinds, whose value and threshold say it all)."""
    explanation = getattr(anomaly, "explanation", None) or {}
    return str(explanation.get("text") or "")


def signals(anomaly: Anomaly) -> list[dict]:
    """The top contributing signals of an ML alert (``[{"signal", "value", "normal", ...}]``)."""
    explanation = getattr(anomaly, "explanation", None) or {}
    return list(explanation.get("signals") or [])


def summary(anomaly: Anomaly) -> str:
    """One line: value against threshold over the window, why (ML alerts), and the action required."""
    window = f"{anomaly.window_start[:10]} {_hhmm(anomaly.window_start)}–{_hhmm(anomaly.window_end)} UTC"
    text = f"value {_number(anomaly.value)} (threshold {anomaly.threshold}) in {window}"
    reason = why(anomaly)
    if anomaly.status != RESOLVED and reason:
        text += f" · why: {reason}"
    if anomaly.status != RESOLVED and anomaly.action:
        text += f" · action: {anomaly.action}"
    return text


def alert_link(dashboard_url: str | None, anomaly: Anomaly) -> str | None:
    """The dashboard page of an alert, or None without a dashboard."""
    if not dashboard_url:
        return None
    sep = "&" if "?" in dashboard_url else "?"
    return (
        f"{dashboard_url}{sep}alert={quote(anomaly.id)}&rule={quote(anomaly.rule)}&key={quote(anomaly.key)}"
    )


@dataclass
class AlertView:
    """The design's alert, ready for any channel."""

    title: str
    type: str
    service: str
    severity: str
    status: str
    count_and_window: str
    value_vs_threshold: str
    window: str
    time: str
    action: str
    description: str
    samples: list[str] = field(default_factory=list)
    link: str | None = None
    colour: str = "#607D8B"
    dedup_key: str = ""
    why: str = ""  # ML alerts: the top signals against normal, one line

    def text(self) -> str:
        """Plain text, several lines (e-mail, webhooks, console)."""
        lines = [
            self.title,
            "",
            f"Type:      {self.type}",
            f"Service:   {self.service}",
            f"Severity:  {self.severity}" + (" (resolved)" if self.status == RESOLVED else ""),
            f"Count:     {self.count_and_window}",
            f"Value:     {self.value_vs_threshold}",
            f"Window:    {self.window}",
            f"Time:      {self.time}",
        ]
        if self.why:
            lines.append(f"Why:       {self.why}")
        if self.action:
            lines.append(f"Action:    {self.action}")
        if self.samples:
            lines += ["", "Sample lines:"] + [f"  {line}" for line in self.samples]
        if self.link:
            lines += ["", f"Dashboard: {self.link}"]
        return "\n".join(lines)


def view(anomaly: Anomaly, dashboard_url: str | None = None) -> AlertView:
    """The readable form of ``anomaly``."""
    resolved = anomaly.status == RESOLVED
    span = _seconds_between(anomaly.window_start, anomaly.window_end)
    span_text = format_duration(span) if span else "one event"
    if anomaly.kind == "threshold":
        count = f"value {_number(anomaly.value)} in one event"
    else:
        count = f"{_number(anomaly.value)} events in {span_text}"
    window = f"{anomaly.window_start[:10]} {_hhmm(anomaly.window_start)}–{_hhmm(anomaly.window_end)} UTC"
    return AlertView(
        title=title(anomaly),
        type=f"{anomaly.rule} ({anomaly.kind})",
        service=service_of(anomaly),
        severity=anomaly.severity,
        status=anomaly.status,
        count_and_window=count,
        value_vs_threshold=f"{_number(anomaly.value)} against threshold {anomaly.threshold}",
        window=window,
        time=anomaly.window_end,
        action="" if resolved else anomaly.action,
        description=anomaly.description,
        samples=list(anomaly.samples),
        link=alert_link(dashboard_url, anomaly),
        colour=RESOLVED_COLOUR if resolved else SEVERITY_COLOURS.get(anomaly.severity, "#607D8B"),
        dedup_key=anomaly.dedup_key,
        why="" if resolved else why(anomaly),
    )


def group_title(anomalies: list[Anomaly]) -> str:
    """The headline of a grouped message."""
    first = anomalies[0]
    if len(anomalies) == 1:
        return title(first)
    state = "RESOLVED" if all(a.status == RESOLVED for a in anomalies) else first.severity
    return f"[{state}] {first.rule} · {service_of(first)} · {len(anomalies)} alerts"
