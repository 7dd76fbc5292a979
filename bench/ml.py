"""Benchmark of the ML detectors (``monitoring/ml``); prints JSON.

    python bench/ml.py [--data ../shared/data] [--skip-synthetic]
    python bench/ml.py --hdfs-eval FILE     # {"precision", "recall", "f1"} of the session model on FILE
    python bench/ml.py --false-alarms       # ML alerts of the default rules file on 12 h of normal traffic
    python bench/ml.py --incidents          # the four incidents no threshold rule catches: found, delay
    python bench/ml.py --false-alarms       # ML alerts of the default rules file on 12 h of normal traffic
    python bench/ml.py --incidents          # the four incidents no threshold rule catches: found, delay
    python bench/ml.py --learning-curve     # the actionable model learning from simulated verdicts

- ``hdfs``: the session model trained on ``anomaly/hdfs/hdfs_train`` (normal sessions only, threshold from
  held-out normal sessions, no labels) and evaluated on ``robust_log_train.csv`` (and on
  ``hdfs_test_abnormal``, all anomalous: recall only); threshold-quantile sensitivity; sessions/s.
- ``bgl``: line-level results of the new/rare-template detector on the labelled Loghub BGL sample
  (a line is an alert when its first field is not ``-``), against flagging every FATAL line.
- ``window``, ``new_template``, ``forecast``, ``feedback``: seeded synthetic service traffic
  (``tests/ml/traffic.py``) with injected incidents — detection, delay, false alarms, windows/s.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from logwarden.monitoring.ml import FeedbackStore, MlRule  # noqa: E402
from logwarden.monitoring.ml.features import window_features  # noqa: E402
from logwarden.monitoring.ml.session_model import fit_session_model  # noqa: E402
from logwarden.monitoring.ml.templates import TemplateNoveltyDetector  # noqa: E402
from logwarden.processing.templates import HeaderFormat, TemplateMiner  # noqa: E402
from tests.ml.traffic import Incident, Traffic, minute_us  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("LOGWARDEN_SHARED_DATA", REPO.parent / "shared" / "data"))
BGL_FORMAT = "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>"
BGL_LEVELS = {"FATAL": "CRITICAL", "SEVERE": "ERROR", "FAILURE": "CRITICAL", "ERROR": "ERROR",
              "WARNING": "WARNING", "INFO": "INFO"}


def prf(predicted: list[bool], labels: list[bool]) -> dict:
    """Precision, recall, F1 and the confusion counts."""
    predicted = [bool(p) for p in predicted]
    tp = sum(p and y for p, y in zip(predicted, labels))
    fp = sum(p and not y for p, y in zip(predicted, labels))
    fn = sum(y and not p for p, y in zip(predicted, labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn}


# HDFS sessions -------------------------------------------------------------------------------
def read_sequences(path: Path) -> tuple[list[list[str]], list[bool] | None]:
    """Sessions of a ``Sequence,label`` CSV (labels) or of a file of space-separated ids (no labels)."""
    text = path.read_text()
    if text.startswith("Sequence"):
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [r["Sequence"].split() for r in rows], [r["label"].strip() == "1" for r in rows]
    return [line.split() for line in text.splitlines() if line.strip()], None


def train_hdfs(data: Path, quantile: float = 0.99):
    """The session model trained on the normal HDFS sessions; (model, seconds)."""
    train, _ = read_sequences(data / "anomaly" / "hdfs" / "hdfs_train")
    started = time.perf_counter()
    model = fit_session_model(train, quantile=quantile)
    return model, time.perf_counter() - started


def evaluate(model, path: Path) -> dict:
    """P/R/F1 of ``model`` on a labelled ``Sequence,label`` file."""
    sessions, labels = read_sequences(path)
    if labels is None:
        raise SystemExit(f"{path}: not a labelled Sequence,label file")
    return prf([model.score(s) > model.threshold for s in sessions], labels)


def bench_hdfs(data: Path) -> dict:
    """Every HDFS figure."""
    folder = data / "anomaly" / "hdfs"
    model, fit_s = train_hdfs(data)
    sessions, labels = read_sequences(folder / "robust_log_train.csv")
    started = time.perf_counter()
    scores = model.score_many(sessions)
    score_s = time.perf_counter() - started
    abnormal, _ = read_sequences(folder / "hdfs_test_abnormal")
    abnormal_scores = model.score_many(abnormal)
    sensitivity = {}
    for q in (0.98, 0.99, 0.995):
        threshold = max(float(np.quantile(model.reference_scores, q)), -math.log(0.001))
        sensitivity[str(q)] = {"threshold": round(threshold, 3),
                               **{k: v for k, v in prf(list(scores > threshold), labels).items() if k in
                                  ("precision", "recall", "f1")}}
    return {
        "model": f"next-event counts, history {model.history}, back-off alpha {model.alpha}",
        "train_sessions": model.n_train, "templates": len(model.vocabulary),
        "threshold": round(model.threshold, 3),
        "threshold_rule": ("max(0.99 quantile of 5-fold held-out scores of the normal training sessions, "
                           "-log(0.001))"),
        "fit_seconds": round(fit_s, 2),
        "robust_log_train": {"sessions": len(sessions), **prf(list(scores > model.threshold), labels)},
        "hdfs_test_abnormal": {"sessions": len(abnormal),
                               "recall": round(float((abnormal_scores > model.threshold).mean()), 4)},
        "threshold_quantile_sensitivity": sensitivity,
        "sessions_per_s": round(len(sessions) / score_s),
        "published_f1": {"PCA": 0.77, "InvariantsMining": 0.92, "DeepLog": "0.95-0.96"},
    }


# BGL lines -------------------------------------------------------------------------------------
def bench_bgl(data: Path, warmup_fraction: float = 0.2, rare_below: int = 10) -> dict:
    """Line-level results of the new/rare-template detector on the labelled BGL sample."""
    header = HeaderFormat(BGL_FORMAT)
    lines = (data / "loghub" / "BGL" / "BGL_2k.log").read_text(errors="replace").splitlines()
    miner = TemplateMiner()
    parsed = []
    for line in lines:
        fields = line.split(" ", 9)
        parsed.append((fields[0] != "-", int(fields[1]) * 1_000_000, fields[7],
                       BGL_LEVELS.get(fields[8], "INFO"),
                       header.content(line)))
    warm_until = parsed[int(len(parsed) * warmup_fraction)][1]
    detector = TemplateNoveltyDetector(None, learn_for_us=warm_until - parsed[0][1])
    new_flags, rare_flags = [], []
    for _, at, component, level, content in parsed:
        match = miner.add(content)
        seen = detector.baseline.counts.get(component, {}).get(match.template_id, 0)
        event = detector.observe(component, match.template_id, match.template, level, at)
        severe_after_warmup = level in detector.levels and at >= warm_until
        new_flags.append(event is not None)
        rare_flags.append(severe_after_warmup and seen < rare_below)
    labels = [p[0] for p in parsed]
    after = [i for i, p in enumerate(parsed) if p[1] >= warm_until]
    fatal = [p[3] == "CRITICAL" for p in parsed]

    def on(indices, flags):
        return prf([flags[i] for i in indices], [labels[i] for i in indices])

    every = range(len(parsed))
    return {
        "lines": len(parsed), "alert_lines": sum(labels), "warmup_lines": len(parsed) - len(after),
        "after_warmup_alert_lines": sum(labels[i] for i in after),
        "new_pattern_first_lines": {"all_lines": on(every, new_flags), "after_warmup": on(after, new_flags)},
        f"new_or_rare_below_{rare_below}": {"all_lines": on(every, rare_flags),
                                            "after_warmup": on(after, rare_flags)},
        "baseline_every_fatal_line": {"all_lines": on(every, fatal), "after_warmup": on(after, fatal)},
        "note": ("unsupervised, labels used only for scoring; service = BGL component; "
                 "FATAL->CRITICAL, SEVERE->ERROR"),
    }


# synthetic traffic -----------------------------------------------------------------------------
def _feed(rule: MlRule, batches: list[pa.Table]) -> list:
    out = []
    for batch in batches:
        out += rule.add_data(batch)
    return out


def _minute_of(iso: str) -> float:
    at = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    return (at.timestamp() * 1_000_000 - minute_us(0)) / 60_000_000


def bench_window(traffic: Traffic, history: list[pa.Table]) -> dict:
    """Window model: incidents detected, delay, false alarms, throughput."""
    spec = {"name": "svc_windows", "kind": "ml", "severity": "HIGH", "model": "window", "min_duration": "3m"}
    rule = MlRule(spec)
    started = time.perf_counter()
    _feed(rule, history)
    train_s = time.perf_counter() - started
    normal_batches = traffic.batches(150, 120)
    normal_rule = MlRule(spec)
    normal_rule.__setstate__(rule.__getstate__())
    started = time.perf_counter()
    normal_alerts = [a for a in _feed(normal_rule, normal_batches) if a.status == "firing"]
    rule_s = time.perf_counter() - started
    records = sum(b.num_rows for b in normal_batches)
    incidents = {}
    start = 300
    for kind in ("errors", "latency", "new_error", "broken_sessions"):
        probe = MlRule(spec)
        probe.__setstate__(rule.__getstate__())
        incident = Incident(kind, "checkout", start + 5, start + 15)
        alerts = [a for a in _feed(probe, traffic.batches(start, 25, [incident])) if a.status == "firing"
                  and a.key == "checkout"]
        first = min((_minute_of(a.window_end) for a in alerts), default=None)
        incidents[kind] = {"detected": bool(alerts),
                           "delay_minutes": None if first is None else round(first - incident.start, 1),
                           "explained_by": json.loads(alerts[-1].samples[0][4:])["features"][0]["feature"]
                           if alerts else None}
        start += 30
    known: dict[str, set[str]] = {}
    features = window_features(pa.concat_tables(normal_batches), known)
    model = rule.stream.models.models["checkout"]
    started = time.perf_counter()
    for row in features.matrix:
        model.score(row[None, :])
    one_s = time.perf_counter() - started
    batch = np.repeat(features.matrix, 20, axis=0)
    started = time.perf_counter()
    model.score(batch)
    batch_s = time.perf_counter() - started
    return {
        "train_minutes": 150, "services": sorted(rule.stream.models.models),
        "fit_seconds_in_rule": round(train_s, 2),
        "thresholds": {s: round(m.threshold, 4) for s, m in rule.stream.models.models.items()},
        "normal_minutes": 120, "false_alarms_on_normal": len(normal_alerts),
        "false_alarms_per_service_hour": round(len(normal_alerts) / (2 * 120 / 60), 3),
        "incidents_10min": incidents,
        "windows_per_s_one_by_one": round(len(features.matrix) / one_s),
        "windows_per_s_batched": round(len(batch) / batch_s),
        "records_per_s_through_rule": round(records / rule_s),
    }


def bench_session_rule(traffic: Traffic, history: list[pa.Table]) -> dict:
    """Session rule on synthetic requests: false alarms on normal requests, broken requests caught."""
    rule = MlRule({"name": "request_flow", "kind": "ml", "severity": "MEDIUM", "model": "session",
                   "session_key": "request_id", "session_timeout": "20s", "min_train": 3000, "realert": "0s"})
    _feed(rule, history)
    trained_on = rule.stream.model.n_train
    before = rule.stream.scored
    started = time.perf_counter()
    normal = [a for a in _feed(rule, traffic.batches(530, 60)) if a.status == "firing"]
    seconds = time.perf_counter() - started
    scored = rule.stream.scored - before
    incident = [Incident("broken_sessions", "checkout", 590, 595)]
    broken = [a for a in _feed(rule, traffic.batches(590, 5, incident)) + rule.advance(minute_us(597))
              if a.status == "firing"]
    caught = sum("retrying payment" in a.samples[0] for a in broken)
    return {"trained_on_sessions": trained_on, "normal_sessions_scored": scored,
            "false_alarms_on_normal": len(normal), "false_alarm_rate": round(len(normal) / max(scored, 1), 5),
            "broken_session_alerts": caught, "other_alerts_during_incident": len(broken) - caught,
            "sessions_per_s_through_rule": round(scored / seconds)}


def bench_templates(traffic: Traffic, history: list[pa.Table]) -> dict:
    """New-pattern detector on synthetic traffic: the injected new ERROR pattern, false alarms."""
    rule = MlRule({"name": "new_patterns", "kind": "ml", "severity": "LOW", "model": "new_template",
                   "learn_for": "1h", "realert": "0s"})
    _feed(rule, history)
    started = time.perf_counter()
    normal_batches = traffic.batches(450, 60)
    normal = [a for a in _feed(rule, normal_batches) if a.status == "firing"]
    seconds = time.perf_counter() - started
    incident = [a for a in _feed(rule, traffic.batches(510, 10, [Incident("new_error", "auth", 512, 515)]))
                if a.status == "firing"]
    return {"false_alarms_normal_hour": len(normal),
            "injected_new_error_detected": any("TLS handshake" in a.description for a in incident),
            "alerts_during_incident": len(incident),
            "records_per_s": round(sum(b.num_rows for b in normal_batches) / seconds)}


def bench_forecast() -> dict:
    """Forecast lead time on an error-rate ramp and false alarms on steady traffic."""
    traffic = Traffic(seed=5, services=("checkout",), rate_per_minute=30)
    spec = {"name": "error_trend", "kind": "ml", "severity": "MEDIUM", "model": "forecast",
            "threshold": {"op": ">", "value": 0.05}, "horizon": "30m"}
    steady_rule = MlRule(spec)
    steady = [a for a in _feed(steady_rule, traffic.batches(0, 180)) if a.status == "firing"]
    rule = MlRule(spec)
    _feed(rule, traffic.batches(0, 40))
    ramp = Incident("ramp", "checkout", 40, 100, strength=0.6)
    batches = traffic.batches(40, 60, [ramp])
    alerts = [a for a in _feed(rule, batches) if a.status == "firing"]
    actual = None
    for minute_table in batches:
        levels = minute_table["level"].to_pylist()
        minutes = [int((t.timestamp() * 1e6 - minute_us(0)) // 60_000_000)
                   for t in minute_table["timestamp"].to_pylist()]
        per: dict[int, list[int]] = {}
        for m, level in zip(minutes, levels):
            per.setdefault(m, [0, 0])
            per[m][0] += 1
            per[m][1] += level in ("ERROR", "CRITICAL")
        for m in sorted(per):
            if actual is None and per[m][1] / per[m][0] > 0.05:
                actual = m
    first = _minute_of(alerts[0].window_end) if alerts else None
    return {"steady_minutes": 180, "false_alarms_steady": len(steady),
            "ramp_first_warning_minute": first, "ramp_first_minute_above_threshold": actual,
            "lead_time_minutes": None if first is None or actual is None else round(actual - first, 1)}


def bench_feedback() -> dict:
    """A false positive suppresses the same pattern on replay."""
    from tests.monitoring.helpers import rec, table

    def batch(miner, records):
        t = table(records)
        matches = [miner.add(m) for m in t["message"].to_pylist()]
        t = t.append_column("template_id", pa.array([m.template_id for m in matches]))
        return t.append_column("template", pa.array([m.template for m in matches]))

    def replay(data_dir):
        miner = TemplateMiner()
        rule = MlRule({"name": "new_patterns", "kind": "ml", "severity": "LOW", "model": "new_template",
                       "learn_for": "1m", "realert": "0s", "data_dir": str(data_dir)})
        rule.add_data(batch(miner, [rec(i, "pay", "INFO", f"ok {i}") for i in range(0, 120, 5)]))
        news = batch(miner, [rec(200, "pay", "ERROR", "cache node 3 evicted keys")])
        return rule, [a for a in rule.add_data(news) if a.status == "firing"]

    with tempfile.TemporaryDirectory() as data_dir:
        _, before = replay(data_dir)
        FeedbackStore.for_data_dir(data_dir).set_feedback(before[0].id, "false-positive", "bench")
        rule, after = replay(data_dir)
    return {"alerts_before_feedback": len(before), "alerts_after_false_positive": len(after),
            "suppressed": rule.suppressed}


# learning curve of the actionable model (--learning-curve) -------------------------------------
CURVE_POINTS = (50, 100, 200, 500)
CURVE_SEEDS = (0, 1, 2)
CURVE_FIRST_RANDOM = 10  # verdicts asked at random before the model can pick its questions
CURVE_BATCH = 10  # questions per retraining, up to 200 verdicts (50 beyond)


def hdfs_session_items(data: Path) -> tuple[list[dict], list[bool], list[list[str]]]:
    """Features (event ids as text, log length), labels and sequences of ``robust_log_train.csv``."""
    sessions, labels = read_sequences(data / "anomaly" / "hdfs" / "robust_log_train.csv")
    features = [{"text": " ".join(f"E{e}" for e in s), "numeric": {"events_log": math.log1p(len(s))}}
                for s in sessions]
    return features, labels or [], sessions


def bgl_line_items(data: Path) -> tuple[list[dict], list[bool], list[bool]]:
    """Features of the labelled BGL lines (``line_features`` of component, level, template, message),
    labels, and the flags of the unsupervised new-or-rare-template detector (as in ``bench_bgl``)."""
    from logwarden.monitoring.ml.actionable import line_features

    header = HeaderFormat(BGL_FORMAT)
    lines = (data / "loghub" / "BGL" / "BGL_2k.log").read_text(errors="replace").splitlines()
    miner, features, labels, parsed = TemplateMiner(), [], [], []
    for line in lines:
        fields = line.split(" ", 9)
        content, level = header.content(line), BGL_LEVELS.get(fields[8], "INFO")
        match = miner.add(content)
        parsed.append((int(fields[1]) * 1_000_000, fields[7], level, match))
        features.append(line_features({"service": fields[7], "level": level, "template": match.template,
                                       "message": content}))
        labels.append(fields[0] != "-")
    warm_until = parsed[int(len(parsed) * 0.2)][0]
    detector = TemplateNoveltyDetector(None, learn_for_us=warm_until - parsed[0][0])
    flags = []
    for at, component, level, match in parsed:
        seen = detector.baseline.counts.get(component, {}).get(match.template_id, 0)
        detector.observe(component, match.template_id, match.template, level, at)
        flags.append(level in detector.levels and at >= warm_until and seen < 10)
    return features, labels, flags


def stratified_split(labels: list[bool], seed: int, held_out: float = 0.3) -> tuple[list[int], list[int]]:
    """(pool, held-out) indices, each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    pool, test = [], []
    for cls in (True, False):
        members = rng.permutation([i for i, y in enumerate(labels) if y == cls]).tolist()
        cut = int(round(len(members) * held_out))
        test += members[:cut]
        pool += members[cut:]
    return rng.permutation(pool).tolist(), sorted(test)


def _item_key(item: dict) -> tuple:
    return item["text"], tuple(sorted(item["numeric"].items()))


def _proba(model, items: list[dict]) -> np.ndarray:
    """``model.proba`` of ``items``, each distinct item scored once (HDFS has 2,750 distinct sessions in 12,000)."""
    keys = [_item_key(item) for item in items]
    distinct = {key: n for n, key in enumerate(dict.fromkeys(keys))}
    firsts = {key: item for key, item in zip(keys, items)}
    scores = model.proba([firsts[key] for key in distinct])
    return np.array([scores[distinct[key]] for key in keys])


def _uncertain(model, features: list[dict], pool: list[int], asked: set[int], count: int) -> list[int]:
    """The ``count`` unasked pool items whose probability is nearest 0.5, one per distinct item (the same
    session asked twice teaches nothing new)."""
    left = [i for i in pool if i not in asked]
    order = np.argsort(np.abs(_proba(model, [features[i] for i in left]) - 0.5), kind="stable")
    chosen, seen = [], set()
    for j in order:
        key = _item_key(features[left[j]])
        if key not in seen:
            chosen.append(left[j])
            seen.add(key)
            if len(chosen) == count:
                break
    return chosen


def learning_run(features: list[dict], labels: list[bool], pool: list[int], test: list[int], strategy: str,
                 seed: int, points: tuple[int, ...] = CURVE_POINTS) -> dict[int, dict]:
    """A simulated operator answers questions (``uncertainty``: the model's least sure items; ``random``);
    P/R/F1 on ``test`` after each number of verdicts in ``points``, and ``unseen_f1``: F1 on the held-out
    items whose features no pool item has (HDFS repeats sessions: a held-out session may have a twin asked)."""
    from logwarden.monitoring.ml.actionable import fit_actionable

    rng = np.random.default_rng(seed + 1000)
    shuffled = rng.permutation(pool).tolist()
    asked: list[int] = []
    asked_set: set[int] = set()
    model, results = None, {}
    test_features, test_labels = [features[i] for i in test], [labels[i] for i in test]
    for point in points:
        while len(asked) < point:
            want = min(CURVE_BATCH if len(asked) < 200 else 5 * CURVE_BATCH, point - len(asked))
            if strategy == "uncertainty" and model is not None and len(asked) >= CURVE_FIRST_RANDOM:
                batch = _uncertain(model, features, pool, asked_set, want)
            else:
                batch = [i for i in shuffled if i not in asked_set][:want]
            asked += batch
            asked_set.update(batch)
            if strategy == "uncertainty" or len(asked) == point:  # random questions need no model on the way
                model = fit_actionable([features[i] for i in asked], [labels[i] for i in asked], min_verdicts=2)
        predicted = list(_proba(model, test_features) >= 0.5 if model is not None else [False] * len(test))
        results[point] = prf(predicted, test_labels)
        unseen = _unseen(features, pool, test)
        results[point]["unseen_f1"] = prf([predicted[n] for n in unseen], [test_labels[n] for n in unseen])["f1"]
    return results


def _unseen(features: list[dict], pool: list[int], test: list[int]) -> list[int]:
    """Positions in ``test`` of the items whose features no pool item has."""
    known = {_item_key(features[i]) for i in pool}
    return [n for n, i in enumerate(test) if _item_key(features[i]) not in known]


def _curve_table(runs: list[dict[int, dict]]) -> dict[str, dict]:
    """Mean and range of F1 (and mean precision, recall) per number of verdicts over the seeds."""
    table = {}
    for point in runs[0]:
        f1 = [run[point]["f1"] for run in runs]
        table[str(point)] = {"f1_mean": round(float(np.mean(f1)), 4), "f1_min": min(f1), "f1_max": max(f1),
                             "unseen_f1_mean": round(float(np.mean([r[point]["unseen_f1"] for r in runs])), 4),
                             "precision_mean": round(float(np.mean([r[point]["precision"] for r in runs])), 4),
                             "recall_mean": round(float(np.mean([r[point]["recall"] for r in runs])), 4)}
    return table


def learning_curve_of(features: list[dict], labels: list[bool], unsupervised, seeds: tuple[int, ...]) -> dict:
    """Uncertainty sampling, random questions and the unsupervised flags (a function of the held-out
    indices) on the same held-out split per seed."""
    runs: dict[str, list] = {"uncertainty": [], "random": []}
    baseline = []
    for seed in seeds:
        pool, test = stratified_split(labels, seed)
        for strategy in runs:
            runs[strategy].append(learning_run(features, labels, pool, test, strategy, seed))
        baseline.append(prf(unsupervised(test), [labels[i] for i in test]))
    pool, test = stratified_split(labels, seeds[0])
    unseen = [test[n] for n in _unseen(features, pool, test)]
    return {"items": len(labels), "positives": sum(labels), "pool": len(pool), "held_out": len(test),
            "held_out_unseen": {"items": len(unseen), "positives": sum(labels[i] for i in unseen)},
            "uncertainty_sampling": _curve_table(runs["uncertainty"]), "random_questions": _curve_table(runs["random"]),
            "unsupervised": {"f1_mean": round(float(np.mean([b["f1"] for b in baseline])), 4),
                             "precision_mean": round(float(np.mean([b["precision"] for b in baseline])), 4),
                             "recall_mean": round(float(np.mean([b["recall"] for b in baseline])), 4)}}


def bench_learning_curve(data: Path, seeds: tuple[int, ...] = CURVE_SEEDS) -> dict:
    """The learning curve of the actionable model on HDFS sessions and BGL lines, with the table of F1 per
    number of verdicts (uncertainty sampling, random questions, unsupervised model)."""
    features, labels, sessions = hdfs_session_items(data)
    session_model, _ = train_hdfs(data)
    scores = session_model.score_many(sessions)
    hdfs = learning_curve_of(features, labels, lambda test: [scores[i] > session_model.threshold for i in test],
                             seeds)
    hdfs["unsupervised"]["model"] = "session model trained on hdfs_train (normal sessions, no labels)"
    features, labels, flags = bgl_line_items(data)
    bgl = learning_curve_of(features, labels, lambda test: [flags[i] for i in test], seeds)
    bgl["unsupervised"]["model"] = "new-or-rare severe template (below 10 before), after a 20% warm-up"
    table = [{"data": name, "verdicts": int(point), "uncertainty_f1": result["uncertainty_sampling"][point]["f1_mean"],
              "random_f1": result["random_questions"][point]["f1_mean"], "unsupervised_f1": result["unsupervised"]["f1_mean"]}
             for name, result in (("hdfs", hdfs), ("bgl", bgl)) for point in result["uncertainty_sampling"]]
    return {"table": table, "hdfs": hdfs, "bgl": bgl, "seeds": list(seeds), "held_out_fraction": 0.3,
            "protocol": (f"held-out split 30% stratified per seed; {CURVE_FIRST_RANDOM} random questions first, "
                         f"then {CURVE_BATCH} per retraining ({5 * CURVE_BATCH} past 200 verdicts), the most "
                         "uncertain distinct items; F1 at probability >= 0.5; mean over seeds")}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--hdfs-eval", type=Path, default=None, metavar="FILE",
                        help="evaluate the session model (trained on hdfs_train) on a labelled "
                             "Sequence,label CSV")
    parser.add_argument("--skip-synthetic", action="store_true", help="only the HDFS and BGL figures")
    parser.add_argument("--learning-curve", action="store_true",
                        help="F1 of the actionable model after 50, 100, 200, 500 verdicts (HDFS, BGL)")
    parser.add_argument("--false-alarms", action="store_true",
                        help="the default rules file on --hours of normal demo-like traffic: ML alerts by severity")
    parser.add_argument("--incidents", action="store_true",
                        help="the default rules file on four incidents no threshold rule catches: found, delay")
    parser.add_argument("--hours", type=float, default=12.0, help="event time of --false-alarms (default 12)")
    args = parser.parse_args(argv)
    if args.false_alarms or args.incidents:
        from bench.ml_default_rules import detection, false_alarms

        report = {"false_alarms": false_alarms(args.hours)} if args.false_alarms else {}
        if args.incidents:
            report["incidents"] = detection()
        print(json.dumps(report, indent=2))
        return 0
    if args.learning_curve:
        print(json.dumps(bench_learning_curve(args.data), indent=2))
        return 0
    if args.hdfs_eval is not None:
        model, _ = train_hdfs(args.data)
        result = evaluate(model, args.hdfs_eval)
        print(json.dumps({k: result[k] for k in ("precision", "recall", "f1")}))
        return 0
    started = time.perf_counter()
    report: dict = {"hdfs": bench_hdfs(args.data), "bgl": bench_bgl(args.data)}
    if not args.skip_synthetic:
        traffic = Traffic(seed=11)
        history = traffic.batches(0, 150)
        report["window"] = bench_window(traffic, history)
        report["session_rule"] = bench_session_rule(traffic, history)
        report["new_template"] = bench_templates(traffic, history)
        report["forecast"] = bench_forecast()
        report["feedback"] = bench_feedback()
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
