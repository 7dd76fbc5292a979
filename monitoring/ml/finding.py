"""What a streaming ML detector reports to ``MlRule``, and the minute buffer the window-based ones share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

MINUTE_US = 60_000_000


@dataclass
class Finding:
    """One deviation: key, event-time span, score against threshold, confidence and explanation.

    ``pattern`` identifies "the same anomaly" for feedback; ``payload`` is the data it was raised on
    (a feature row, a template sequence…), kept with the anomaly so a false positive can become a
    normal training example.
    """

    key: str
    start_us: int
    end_us: int
    score: float
    threshold: float
    confidence: float
    pattern: str
    summary: str
    explanation: dict[str, Any]
    samples: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)


class MinuteBuffer:
    """Records of still-open minutes; hands out the rows of minutes that event time has closed."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.parts: list[pa.Table] = []
        self.closed_until_us: int | None = None
        self.late_rows = 0
        self.oldest_us: int | None = None  # the earliest event time kept: nothing closes before it

    def add(self, table: pa.Table) -> None:
        """Keep the rows of ``table`` (those of already closed minutes are counted late and dropped)."""
        present = [c for c in self.columns if c in table.column_names]
        table = table.select(present)
        if self.closed_until_us is not None and table.num_rows:
            fresh = pc.greater_equal(pc.cast(table["timestamp"], pa.int64()), self.closed_until_us)
            self.late_rows += table.num_rows - (pc.sum(pc.cast(fresh, pa.int64())).as_py() or 0)
            table = table.filter(fresh)
        if table.num_rows:
            self.parts.append(table)
            oldest = pc.min(pc.cast(table["timestamp"], pa.int64())).as_py()
            self.oldest_us = oldest if self.oldest_us is None else min(self.oldest_us, oldest)

    def pop_closed(self, watermark_us: int) -> pa.Table | None:
        """Rows of every minute that ends at or before ``watermark_us`` (None when there are none)."""
        boundary = watermark_us - watermark_us % MINUTE_US
        if self.closed_until_us is None or boundary > self.closed_until_us:
            self.closed_until_us = boundary
        # Called for every batch: the buffered rows (a minute of them) are only gone through once a
        # minute closes, not on every call.
        if not self.parts or self.oldest_us is None or self.oldest_us >= boundary:
            return None
        table = pa.concat_tables(self.parts, promote_options="permissive")
        micros = pc.cast(table["timestamp"], pa.int64())
        closed = pc.less(micros, boundary)
        kept = table.filter(pc.invert(closed))
        self.parts = [kept] if kept.num_rows else []
        self.oldest_us = pc.min(pc.cast(kept["timestamp"], pa.int64())).as_py() if kept.num_rows else None
        done = table.filter(closed)
        return done if done.num_rows else None

    def __getstate__(self) -> dict:
        if len(self.parts) > 1:
            self.parts = [pa.concat_tables(self.parts, promote_options="permissive")]
        return self.__dict__

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "oldest_us" not in state:  # a checkpoint written before the field existed
            times = [pc.min(pc.cast(part["timestamp"], pa.int64())).as_py() for part in self.parts if part.num_rows]
            self.oldest_us = min(times) if times else None
