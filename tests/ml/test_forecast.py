"""Error-rate forecast: alerts before a rising error rate crosses the threshold, not on steady noise."""
from __future__ import annotations

import numpy as np

from logwarden.monitoring.ml import MlRule
from logwarden.monitoring.ml.forecast import Holt, first_crossing
from tests.ml.traffic import Incident, Traffic


def test_holt_projects_a_ramp_and_ignores_noise():
    ramp = Holt()
    for minute, value in enumerate(np.linspace(0.0, 0.03, 21)):  # +0.0015/min: 0.05 is 13 minutes ahead
        ramp.update(float(value), minute * 60_000_000)
    crossing = first_crossing(ramp, ">", 0.05, 30)
    assert crossing is not None and 10 <= crossing.minutes_ahead <= 16
    assert first_crossing(ramp, ">", 0.05, 5) is None
    steady = Holt()
    rng = np.random.default_rng(0)
    for minute in range(200):
        steady.update(float(abs(rng.normal(0.01, 0.003))), minute * 60_000_000)
        assert first_crossing(steady, ">", 0.05, 30) is None


def test_forecast_rule_warns_before_the_threshold_is_reached():
    traffic = Traffic(seed=5, services=("checkout",), rate_per_minute=30)
    rule = MlRule({"name": "error_trend", "kind": "ml", "severity": "MEDIUM", "model": "forecast",
                   "threshold": {"op": ">", "value": 0.05}, "horizon": "30m", "min_points": 10})
    steady = [a for b in traffic.batches(0, 40) for a in rule.add_data(b)]
    assert steady == []
    ramp = [Incident("ramp", "checkout", 40, 100, strength=0.6)]  # request error rate 1% -> 61% over an hour
    out = []
    for batch in traffic.batches(40, 60, ramp):
        out += rule.add_data(batch)
    firing = [a for a in out if a.status == "firing"]
    assert firing, "the ramp was not forecast"
    first = firing[0]
    assert first.value > 0.05 and "forecast" in first.description and "in " in first.description
    level = float(first.description.split("error rate ")[1].split()[0])
    assert level < 0.05                                   # warned while the error rate was still below
