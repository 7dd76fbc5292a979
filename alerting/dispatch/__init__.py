"""Dispatch: which channels an anomaly goes to (the routing tree, business hours and time intervals)
and how alerts are grouped.

The names below are loaded on first use, so that the configuration (``alerting.config``) can use the
matchers, intervals and tree of this package without importing the routing that reads it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BusinessHours": "logwarden.alerting.dispatch.hours",
    "is_open": "logwarden.alerting.dispatch.hours",
    "next_opening": "logwarden.alerting.dispatch.hours",
    "Route": "logwarden.alerting.dispatch.routing",
    "routes_for": "logwarden.alerting.dispatch.routing",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
