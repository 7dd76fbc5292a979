"""The console receiver: every alert printed as one line."""
from __future__ import annotations

import sys
from typing import TextIO

from logwarden.alerting.format import summary, title
from logwarden.monitoring.anomaly import Anomaly


class ConsoleNotifier:
    """Prints alerts to a stream (standard output by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, anomaly: Anomaly, channel: str) -> None:
        """Print the alert with the channel it is addressed to."""
        print(f"ALERT {title(anomaly)} → {channel}: {summary(anomaly)}", file=self.stream, flush=True)
