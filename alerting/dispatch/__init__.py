"""Dispatch: which channels an anomaly goes to (routing, business hours) and how alerts are grouped."""

from alerting.dispatch.hours import is_open, next_opening
from alerting.dispatch.routing import Route, routes_for

__all__ = ["Route", "is_open", "next_opening", "routes_for"]
