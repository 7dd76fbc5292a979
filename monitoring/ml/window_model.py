"""The per-service window model: an IsolationForest over per-minute features.

The score is the forest's ``-score_samples`` (higher is more anomalous) plus a range guard:
an isolation forest cannot tell a point just past the edge of the training data from one ten
times past it (both end in the same leaf), so ``range_weight * log1p(excess)`` is added, where
``excess`` sums, over features, how far the window lies outside the training range in robust
standard deviations (0 inside the range). The threshold is learned: a high
quantile of the scores of held-out training windows (each fold scored by a forest that did not
see it), so it reflects how unusual normal minutes look to the model. Confidence is one minus the
conformal p-value of a score against those held-out scores. Explanations name the features that
deviate most from the training median, in robust z-scores.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest

from logwarden.monitoring.ml.features import FEATURES, LOG_FEATURES

log = logging.getLogger(__name__)
_LOG_MASK = np.array([name in LOG_FEATURES for name in FEATURES])


@dataclass
class WindowModel:
    """A fitted IsolationForest with its learned threshold and reference statistics."""

    forest: IsolationForest
    threshold: float
    reference_scores: np.ndarray
    medians: np.ndarray
    scales: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_train: int
    range_weight: float = 0.1
    features: tuple[str, ...] = FEATURES
    params: dict = field(default_factory=dict)

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """Raw features -> model space: log1p of scale features, missing values -> training medians."""
        return _transform(matrix, self.medians)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Anomaly scores of raw feature rows (higher = more anomalous)."""
        if len(matrix) == 0:
            return np.zeros(0)
        space = self.transform(matrix)
        return _score(self.forest, space, self.low, self.high, self.scales, self.range_weight)

    def confidence(self, scores: np.ndarray) -> np.ndarray:
        """1 - conformal p-value of each score among the held-out training scores."""
        ref = np.sort(self.reference_scores)
        above = len(ref) - np.searchsorted(ref, scores, side="left")
        return 1.0 - (above + 1) / (len(ref) + 1)

    def explain(self, row: np.ndarray, top: int = 3) -> list[dict]:
        """The ``top`` features of one raw row that deviate most from training, with robust z-scores."""
        centre = _transform(self.medians[None, :], self.medians)[0]
        z = (self.transform(row[None, :])[0] - centre) / self.scales
        order = np.argsort(-np.abs(z))[:top]
        return [{"feature": self.features[i], "value": _plain(row[i]), "z": round(float(z[i]), 2),
                 "baseline": _plain(self.medians[i])} for i in order if abs(z[i]) > 0]


def _plain(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def _transform(matrix: np.ndarray, medians: np.ndarray) -> np.ndarray:
    out = np.array(matrix, dtype=float, copy=True)
    missing = np.isnan(out)
    if missing.any():
        out[missing] = np.broadcast_to(medians, out.shape)[missing]
    out[:, _LOG_MASK] = np.log1p(np.clip(out[:, _LOG_MASK], 0, None))
    return np.nan_to_num(out)


def _score(forest: IsolationForest, space: np.ndarray, low: np.ndarray, high: np.ndarray, scales: np.ndarray,
           range_weight: float) -> np.ndarray:
    excess = np.maximum(0.0, np.maximum(space - high, low - space)) / scales
    return -forest.score_samples(space) + range_weight * np.log1p(excess.sum(axis=1))


def _scales(space: np.ndarray) -> np.ndarray:
    q75, q25 = np.percentile(space, [75, 25], axis=0)
    return np.maximum((q75 - q25) / 1.349, 1e-3 + 0.1 * space.std(axis=0))


def fit_window_model(matrix: np.ndarray, quantile: float = 0.99, n_estimators: int = 100,
                     folds: int = 4, range_weight: float = 0.1, seed: int = 0) -> WindowModel:
    """Fit the model on normal-history feature rows and learn its threshold from held-out scores
    (each fold scored by a model fitted without it). Needs ``2 * folds`` rows. Pure function."""
    matrix = np.asarray(matrix, dtype=float)
    if len(matrix) < 2 * folds:
        raise ValueError(f"need at least {2 * folds} windows to train, got {len(matrix)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing feature has no median: 0
        medians = np.nan_to_num(np.nanmedian(matrix, axis=0))
    space = _transform(matrix, medians)
    order = np.random.default_rng(seed).permutation(len(space))
    held = np.empty(len(space))
    for part in np.array_split(order, folds):
        train = np.delete(space, part, axis=0)
        forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(train)
        held[part] = _score(forest, space[part], train.min(axis=0), train.max(axis=0), _scales(train),
                            range_weight)
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(space)
    threshold = float(np.quantile(held, quantile))
    log.info("window model: %d windows, threshold %.4f (q=%.3f)", len(space), threshold, quantile)
    return WindowModel(forest, threshold, held, medians, _scales(space), space.min(axis=0), space.max(axis=0),
                       len(space), range_weight,
                       params={"quantile": quantile, "n_estimators": n_estimators, "folds": folds})


@dataclass
class WindowModelSet:
    """One window model per service, and the templates each service had shown by training time."""

    models: dict[str, WindowModel] = field(default_factory=dict)
    known_templates: dict[str, set[str]] = field(default_factory=dict)

    def summary(self) -> dict:
        """Per-service training size and threshold, for the registry manifest."""
        return {service: {"windows": m.n_train, "threshold": round(m.threshold, 5)}
                for service, m in self.models.items()}


def fit_window_models(rows_by_service: dict[str, np.ndarray], min_windows: int = 120, quantile: float = 0.99,
                      n_estimators: int = 100, seed: int = 0) -> dict[str, WindowModel]:
    """A model per service with at least ``min_windows`` feature rows. Pure function."""
    models = {}
    for service, rows in sorted(rows_by_service.items()):
        if len(rows) >= max(min_windows, 8):
            models[service] = fit_window_model(np.asarray(rows), quantile=quantile, n_estimators=n_estimators,
                                               seed=seed)
    return models
