"""Exponential backoff with jitter."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``initial * 2**(attempt-1)``,
    capped at ``maximum``, with "equal jitter" (a uniform draw between half and all of it)."""
    base = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return base / 2 + (rng or random).uniform(0, base / 2)
