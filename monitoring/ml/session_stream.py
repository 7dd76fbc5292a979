"""Streaming side of the session model: sessions close after a quiet period and are scored whole."""
from __future__ import annotations

import logging
from collections import deque

import pyarrow as pa

from logwarden.monitoring.ml.finding import Finding
from logwarden.monitoring.ml.session_model import END, NextEventModel, fit_session_model
from logwarden.monitoring.ml.sessions import SessionTracker

log = logging.getLogger(__name__)


class SessionStream:
    """Sessions of template ids scored by a next-event model."""

    kind = "session"

    def __init__(self, tracker: SessionTracker, quiet_us: int, quantile: float = 0.99, history: int = 3,
                 min_train_sessions: int = 1000, max_history: int = 50_000,
                 retrain_every_us: int = 86_400_000_000, min_probability: float = 0.001) -> None:
        self.tracker = tracker
        self.quiet_us = quiet_us
        self.quantile = quantile
        self.min_probability = min_probability
        self.context = history
        self.min_train_sessions = min_train_sessions
        self.retrain_every_us = retrain_every_us
        self.model: NextEventModel | None = None
        self.normal: deque[list[str]] = deque(maxlen=max_history)
        self.trained_at_us: int | None = None
        self.scored = 0

    def use_model(self, model: NextEventModel) -> None:
        """Score with ``model`` from now on."""
        self.model = model

    def add(self, table: pa.Table) -> list[Finding]:
        """Append records to their sessions."""
        self.tracker.add(table)
        return []

    def close(self, watermark_us: int) -> list[Finding]:
        """Score the sessions that closed; findings for those above the threshold."""
        findings = []
        for session in self.tracker.close(watermark_us):
            if self.model is None:
                self.normal.append(session.events)
                continue
            worst = self.model.surprise(session.events)
            self.scored += 1
            if worst.score <= self.model.threshold:
                self.normal.append(session.events)
                continue
            names = session.templates
            previous = worst.context[-1] if worst.context else ""
            expected = [{"template_id": e, "template": names.get(e, ""), "p": p} for e, p in worst.expected]
            event_text = "end of session" if worst.event == END else names.get(worst.event, "")
            findings.append(Finding(
                key=session.key, start_us=session.first_us, end_us=session.last_us, score=worst.score,
                threshold=self.model.threshold, confidence=self.model.confidence(worst.score),
                pattern=f"{previous}->{worst.event}",
                summary=(f"session {session.key}: unexpected '{event_text}' at event {worst.position + 1} of "
                         f"{len(session.events)}"),
                explanation={"model": "session", "position": worst.position, "template_id": str(worst.event),
                             "template": event_text, "after": [str(c) for c in worst.context],
                             "expected": expected},
                samples=list(session.lines), payload={"sequence": session.events, "session": session.key}))
        return findings

    def due(self, watermark_us: int) -> bool:
        """Whether an in-process training is due: the first one once enough sessions were seen, then
        (with ``retrain_every_us`` > 0) every period."""
        if self.model is None:
            return len(self.normal) >= self.min_train_sessions
        return (self.retrain_every_us > 0 and self.trained_at_us is not None
                and watermark_us - self.trained_at_us >= self.retrain_every_us)

    def fit(self, watermark_us: int, extra_sequences: list[list[str]] | None = None) -> NextEventModel:
        """Fit on the remembered normal sessions (plus feedback ones); use and return the model."""
        self.model = fit_session_model(list(self.normal) + list(extra_sequences or []), history=self.context,
                                       quantile=self.quantile, min_probability=self.min_probability)
        self.trained_at_us = watermark_us
        return self.model

    def garbage_collect(self, watermark_us: int) -> None:
        """Nothing beyond the tracker's own closing."""
