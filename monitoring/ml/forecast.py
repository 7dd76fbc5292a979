"""Per-service error-rate forecast: Holt's linear exponential smoothing on per-minute error rates,
alerting when the forecast crosses a threshold within the horizon (30 minutes by default)."""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

COMPARE: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                      "<=": operator.le}


@dataclass
class Holt:
    """Level and trend of one series (per-minute steps)."""

    alpha: float = 0.3
    beta: float = 0.1
    level: float | None = None
    trend: float = 0.0
    points: int = 0
    last_minute_us: int | None = None

    def update(self, value: float, minute_us: int | None = None) -> None:
        """Fold in the value of the next minute (minutes without data keep the trend going)."""
        steps = 1
        if minute_us is not None and self.last_minute_us is not None:
            steps = max(1, (minute_us - self.last_minute_us) // 60_000_000)
        self.last_minute_us = minute_us
        self.points += 1
        if self.level is None:
            self.level = value
            return
        predicted = self.level + steps * self.trend
        level = self.alpha * value + (1 - self.alpha) * predicted
        self.trend = self.beta * (level - self.level) / steps + (1 - self.beta) * self.trend
        self.level = level

    def forecast(self, minutes_ahead: float) -> float:
        """The value expected ``minutes_ahead`` minutes after the last update."""
        return (self.level or 0.0) + minutes_ahead * self.trend


@dataclass
class Crossing:
    """A forecast crossing of the threshold."""

    minutes_ahead: int
    forecast: float
    level: float
    trend: float


def first_crossing(model: Holt, op: str, threshold: float, horizon_minutes: int,
                   min_points: int = 5) -> Crossing | None:
    """The first minute within the horizon where the forecast meets ``op threshold`` while the current
    level does not yet (``None`` when it does not, or with fewer than ``min_points`` minutes seen)."""
    if model.points < min_points or model.level is None:
        return None
    compare = COMPARE[op]
    if compare(model.level, threshold):
        return None
    for minutes in range(1, horizon_minutes + 1):
        value = model.forecast(minutes)
        if compare(value, threshold):
            return Crossing(minutes, value, model.level, model.trend)
    return None
