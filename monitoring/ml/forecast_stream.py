"""Streaming side of the forecast: per-service per-minute error rates, smoothed, projected ahead."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from logwarden.monitoring.ml.finding import MINUTE_US, Finding, MinuteBuffer
from logwarden.monitoring.ml.forecast import Holt, first_crossing
from logwarden.processing.aggregate import minute_aggregates


class ForecastStream:
    """Alerts when a service's error-rate forecast crosses the threshold within the horizon in
    ``confirm`` consecutive minutes (one noisy minute does not make a trend)."""

    kind = "forecast"

    def __init__(self, op: str, threshold: float, horizon_us: int = 30 * MINUTE_US, alpha: float = 0.3,
                 beta: float = 0.1, min_points: int = 10, min_count: int = 1, quiet_us: int = 5 * MINUTE_US,
                 confirm: int = 2) -> None:
        self.op = op
        self.threshold = threshold
        self.horizon_minutes = max(1, int(horizon_us // MINUTE_US))
        self.alpha, self.beta = alpha, beta
        self.min_points = min_points
        self.min_count = min_count
        self.quiet_us = quiet_us
        self.buffer = MinuteBuffer(("timestamp", "service", "level", "duration_ms", "user_id"))
        self.confirm = confirm
        self.series: dict[str, Holt] = {}
        self.streak: dict[str, int] = {}
        self.scored = 0

    def use_model(self, model: object) -> None:
        """The forecast learns online; there is no trained model to load."""

    def add(self, table: pa.Table) -> list[Finding]:
        """Buffer records until their minute closes."""
        self.buffer.add(table)
        return []

    def close(self, watermark_us: int) -> list[Finding]:
        """Update each service's smoothing with its closed minutes; findings for forecast crossings."""
        done = self.buffer.pop_closed(watermark_us)
        if done is None:
            return []
        for name, kind in (("duration_ms", pa.float64()), ("user_id", pa.string())):
            if name not in done.column_names:
                done = done.append_column(name, pa.nulls(done.num_rows, kind))
        minutes = minute_aggregates(done).sort_by([("bucket", "ascending")])
        findings = []
        columns = (minutes["service"].to_pylist(), pc.cast(minutes["bucket"], pa.int64()).to_pylist(),
                   minutes["count"].to_pylist(), minutes["error_rate"].to_pylist())
        for service, bucket, count, rate in zip(*columns):
            if count < self.min_count:
                continue
            model = self.series.setdefault(service, Holt(self.alpha, self.beta))
            model.update(rate, bucket)
            self.scored += 1
            crossing = first_crossing(model, self.op, self.threshold, self.horizon_minutes, self.min_points)
            self.streak[service] = 0 if crossing is None else self.streak.get(service, 0) + 1
            if crossing is None or self.streak[service] < self.confirm:
                continue
            findings.append(Finding(
                key=service, start_us=bucket, end_us=bucket + MINUTE_US, score=crossing.forecast,
                threshold=self.threshold,
                confidence=round(min(1.0, 1.0 - crossing.minutes_ahead / (self.horizon_minutes + 1)), 4),
                pattern=f"{service}|forecast",
                summary=(f"{service}: error rate {crossing.level:.4f} trending {crossing.trend:+.5f}/min, "
                         f"forecast {crossing.forecast:.4f} {self.op} {self.threshold} in "
                         f"{crossing.minutes_ahead} min"),
                explanation={"model": "forecast",
                             "features": [{"feature": "error_rate", "value": round(rate, 5),
                                           "level": round(crossing.level, 5),
                                           "trend_per_min": round(crossing.trend, 6)}],
                             "minutes_ahead": crossing.minutes_ahead,
                             "forecast": round(crossing.forecast, 5)},
                payload={"service": service, "error_rate": rate}))
        return findings

    def due(self, watermark_us: int) -> bool:
        """Nothing to fit in process."""
        return False

    def garbage_collect(self, watermark_us: int) -> None:
        """Forget services silent for a day."""
        for service in [s for s, m in self.series.items()
                        if m.last_minute_us is not None and watermark_us - m.last_minute_us > 86_400_000_000]:
            del self.series[service]
            self.streak.pop(service, None)
