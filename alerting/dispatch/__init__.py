"""Dispatch: which channels an anomaly goes to (routing, business hours) and how alerts are grouped."""

from logwarden.alerting.dispatch.hours import is_open, next_opening
from logwarden.alerting.dispatch.routing import Route, routes_for

__all__ = ["Route", "is_open", "next_opening", "routes_for"]
