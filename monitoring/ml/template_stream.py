"""Streaming side of the new/rare template detector."""
from __future__ import annotations

import numpy as np
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
        """Observe records; findings for new severe templates. Every record counts towards its template;
        only the records of the watched levels are looked at one by one."""
        if "template_id" not in table.column_names or table.num_rows == 0:
            return []
        table = table.filter(pc.is_valid(table["template_id"]))
        if table.num_rows == 0:
            return []
        self.scored += table.num_rows
        micros = pc.cast(table["timestamp"], pa.int64())
        self.detector.learning(micros[0].as_py())  # the first record starts the warm-up, as observe does
        rows = pa.table({"service": table["service"], "template_id": table["template_id"],
                         "row": pa.array(np.arange(table.num_rows))})
        groups = rows.group_by(["service", "template_id"], use_threads=False).aggregate(
            [("row", "min"), ("row", "count")])
        severe_rows = pc.indices_nonzero(pc.is_in(table["level"], value_set=pa.array(sorted(self.detector.levels))))
        severe = table.take(severe_rows)
        texts = severe["template"].to_pylist() if "template" in severe.column_names else [""] * severe.num_rows
        at = pc.take(micros, severe_rows).to_pylist()
        records = [(row, service, tid, text or "", level, at_us, f"{iso_us(at_us)} {level} {service}: {message}")
                   for row, service, tid, text, level, at_us, message in zip(
                       severe_rows.to_pylist(), severe["service"].to_pylist(), severe["template_id"].to_pylist(),
                       texts, severe["level"].to_pylist(), at, severe["message"].to_pylist())]
        events = self.detector.observe_batch(groups["service"].to_pylist(), groups["template_id"].to_pylist(),
                                             groups["row_min"].to_pylist(), groups["row_count"].to_pylist(),
                                             records)
        return [self._finding(event) for event in events]

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
