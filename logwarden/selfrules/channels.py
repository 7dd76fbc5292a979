"""``channel_failing`` (HIGH): an alert channel failing for ``channel_failing_for``, told through the others.

A channel is failing from its first failed delivery after its last successful one, while it still has
messages to deliver or its circuit breaker is open (``alerting.metrics``). The self-alert names its
channels: every configured channel but the failing one, and the dashboard.
"""
from __future__ import annotations

from logwarden.monitoring.self_rules import CHANNEL_FAILING
from logwarden.selfrules.base import Finding, SelfRule, SelfState, iso

DASHBOARD = "dashboard"


class ChannelFailing(SelfRule):
    """Fires for each channel failing for ``hold`` seconds."""

    name = CHANNEL_FAILING
    severity = "HIGH"
    action = ("Check the channel's credentials and endpoint (`logwarden alerts list`, the alerting log); its "
              "messages wait in the outbox and go out once it delivers again.")

    def __init__(self, hold: float) -> None:
        self.hold = hold

    def findings(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """One key per channel failing for ``hold`` seconds, routed to the other channels."""
        found = {}
        for channel, since in sorted(state.channels_failing.items()):
            if state.now - since < self.hold:
                continue
            others = tuple(c for c in state.channels if c != channel and c != DASHBOARD) + (DASHBOARD,)
            found[channel] = Finding(since, state.now - since, f"< {self.hold:.0f}s failing",
                                     f"alert channel {channel} fails since {iso(since)}; its alerts wait in the outbox",
                                     (f"channel: {channel}",), others)
        return found
