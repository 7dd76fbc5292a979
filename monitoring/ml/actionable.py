"""The actionable model: what operators consider worth a page, learned from their verdicts.

Every verdict (``monitoring.ml.verdicts``) carries the features of its subject: a text (rule, kind,
severity, service, key, description and sample lines of an alert; service, level, template and
message of a log line) and a few numbers (the window's value, length and sample count, the detector's
own confidence, the severity). A scikit-learn pipeline hashes the text into word and word-pair
features, scales the numbers and fits a logistic regression, calibrated (sigmoid, cross-validated)
once every class has enough examples. Its probability that an alert is actionable is the alert's
``actionable`` field and its routing label (``actionable>=0.8``), which is named apart from the
``confidence`` field (how sure an ML detector is that something deviates, not whether it matters).

One model per tenant, trained on that tenant's verdicts only, saved in the model registry as
``actionable`` (the default tenant) or ``actionable.<tenant>``; there is no model, and alerts carry
no confidence, until a tenant has ``min_verdicts`` verdicts of both kinds (actionable and not).
``train_actionable_remote`` trains on Ray; :class:`ActionableScorer` scores alerts with the latest
versions, noticing new ones within ``check_every`` seconds.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler

from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.ml.registry import ModelRegistry
from logwarden.monitoring.ml.verdicts import VerdictStore, is_actionable

log = logging.getLogger(__name__)

KIND = "actionable"
MIN_VERDICTS = 20
MIN_PER_CLASS_TO_CALIBRATE = 10  # below this, the regression's own probabilities (folds would be too thin)
HASH_FEATURES = 2 ** 16
SEVERITY_RANK = {"INFO": 0, "LOW": 1, "WARNING": 1, "MEDIUM": 2, "ERROR": 2, "HIGH": 3, "CRITICAL": 4}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_MAX_TEXT = 4000


def _seconds_between(start: str | None, end: str | None) -> float:
    from datetime import datetime

    try:
        return max(0.0, (datetime.fromisoformat(str(end).replace("Z", "+00:00"))
                         - datetime.fromisoformat(str(start).replace("Z", "+00:00"))).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def alert_features(anomaly: Anomaly) -> dict[str, Any]:
    """The features of an alert: ``{"text": str, "numeric": {name: float}}``."""
    explanation = anomaly.explanation if isinstance(anomaly.explanation, dict) else {}
    detector_confidence = explanation.get("confidence", anomaly.confidence)
    text = " ".join([f"rule {anomaly.rule}", f"kind {anomaly.kind}", f"severity {anomaly.severity}",
                     f"key {anomaly.key}", anomaly.description, *anomaly.samples[:5]])
    try:
        value = float(anomaly.value)
    except (TypeError, ValueError):
        value = 0.0
    numeric = {
        "value_log": math.copysign(math.log1p(abs(value)), value) if math.isfinite(value) else 0.0,
        "window_log_s": math.log1p(_seconds_between(anomaly.window_start, anomaly.window_end)),
        "samples": float(len(anomaly.samples)),
        "detector_confidence": float(detector_confidence) if detector_confidence is not None else 0.0,
        "severity": float(SEVERITY_RANK.get(str(anomaly.severity).upper(), 0)),
    }
    return {"text": text[:_MAX_TEXT], "numeric": numeric}


def line_features(record: Mapping[str, Any]) -> dict[str, Any]:
    """The features of a log line (a record as search returns it): service, level, template, message."""
    level = str(record.get("level") or "")
    text = " ".join(str(record.get(name) or "") for name in ("service", "level", "template", "message"))
    duration = record.get("duration_ms")
    numeric = {"severity": float(SEVERITY_RANK.get(level.upper(), 0)),
               "duration_log_ms": math.log1p(max(0.0, float(duration))) if isinstance(duration, (int, float)) else 0.0}
    return {"text": text[:_MAX_TEXT], "numeric": numeric}


def _texts(features: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(f.get("text") or "") for f in features]


def _numbers(features: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    return [dict(f.get("numeric") or {}) for f in features]


def make_pipeline(min_per_class: int, c: float = 10.0) -> Pipeline:
    """Text hashing + scaled numbers → logistic regression, calibrated when every class has
    ``MIN_PER_CLASS_TO_CALIBRATE`` examples (``min_per_class``: the rarer class's count)."""
    features = FeatureUnion([
        ("text", Pipeline([("get", FunctionTransformer(_texts)),
                           ("hash", HashingVectorizer(n_features=HASH_FEATURES, ngram_range=(1, 2),
                                                      alternate_sign=False, norm="l2"))])),
        ("numeric", Pipeline([("get", FunctionTransformer(_numbers)), ("dict", DictVectorizer()),
                              ("scale", MaxAbsScaler())])),
    ])
    regression = LogisticRegression(C=c, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=0)
    if min_per_class >= MIN_PER_CLASS_TO_CALIBRATE:
        classifier: Any = CalibratedClassifierCV(regression, method="sigmoid", cv=min(5, min_per_class // 2))
    else:
        classifier = regression
    return Pipeline([("features", features), ("classifier", classifier)])


class ActionableModel:
    """A fitted pipeline and what it was fitted on."""

    def __init__(self, pipeline: Pipeline, verdicts: int, actionable: int) -> None:
        self.pipeline = pipeline
        self.verdicts = verdicts
        self.actionable = actionable

    def proba(self, features: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The probability that each item is actionable."""
        return self.pipeline.predict_proba(list(features))[:, 1]

    def confidence(self, features: Mapping[str, Any]) -> float:
        """The probability that one item is actionable, rounded to 4 digits."""
        return round(float(self.proba([features])[0]), 4)


def fit_actionable(features: Sequence[Mapping[str, Any]], labels: Sequence[bool],
                   min_verdicts: int = MIN_VERDICTS) -> ActionableModel | None:
    """The model of labelled items (True: actionable), or None with fewer than ``min_verdicts`` items
    or without both kinds."""
    positives = int(sum(bool(y) for y in labels))
    negatives = len(labels) - positives
    if len(labels) < max(2, min_verdicts) or not positives or not negatives:
        return None
    pipeline = make_pipeline(min(positives, negatives))
    pipeline.fit(list(features), np.array([bool(y) for y in labels], dtype=int))
    return ActionableModel(pipeline, len(labels), positives)


def model_name(tenant: str | None) -> str:
    """The registry name of a tenant's model (a digest for a tenant name not fit for a folder)."""
    tenant = tenant or DEFAULT_TENANT
    if tenant == DEFAULT_TENANT:
        return KIND
    if _NAME.match(tenant) and len(tenant) <= 100:
        return f"{KIND}.{tenant}"
    return f"{KIND}.{hashlib.sha1(tenant.encode()).hexdigest()[:16]}"


def train_and_save_actionable(data_dir: str | Path, models_dir: str | Path, tenant: str | None = None,
                              min_verdicts: int = MIN_VERDICTS) -> dict[str, Any] | None:
    """Fit ``tenant``'s model on its verdicts and save it as a new registry version; its manifest, or
    None when there are too few verdicts (nothing saved)."""
    started = time.monotonic()
    store = VerdictStore.for_data_dir(data_dir)
    last_seq = store.last_seq(tenant)
    features, verdicts = store.examples(tenant)
    model = fit_actionable(features, [is_actionable(v) for v in verdicts], min_verdicts)
    if model is None:
        log.info("actionable model of tenant %s: %d verdicts, not enough to train", tenant or DEFAULT_TENANT,
                 len(verdicts))
        return None
    summary = {"tenant": tenant or DEFAULT_TENANT, "verdicts": model.verdicts, "actionable": model.actionable,
               "last_seq": last_seq, "seconds": round(time.monotonic() - started, 3)}
    return ModelRegistry(models_dir).save(model_name(tenant), model, KIND, summary).manifest


def train_actionable_remote(data_dir: str | Path, models_dir: str | Path, tenant: str | None = None,
                            min_verdicts: int = MIN_VERDICTS, num_cpus: float = 1):
    """Run :func:`train_and_save_actionable` as a Ray task; its ObjectRef (``ray.get``: the manifest)."""
    import ray

    task = ray.remote(num_cpus=num_cpus, max_retries=1)(train_and_save_actionable)
    return task.remote(str(data_dir), str(models_dir), tenant, min_verdicts)


def trained_seq(registry: ModelRegistry, tenant: str | None) -> int:
    """The newest verdict the latest model of ``tenant`` learned from (0: no model)."""
    info = registry.manifest(model_name(tenant))
    return int(info.manifest.get("summary", {}).get("last_seq", 0)) if info else 0


class ActionableScorer:
    """Scores alerts with the latest model of their tenant (None when the tenant has none yet); looks
    for newer versions at most every ``check_every`` seconds. Thread-safe."""

    def __init__(self, registry: ModelRegistry, check_every: float = 5.0) -> None:
        self.registry = registry
        self.check_every = check_every
        self._models: dict[str, tuple[str | None, ActionableModel | None, float]] = {}
        self._lock = threading.Lock()

    def model(self, tenant: str | None) -> ActionableModel | None:
        """The current model of ``tenant`` (reloaded when the registry has a newer version)."""
        name = model_name(tenant)
        now = time.monotonic()
        with self._lock:
            version, model, checked = self._models.get(name, (None, None, -math.inf))
            if now - checked < self.check_every:
                return model
            latest = self.registry.latest_version(name)
            if latest is not None and latest != version:
                loaded = self.registry.load(name, latest)
                if loaded is not None and isinstance(loaded[0], ActionableModel):
                    version, model = latest, loaded[0]
                    log.info("actionable model %s %s (%d verdicts)", name, latest, model.verdicts)
            self._models[name] = (version, model, now)
            return model

    def score(self, anomaly: Anomaly) -> float | None:
        """The probability that ``anomaly`` is actionable, or None without a model for its tenant."""
        model = self.model(anomaly.tenant)
        return None if model is None else model.confidence(alert_features(anomaly))


__all__ = ["KIND", "MIN_VERDICTS", "ActionableModel", "ActionableScorer", "alert_features", "fit_actionable",
           "line_features", "make_pipeline", "model_name", "train_actionable_remote", "train_and_save_actionable",
           "trained_seq"]
