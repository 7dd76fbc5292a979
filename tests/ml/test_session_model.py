"""The session model: next-event model of normal template sequences; HDFS goal F1 >= 0.95 without labels."""
from __future__ import annotations

import csv

import pyarrow as pa

from logwarden.monitoring.ml import MlRule
from logwarden.monitoring.ml.session_model import NextEventModel, fit_session_model
from logwarden.monitoring.ml.sessions import SessionTracker
from tests.ml.traffic import Incident, minute_us
from tests.monitoring.helpers import rec, table


def _hdfs(shared_data):
    folder = shared_data / "anomaly" / "hdfs"
    train = [line.split() for line in (folder / "hdfs_train").read_text().splitlines() if line.strip()]
    with (folder / "robust_log_train.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return train, [r["Sequence"].split() for r in rows], [int(r["label"]) for r in rows]


def test_hdfs_f1_at_least_095_trained_on_normal_sessions_only(shared_data):
    train, test, labels = _hdfs(shared_data)
    assert len(train) == 4855 and len(test) == 12000
    model = fit_session_model(train)          # no labels: threshold from held-out normal sessions
    predicted = [model.score(s) > model.threshold for s in test]
    tp = sum(p and y for p, y in zip(predicted, labels))
    fp = sum(p and not y for p, y in zip(predicted, labels))
    fn = sum(y and not p for p, y in zip(predicted, labels))
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.95, (precision, recall, f1)
    assert precision >= 0.95 and recall >= 0.9


def test_unseen_template_is_the_most_surprising_step_and_is_explained():
    normal = [["open", "read", "close"]] * 50 + [["open", "read", "read", "close"]] * 50
    model = NextEventModel(history=2).fit(normal)
    assert model.score(["open", "read", "close"]) < model.score(["open", "close"]) < model.unseen_surprise
    worst = model.surprise(["open", "panic", "close"])
    assert worst.score == model.unseen_surprise and worst.event == "panic" and worst.position == 1
    assert worst.expected[0][0] == "read"
    missing_end = model.surprise(["open", "read"])
    assert missing_end.event == "</s>" and missing_end.expected[0][0] in ("close", "read")


def test_tracker_keys_by_field_or_regex_and_closes_after_timeout():
    rows = [rec(0, message="Receiving block blk_-1 src", template_id="A"),
            rec(1, message="Receiving block blk_7 src", template_id="A"),
            rec(2, message="PacketResponder for block blk_-1 terminating", template_id="B"),
            rec(50, message="no block here", template_id="C")]
    tracker = SessionTracker(key_field=None, key_regex=r"(blk_-?\d+)", timeout_us=30_000_000)
    batch = table([{k: v for k, v in r.items() if k != "template_id"} for r in rows])
    batch = batch.append_column("template_id", pa.array([r["template_id"] for r in rows]))
    assert tracker.add(batch) == 3
    closed = tracker.close(minute_us(0) + 25_000_000)
    assert closed == []
    closed = {s.key: s.events for s in tracker.close(batch["timestamp"][-1].value + 40_000_000)}
    assert closed == {"blk_-1": ["A", "B"], "blk_7": ["A"]}


def test_session_rule_flags_broken_requests(traffic_run):
    traffic, history, _, _ = traffic_run
    rule = MlRule({"name": "request_flow", "kind": "ml", "severity": "MEDIUM", "model": "session",
                   "session_key": "request_id", "session_timeout": "20s", "min_train": 3000, "realert": "0s"})
    normal_alerts = [a for batch in history for a in rule.add_data(batch) if a.status == "firing"]
    assert rule.stream.model is not None and rule.stream.model.n_train >= 3000
    scored_normal = rule.stream.scored
    assert scored_normal > 5000 and len(normal_alerts) / scored_normal < 0.01
    broken = traffic.table(traffic.minutes(400, 3, [Incident("broken_sessions", "checkout", 400, 403)]))
    out = [a for a in rule.add_data(broken) + rule.advance(minute_us(405)) if a.status == "firing"]
    explained = [a for a in out if "retrying payment" in a.samples[0]]
    assert len(explained) >= 20 and all(a.key.startswith("req-") for a in out)
    assert '"template":"end of session"' in explained[0].samples[0] or "expected" in explained[0].samples[0]
