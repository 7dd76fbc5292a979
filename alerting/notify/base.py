"""The receiver interface."""
from __future__ import annotations

from typing import Protocol

from monitoring.anomaly import Anomaly


class Notifier(Protocol):
    """Delivers one anomaly on one channel; raises on failure."""

    def send(self, anomaly: Anomaly, channel: str) -> None:
        """Deliver ``anomaly``, addressed to ``channel``."""
