"""Streaming side of the window model: closes per-service minutes in event time, scores them, and
reports a service once its windows stay above the learned threshold for ``min_duration``."""
from __future__ import annotations

import logging
from collections import deque

import numpy as np
import pyarrow as pa

from logwarden.monitoring.ml.features import FEATURES, NEEDED_COLUMNS, window_features
from logwarden.monitoring.ml.finding import MINUTE_US, Finding, MinuteBuffer
from logwarden.monitoring.ml.window_model import WindowModel, WindowModelSet, fit_window_models

log = logging.getLogger(__name__)


class WindowStream:
    """Per-service minute windows scored by IsolationForest models."""

    kind = "window"

    def __init__(self, min_duration_us: int = 3 * MINUTE_US, quantile: float = 0.99,
                 min_train_windows: int = 120, retrain_every_us: int = 86_400_000_000,
                 max_history: int = 10_080, n_estimators: int = 100) -> None:
        self.min_minutes = max(1, int(min_duration_us // MINUTE_US))
        self.quiet_us = self.min_minutes * MINUTE_US
        self.quantile = quantile
        self.min_train_windows = min_train_windows
        self.retrain_every_us = retrain_every_us
        self.max_history = max_history
        self.n_estimators = n_estimators
        self.buffer = MinuteBuffer((*NEEDED_COLUMNS, "template"))
        self.models = WindowModelSet()
        self.history: dict[str, deque] = {}
        self.runs: dict[str, list[tuple[int, float, np.ndarray]]] = {}
        self.trained_at_us: int | None = None
        self.scored = 0

    def use_model(self, model: WindowModelSet) -> None:
        """Score with ``model``'s per-service models from now on (keeps templates already known, and the
        models of services ``model`` has none for: it may have been trained before they had history)."""
        for service, known in model.known_templates.items():
            self.models.known_templates.setdefault(service, set()).update(known)
        self.models.models = {**self.models.models, **model.models}

    def add(self, table: pa.Table) -> list[Finding]:
        """Buffer records until their minute closes."""
        self.buffer.add(table)
        return []

    def close(self, watermark_us: int) -> list[Finding]:
        """Score every minute closed by ``watermark_us``; findings of services anomalous long enough."""
        done = self.buffer.pop_closed(watermark_us)
        if done is None:
            return []
        features = window_features(done, self.models.known_templates)
        scores = self._score(features.services, features.matrix)
        findings = []
        for i, (service, minute) in enumerate(zip(features.services, features.minutes_us)):
            row = features.matrix[i]
            model = self.models.models.get(service)
            if model is None:
                if not features.first[i]:
                    self._remember(service, row)
                continue
            score = float(scores[i])
            self.scored += 1
            if score <= model.threshold:
                self.runs.pop(service, None)
                self._remember(service, row)
                continue
            run = self.runs.setdefault(service, [])
            if run and minute - run[-1][0] > MINUTE_US:
                run.clear()
            run.append((minute, score, row))
            if len(run) >= self.min_minutes:
                top = [{"template_id": t, "template": features.template_text.get(t, ""), "count": n}
                       for t, n in features.top_templates[i][:3]]
                findings.append(self._finding(service, model, run, top))
        return findings

    def _score(self, services: list[str], matrix: np.ndarray) -> np.ndarray:
        """Scores of all rows, one model call per service (NaN where a service has no model yet)."""
        scores = np.full(len(services), np.nan)
        rows: dict[str, list[int]] = {}
        for i, service in enumerate(services):
            rows.setdefault(service, []).append(i)
        for service, index in rows.items():
            model = self.models.models.get(service)
            if model is not None:
                scores[index] = model.score(matrix[index])
        return scores

    def _remember(self, service: str, row: np.ndarray) -> None:
        self.history.setdefault(service, deque(maxlen=self.max_history)).append(row)

    def _finding(self, service: str, model: WindowModel, run: list, templates: list[dict]) -> Finding:
        minute, score, row = run[-1]
        confidence = float(model.confidence(np.array([s for _, s, _ in run[-self.min_minutes:]])).min())
        reasons = model.explain(row)
        leading = "|".join(f"{r['feature']}{'+' if r['z'] > 0 else '-'}" for r in reasons[:2])
        text = ", ".join(f"{r['feature']}={r['value']} (baseline {r['baseline']}, z {r['z']:+})"
                         for r in reasons)
        minutes = len(run)
        return Finding(
            key=service, start_us=run[0][0], end_us=minute + MINUTE_US, score=score,
            threshold=model.threshold,
            confidence=confidence, pattern=f"{service}|{leading}",
            summary=f"{service}: unusual minute windows for {minutes} min: {text}",
            explanation={"model": "window", "features": reasons, "templates": templates,
                         "minutes": minutes},
            payload={"features": list(FEATURES), "service": service,
                     "rows": [r.tolist() for _, _, r in run[-self.min_minutes:]],
                     "minutes_us": [m for m, _, _ in run[-self.min_minutes:]]})

    def due(self, watermark_us: int) -> bool:
        """Whether an in-process (re)training is due: a service with enough history and no model, or
        (with ``retrain_every_us`` > 0) the retraining period has passed since the last fit."""
        if any(len(rows) >= self.min_train_windows and service not in self.models.models
               for service, rows in self.history.items()):
            return True
        return (self.retrain_every_us > 0 and self.trained_at_us is not None and bool(self.models.models)
                and watermark_us - self.trained_at_us >= self.retrain_every_us)

    def fit(self, watermark_us: int,
            extra_rows: dict[str, list[list[float]]] | None = None) -> WindowModelSet:
        """Fit per-service models on the remembered normal windows (plus feedback rows); use and return
        them."""
        rows = {service: np.array(list(history)) for service, history in self.history.items()}
        for service, extra in (extra_rows or {}).items():
            extra_array = np.array(extra, dtype=float).reshape(-1, len(FEATURES))
            rows[service] = np.vstack([rows[service], extra_array]) if service in rows else extra_array
        models = fit_window_models(rows, self.min_train_windows, self.quantile, self.n_estimators)
        self.models.models.update(models)
        self.trained_at_us = watermark_us
        return WindowModelSet(dict(self.models.models),
                              {s: set(k) for s, k in self.models.known_templates.items()})

    def garbage_collect(self, watermark_us: int) -> None:
        """Forget anomaly runs that event time has left behind."""
        for service in [s for s, run in self.runs.items() if watermark_us - run[-1][0] > 2 * MINUTE_US]:
            del self.runs[service]
