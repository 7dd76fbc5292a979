"""Streaming side of the new/rare template detector."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from logwarden.monitoring.anomaly import iso_us
from logwarden.monitoring.ml.finding import MINUTE_US, Finding
from logwarden.monitoring.ml.templates import TemplateBaseline, TemplateEvent, TemplateNoveltyDetector


class TemplateStream:
    """New severe templates (reported at once) and sharply rising ones (per closed minute)."""

    kind = "new_template"

    def __init__(self, detector: TemplateNoveltyDetector, quiet_us: int) -> None:
        self.detector = detector
        self.quiet_us = quiet_us
        self.scored = 0

    def use_model(self, model: TemplateBaseline) -> None:
        """Use a trained per-service baseline."""
        self.detector.use_baseline(model)

    def add(self, table: pa.Table) -> list[Finding]:
        """Observe records; findings for new severe templates."""
        if "template_id" not in table.column_names or table.num_rows == 0:
            return []
        micros = pc.cast(table["timestamp"], pa.int64()).to_pylist()
        texts = table["template"].to_pylist() if "template" in table.column_names else [""] * table.num_rows
        findings = []
        for service, tid, text, level, at, message in zip(
                table["service"].to_pylist(), table["template_id"].to_pylist(), texts,
                table["level"].to_pylist(), micros, table["message"].to_pylist()):
            if tid is None:
                continue
            self.scored += 1
            line = f"{iso_us(at)} {level} {service}: {message}"
            event = self.detector.observe(service, tid, text or "", level, at, line)
            if event is not None:
                findings.append(self._finding(event))
        return findings

    def close(self, watermark_us: int) -> list[Finding]:
        """Findings for templates that rose sharply in minutes now closed."""
        return [self._finding(e) for e in self.detector.close_minutes(watermark_us)]

    def _finding(self, event: TemplateEvent) -> Finding:
        if event.reason == "new":
            summary = f"{event.service}: new {event.level} log pattern '{event.template}'"
            score, threshold, confidence, end = 1.0, 0.0, 1.0, event.at_us
        else:
            factor = event.count / max(event.baseline_rate, 1.0)
            summary = (f"{event.service}: {event.level} log pattern '{event.template}' rose to "
                       f"{event.count}/min (baseline {event.baseline_rate}/min)")
            score, threshold, end = factor, self.detector.rise_factor, event.at_us + MINUTE_US
            confidence = min(1.0, 1.0 - self.detector.rise_factor / (2 * factor)) if factor else 0.0
        return Finding(
            key=f"{event.service}|{event.template_id}", start_us=event.at_us, end_us=end, score=score,
            threshold=threshold, confidence=round(confidence, 4), pattern=event.pattern, summary=summary,
            explanation={"model": "new_template", "reason": event.reason, "templates": [event.template_id],
                         "template": event.template, "level": event.level, "count": event.count,
                         "baseline_rate": event.baseline_rate},
            samples=[event.sample] if event.sample else [],
            payload={"service": event.service, "template_id": event.template_id})

    def due(self, watermark_us: int) -> bool:
        """The baseline comes from the warm-up or ``train_remote``; nothing to fit in process."""
        return False

    def garbage_collect(self, watermark_us: int) -> None:
        """Forget idle template rates."""
        self.detector.garbage_collect(watermark_us)
