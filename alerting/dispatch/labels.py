"""The labels of an alert, which the routing tree, inhibition rules and silences match on.

``rule`` (also as ``alertname``, the name Alertmanager users write), ``severity``, ``service``,
``tenant``, ``key``, and the ``team``, ``tier`` and ``environment`` the service inventory gives the
service (the inventory's ``default`` for a service it does not list; absent when it says nothing),
and ``actionable``, the learned confidence that the alert is actionable (``monitoring.ml.actionable``),
only once the model of its tenant exists (``0.9312``; match it with ``actionable>=0.8``).
"""

from __future__ import annotations

from typing import Any

from logwarden.alerting.format import service_of
from logwarden.monitoring.anomaly import Anomaly
from logwarden.processing.enrich import Inventory

INVENTORY_LABELS = ("team", "tier", "environment")
LABELS = ("rule", "alertname", "severity", "service", "tenant", "key", *INVENTORY_LABELS, "actionable")


def alert_labels(anomaly: Anomaly, inventory: Inventory | None = None) -> dict[str, str]:
    """The labels of ``anomaly`` (with its service's inventory entry when ``inventory`` is given)."""
    service = service_of(anomaly)
    labels = {
        "rule": anomaly.rule,
        "alertname": anomaly.rule,
        "severity": anomaly.severity,
        "service": service,
        "tenant": anomaly.tenant,
        "key": anomaly.key,
    }
    if anomaly.actionable is not None:
        labels["actionable"] = f"{float(anomaly.actionable):.4f}"
    if inventory is not None:
        labels.update(inventory_labels(inventory, service))
    return labels


def inventory_labels(inventory: Inventory, service: str) -> dict[str, str]:
    """``team``, ``tier`` and ``environment`` of ``service`` (those the inventory sets)."""
    info = inventory.services.get(service, inventory.default)
    out: dict[str, str] = {}
    for name in INVENTORY_LABELS:
        value: Any = getattr(info, name)
        if value is not None:
            out[name] = str(value)
    return out


def with_inventory(labels: dict[str, str], inventory: Inventory | None) -> dict[str, str]:
    """``labels`` completed with the inventory labels of their ``service`` (those not given already),
    for labels typed by hand (``logwarden routes test``); ``alertname`` follows ``rule``."""
    out = dict(labels)
    if "rule" in out:
        out.setdefault("alertname", out["rule"])
    if inventory is not None and out.get("service"):
        for name, value in inventory_labels(inventory, out["service"]).items():
            out.setdefault(name, value)
    return out


__all__ = ["INVENTORY_LABELS", "LABELS", "alert_labels", "inventory_labels", "with_inventory"]
