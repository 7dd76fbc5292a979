"""A circuit breaker per channel: after N consecutive failures the channel is left alone for a
while (open), then one trial message decides (half-open)."""

from __future__ import annotations

import threading
import time

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures → half-open after ``reset_after`` seconds."""

    def __init__(self, failures: int, reset_after: float, clock=time.monotonic) -> None:
        self.threshold = failures
        self.reset_after = reset_after
        self.clock = clock
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.opened_count = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """closed, open or half_open."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if self.clock() - self.opened_at >= self.reset_after else OPEN

    def allow(self) -> bool:
        """Whether a delivery may be attempted now."""
        with self._lock:
            return self._state() != OPEN

    def seconds_until_trial(self) -> float:
        """How long until an open breaker lets one trial through (0 when not open)."""
        with self._lock:
            if self._state() != OPEN:
                return 0.0
            return max(0.0, self.reset_after - (self.clock() - self.opened_at))

    def success(self) -> None:
        """A delivery succeeded: close."""
        with self._lock:
            self.consecutive_failures = 0
            self.opened_at = None

    def failure(self) -> None:
        """A delivery failed: open after the threshold (or again after a failed trial)."""
        with self._lock:
            self.consecutive_failures += 1
            if self._state() == HALF_OPEN or (
                self.opened_at is None and self.consecutive_failures >= self.threshold
            ):
                self.opened_at = self.clock()
                self.opened_count += 1
