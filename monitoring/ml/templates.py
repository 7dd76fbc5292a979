"""New and rare templates: a WARNING/ERROR/CRITICAL template never seen before for a service, or
one whose per-minute count rises sharply above its own baseline (Datadog's "new log pattern").

The baseline is the per-service template counts of the history (a trained ``TemplateBaseline``)
or, without one, what the detector sees during its ``learn_for`` warm-up.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SEVERE_LEVELS = ("WARNING", "ERROR", "CRITICAL")


@dataclass
class TemplateBaseline:
    """Per-service template counts and per-minute rates learned from history."""

    counts: dict[str, Counter] = field(default_factory=dict)
    minutes: dict[str, int] = field(default_factory=dict)

    def add(self, service: str, template_id: str, n: int = 1) -> None:
        """Count ``n`` occurrences of a template for a service."""
        self.counts.setdefault(service, Counter())[template_id] += n

    def rate(self, service: str, template_id: str) -> float:
        """Mean occurrences per minute over the service's history minutes."""
        return self.counts.get(service, Counter()).get(template_id, 0) / max(1, self.minutes.get(service, 1))


def fit_template_baseline(rows: list[tuple[str, str, int]]) -> TemplateBaseline:
    """A baseline from ``(service, template_id, minute_us)`` rows of history. Pure function."""
    baseline = TemplateBaseline()
    minutes: dict[str, set[int]] = {}
    for service, template_id, minute in rows:
        baseline.add(service, template_id)
        minutes.setdefault(service, set()).add(minute)
    baseline.minutes = {service: len(m) for service, m in minutes.items()}
    return baseline


@dataclass
class TemplateEvent:
    """A new or rising template of a service."""

    reason: str  # "new" or "rising"
    service: str
    template_id: str
    template: str
    level: str
    at_us: int
    count: int
    baseline_rate: float
    sample: str = ""

    @property
    def pattern(self) -> str:
        """What feedback on this event refers to: the service and the template."""
        return f"{self.service}|{self.template_id}"


class TemplateNoveltyDetector:
    """Streaming detector of new and sharply rising severe templates, per service."""

    def __init__(self, baseline: TemplateBaseline | None = None, learn_for_us: int = 3_600_000_000,
                 levels: tuple[str, ...] = SEVERE_LEVELS, rise_factor: float = 5.0, min_count: int = 10,
                 smoothing: float = 0.1) -> None:
        self.baseline = baseline or TemplateBaseline()
        self.learning_until_us: int | None = None if baseline is None else 0
        self.learn_for_us = learn_for_us
        self.levels = frozenset(levels)
        self.rise_factor = rise_factor
        self.min_count = min_count
        self.smoothing = smoothing
        self.ewma: dict[tuple[str, str], tuple[float, int]] = {}
        self.minute_counts: dict[int, Counter] = {}
        self.meta: dict[tuple[str, str], tuple[str, str, str]] = {}

    def use_baseline(self, baseline: TemplateBaseline) -> None:
        """Switch to a trained baseline (ends any warm-up). Templates this detector has already seen stay
        known: a baseline trained on the lake before they reached it (the first training of a new
        installation runs on an empty lake) must not make them new again."""
        merged = TemplateBaseline({s: Counter(c) for s, c in baseline.counts.items()}, dict(baseline.minutes))
        for service, seen in self.baseline.counts.items():
            known = merged.counts.setdefault(service, Counter())
            for template_id, count in seen.items():
                known.setdefault(template_id, count)
        self.baseline = merged
        self.learning_until_us = 0

    def learning(self, at_us: int) -> bool:
        """Whether the detector is still learning its baseline at event time ``at_us``."""
        if self.learning_until_us is None:
            self.learning_until_us = at_us + self.learn_for_us
        return at_us < self.learning_until_us

    def observe(self, service: str, template_id: str, template: str, level: str, at_us: int,
                line: str = "") -> TemplateEvent | None:
        """Take one record; a ``new`` event when a severe template is new for its service."""
        learning = self.learning(at_us)
        known = self.baseline.counts.setdefault(service, Counter())
        is_new = template_id not in known
        known[template_id] += 1
        key = (service, template_id)
        if level in self.levels:
            minute = at_us - at_us % 60_000_000
            self.minute_counts.setdefault(minute, Counter())[key] += 1
            self.meta[key] = (template, level, line)
        if is_new and not learning and level in self.levels:
            return TemplateEvent("new", service, template_id, template, level, at_us, 1, 0.0, line)
        return None

    def observe_batch(self, services: list, template_ids: list, first_index: list[int], counts: list[int],
                      severe: list[tuple]) -> list[TemplateEvent]:
        """Take a batch at once, as :meth:`observe` of each record in order would: ``services``,
        ``template_ids``, ``first_index`` (the batch row of its first record) and ``counts`` per distinct
        (service, template) of the batch; ``severe``, the records of the watched levels in batch order, as
        (row, service, template_id, template, level, at_us, line). The ``new`` events."""
        first_of: dict[tuple[str, str], int] = {}
        for service, template_id, first in zip(services, template_ids, first_index):
            if template_id not in self.baseline.counts.get(service, ()):
                first_of[(service, template_id)] = first  # unknown before the batch: new at its first row
        events = []
        for row, service, template_id, template, level, at_us, line in severe:
            key = (service, template_id)
            learning = self.learning(at_us)
            minute = at_us - at_us % 60_000_000
            self.minute_counts.setdefault(minute, Counter())[key] += 1
            self.meta[key] = (template, level, line)
            if first_of.get(key) == row and not learning:
                events.append(TemplateEvent("new", service, template_id, template, level, at_us, 1, 0.0, line))
        for service, template_id, count in zip(services, template_ids, counts):
            self.baseline.counts.setdefault(service, Counter())[template_id] += count
        return events

    def close_minutes(self, before_us: int) -> list[TemplateEvent]:
        """Close every minute that ends at or before ``before_us``; ``rising`` events of those minutes."""
        events = []
        for minute in sorted(m for m in self.minute_counts if m + 60_000_000 <= before_us):
            counts = self.minute_counts.pop(minute)
            for key, count in counts.items():
                rate = self._rate(key, minute)
                if (not self.learning(minute) and count >= self.min_count
                        and count >= self.rise_factor * max(rate, 1.0)):
                    template, level, line = self.meta.get(key, ("", "", ""))
                    events.append(TemplateEvent("rising", key[0], key[1], template, level, minute, count,
                                                round(rate, 3), line))
                self._update(key, minute, count)
        return events

    def _rate(self, key: tuple[str, str], minute: int) -> float:
        if key in self.ewma:
            value, last = self.ewma[key]
            gap = max(0, (minute - last) // 60_000_000 - 1)
            return value * (1 - self.smoothing) ** gap
        return self.baseline.rate(*key)

    def _update(self, key: tuple[str, str], minute: int, count: int) -> None:
        rate = self._rate(key, minute)
        self.ewma[key] = ((1 - self.smoothing) * rate + self.smoothing * count, minute)

    def garbage_collect(self, before_us: int, idle_us: int = 86_400_000_000) -> None:
        """Forget rates of templates idle for ``idle_us`` (they decay to zero anyway)."""
        for key in [k for k, (_, last) in self.ewma.items() if before_us - last > idle_us]:
            del self.ewma[key]
            self.meta.pop(key, None)
