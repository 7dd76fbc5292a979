"""The session model: a next-event model of normal template sequences (DeepLog's idea, as counts).

For every position of a session (padded with start markers and closed by an end marker) the
model estimates P(next template | previous ``history`` templates) from normal sessions, backing
off to shorter contexts when a context or continuation was never seen; each back-off step costs a
factor ``alpha``. A session's score is the largest surprise ``-log P`` over its events; a template
never seen in training gets the largest surprise. The threshold is a quantile of the scores of
held-out normal sessions (k-fold), so no labels are needed, and at least ``-log(min_probability)``:
a step that normal sessions take more often than ``min_probability`` (e.g. a request failing 1 %
of the time) is never anomalous by itself.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

START = "<s>"
END = "</s>"
Event = str | int


@dataclass
class Surprise:
    """The most surprising step of a session."""

    score: float
    position: int
    context: tuple[Event, ...]
    event: Event
    expected: list[tuple[Event, float]]


@dataclass
class NextEventModel:
    """Counts of continuations per context length 0..history."""

    history: int = 3
    alpha: float = 0.01
    counts: list[dict[tuple, Counter]] = field(default_factory=list)
    vocabulary: set = field(default_factory=set)
    threshold: float = math.inf
    reference_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_train: int = 0

    def fit(self, sessions: Sequence[Sequence[Event]]) -> "NextEventModel":
        """Count the transitions of ``sessions`` (normal sessions only); returns self."""
        self.counts = [{} for _ in range(self.history + 1)]
        self.vocabulary = set()
        for session in sessions:
            padded = [START] * self.history + list(session) + [END]
            self.vocabulary.update(session)
            for i in range(self.history, len(padded)):
                for k in range(self.history + 1):
                    self.counts[k].setdefault(tuple(padded[i - k:i]), Counter())[padded[i]] += 1
        self.n_train = len(sessions)
        return self

    @property
    def unseen_surprise(self) -> float:
        """The surprise of a template never seen in training (above any seen continuation's)."""
        total = sum(self.counts[0].get((), Counter()).values()) if self.counts else 0
        return (self.history + 1) * -math.log(self.alpha) + math.log(total + 1)

    def step_surprise(self, context: tuple, event: Event) -> float:
        """-log P(event | context) with back-off."""
        if event != END and event not in self.vocabulary:
            return self.unseen_surprise
        penalty = 0.0
        for k in range(self.history, -1, -1):
            continuations = self.counts[k].get(context[len(context) - k:] if k else ())
            if continuations is None:
                continue
            hits = continuations.get(event, 0)
            if hits:
                return penalty - math.log(hits / sum(continuations.values()))
            penalty -= math.log(self.alpha)
        return self.unseen_surprise

    def surprise(self, session: Sequence[Event]) -> Surprise:
        """The most surprising step of ``session`` (the end marker included)."""
        padded = [START] * self.history + list(session) + [END]
        worst = Surprise(0.0, -1, (), END, [])
        for i in range(self.history, len(padded)):
            context = tuple(padded[i - self.history:i])
            value = self.step_surprise(context, padded[i])
            if value > worst.score:
                worst = Surprise(value, i - self.history, context, padded[i], [])
        if worst.position >= 0:
            worst.expected = self.expected(worst.context)
        return worst

    def expected(self, context: tuple, top: int = 3) -> list[tuple[Event, float]]:
        """The likeliest continuations of ``context`` (longest known context), with probabilities."""
        for k in range(self.history, -1, -1):
            continuations = self.counts[k].get(context[len(context) - k:] if k else ())
            if continuations:
                total = sum(continuations.values())
                return [(e, round(c / total, 4)) for e, c in continuations.most_common(top)]
        return []

    def score(self, session: Sequence[Event]) -> float:
        """The session's anomaly score (largest step surprise)."""
        return self.surprise(session).score

    def score_many(self, sessions: Sequence[Sequence[Event]]) -> np.ndarray:
        """Scores of many sessions."""
        return np.array([self.score(s) for s in sessions], dtype=float)

    def is_anomalous(self, session: Sequence[Event]) -> bool:
        """Whether the session's score is above the learned threshold."""
        return self.score(session) > self.threshold

    def confidence(self, score: float) -> float:
        """1 - conformal p-value of ``score`` among held-out normal scores."""
        ref = np.sort(self.reference_scores)
        above = len(ref) - int(np.searchsorted(ref, score, side="left"))
        return 1.0 - (above + 1) / (len(ref) + 1)


def fit_session_model(sessions: Sequence[Sequence[Event]], history: int = 3, alpha: float = 0.01,
                      quantile: float = 0.99, min_probability: float = 0.001, folds: int = 5,
                      seed: int = 0) -> NextEventModel:
    """Fit on normal sessions and learn the threshold from k-fold held-out scores. Pure function."""
    sessions = [list(s) for s in sessions]
    if len(sessions) < 2 * folds:
        raise ValueError(f"need at least {2 * folds} sessions to train, got {len(sessions)}")
    order = np.random.default_rng(seed).permutation(len(sessions))
    held = np.empty(len(sessions))
    for part in np.array_split(order, folds):
        hold = set(part.tolist())
        fold_model = NextEventModel(history, alpha).fit([s for i, s in enumerate(sessions) if i not in hold])
        held[part] = [fold_model.score(sessions[i]) for i in part]
    model = NextEventModel(history, alpha).fit(sessions)
    model.threshold = max(float(np.quantile(held, quantile)), -math.log(min_probability))
    model.reference_scores = held
    log.info("session model: %d sessions, %d templates, threshold %.3f (q=%.3f)", len(sessions),
             len(model.vocabulary), model.threshold, quantile)
    return model
