"""The window model: IsolationForest on per-service minute features, learned threshold, minimum duration."""
from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

from logwarden.monitoring.ml import MlRule
from logwarden.monitoring.ml.features import FEATURES, window_features
from logwarden.monitoring.ml.window_model import fit_window_model
from tests.ml.traffic import Incident, minute_us

SPEC = {"name": "svc_windows", "kind": "ml", "severity": "HIGH", "model": "window", "min_duration": "3m",
        "description": "Per-service minute windows unlike the learned baseline."}


def _run(rule, batches):
    out = []
    for batch in batches:
        out += rule.add_data(batch)
    return out


def test_features_cover_levels_latency_users_and_templates(traffic_run):
    _, history, _, _ = traffic_run
    known: dict[str, set[str]] = {}
    features = window_features(history[0], known)
    assert set(features.services) == {"checkout", "auth"}
    row = dict(zip(FEATURES, features.matrix[features.services.index("checkout", 2)]))
    assert row["count"] == row["count_debug"] + row["count_info"] + row["count_warning"] + row["count_error"]
    assert 10 < row["duration_p50"] < 100 and row["distinct_users"] > 10 and row["template_entropy"] > 1
    assert features.first[:2] == [True, True] and not any(features.first[2:])


def test_threshold_is_learned_and_normal_minutes_stay_below(traffic_run):
    _, history, live, _ = traffic_run
    known: dict[str, set[str]] = {}
    train = window_features(pa.concat_tables(history), known)
    fresh = window_features(pa.concat_tables(live), known)
    for service, incident_minutes in (("checkout", range(160, 170)), ("auth", range(175, 180))):
        rows = train.matrix[[s == service and not f for s, f in zip(train.services, train.first)]]
        model = fit_window_model(rows)
        assert model.n_train == len(rows) and np.quantile(model.reference_scores, 0.99) == model.threshold
        mine = [i for i, s in enumerate(fresh.services) if s == service]
        minutes = [(fresh.minutes_us[i] - minute_us(0)) // 60_000_000 for i in mine]
        scores = model.score(fresh.matrix[mine])
        normal = np.array([m < 160 for m in minutes])
        during = np.array([m in incident_minutes for m in minutes])
        assert (scores[normal] > model.threshold).mean() <= 0.1, scores[normal]
        assert (scores[during] > model.threshold).mean() >= 0.8, (service, scores[during], model.threshold)
        assert model.confidence(scores[during]).min() > 0.95


@pytest.fixture(scope="module")
def trained_rule(traffic_run) -> bytes:
    """A window rule that learned its baseline from the history batches, pickled."""
    _, history, _, _ = traffic_run
    rule = MlRule(SPEC)
    assert _run(rule, history) == []                      # learns the baseline from history, in process
    assert set(rule.stream.models.models) == {"checkout", "auth"}
    return pickle.dumps(rule)


def test_rule_fires_after_min_duration_explains_and_resolves(traffic_run, trained_rule):
    _, _, live, _ = traffic_run
    rule = pickle.loads(trained_rule)
    out = _run(rule, live)
    firing = [a for a in out if a.status == "firing"]
    by_key = {a.key: a for a in reversed(firing)}          # first firing per key
    assert set(by_key) == {"checkout", "auth"}
    checkout = by_key["checkout"]
    assert checkout.window_start == "2026-11-01T02:40:00Z" and checkout.window_end == "2026-11-01T02:43:00Z"
    assert checkout.value > float(checkout.threshold.split()[1])
    assert checkout.samples[0].startswith("ml: ") and '"feature":"duration_p50"' in checkout.samples[0]
    assert "confidence" in checkout.description and checkout.kind == "ml" and checkout.severity == "HIGH"
    assert '"count_error"' in by_key["auth"].samples[0] or '"error_rate"' in by_key["auth"].samples[0]
    resolved = [a for a in out if a.status == "resolved"]
    assert {a.key for a in resolved} == {"checkout", "auth"}


def test_a_single_odd_minute_does_not_fire(traffic_run, trained_rule):
    traffic, _, _, _ = traffic_run
    clone = pickle.loads(trained_rule)                   # the rule's state is picklable and keeps working
    spike = traffic.table(traffic.minutes(300, 6, [Incident("latency", "checkout", 302, 303)]))
    assert [a for a in clone.add_data(spike) + clone.advance(minute_us(310)) if a.status == "firing"] == []
