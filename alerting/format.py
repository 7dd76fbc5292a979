"""How an alert reads: the design's fields (type, service, count and window, severity, time, action)."""
from __future__ import annotations

from monitoring.anomaly import RESOLVED, Anomaly


def _hhmm(iso: str | None) -> str:
    return iso[11:19] if iso else "?"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def title(anomaly: Anomaly) -> str:
    """A one-line headline."""
    state = "RESOLVED" if anomaly.status == RESOLVED else anomaly.severity
    return f"[{state}] {anomaly.rule} · {anomaly.key}"


def summary(anomaly: Anomaly) -> str:
    """One line: value against threshold over the window, and the action required."""
    window = f"{anomaly.window_start[:10]} {_hhmm(anomaly.window_start)}–{_hhmm(anomaly.window_end)} UTC"
    text = f"value {_number(anomaly.value)} (threshold {anomaly.threshold}) in {window}"
    if anomaly.status != RESOLVED and anomaly.action:
        text += f" · action: {anomaly.action}"
    return text
