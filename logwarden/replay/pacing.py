"""Replay speed: ``max``, ``realtime`` or ``Nx`` of the records' event time."""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

#: The longest a replay waits for the next record, however far ahead in event time it lies.
MAX_WAIT_SECONDS = 60.0


def parse_speed(text: str) -> float | None:
    """``max`` -> None (no pacing); ``realtime`` -> 1.0; ``10x`` -> 10.0."""
    text = text.strip().lower()
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    if text.endswith("x"):
        try:
            factor = float(text[:-1])
        except ValueError:
            factor = 0.0
        if factor > 0:
            return factor
    raise ValueError(f"--speed takes max, realtime or Nx (e.g. 10x), not {text!r}")


class Pacer:
    """When each row is due: the first row at once, the others ``speed`` times faster than their
    event time went (never earlier than a row before them, at most MAX_WAIT_SECONDS apart)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.first_event_us: int | None = None
        self.started = 0.0
        self.latest_due = 0.0
        self.skipped = 0.0  # seconds of event-time gaps cut to MAX_WAIT_SECONDS so far

    def due(self, timestamps: pa.Array) -> np.ndarray:
        """Monotonic clock times at which the rows with these event times are due."""
        micros = timestamps.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
        if self.first_event_us is None:
            self.first_event_us, self.started = int(micros[0]), time.monotonic()
            self.latest_due = self.started
        wanted = self.started - self.skipped + (micros - self.first_event_us) / 1e6 / self.speed
        wanted = np.maximum.accumulate(np.maximum(wanted, self.latest_due))
        gaps = np.diff(wanted, prepend=self.latest_due)
        due = self.latest_due + np.cumsum(np.minimum(gaps, MAX_WAIT_SECONDS))
        self.skipped += float(wanted[-1] - due[-1])
        self.latest_due = float(due[-1])
        return due
