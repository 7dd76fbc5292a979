"""``spike``: the count of the current window against the mean of the previous windows, per key.

Windows are tumbling (``window``). At the close of window k, ``ratio = count(k) / mean(count(k-h..k-1))``
with ``h = history`` (default 1) is compared with the threshold: ``>= 3`` is a spike up, ``<= 0.2``
a drop. A key is judged once it has been seen for ``history`` whole windows, and only when
``max(current, reference) >= min_count`` (default 1), so a handful of events is no spike.
A key whose reference is 0 has an infinite ratio (a spike up, never a drop).
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pyarrow as pa

from logwarden.monitoring.rules.base import NUMPY_OPERATORS
from logwarden.monitoring.rules.keys import Keys
from logwarden.monitoring.rules.registry import register_rule_class
from logwarden.monitoring.rules.spec import RuleSpec
from logwarden.monitoring.rules.spec_schema import DURATION, threshold
from logwarden.monitoring.rules.tumbling import TumblingRule, WindowResult


@register_rule_class
class SpikeRule(TumblingRule):
    """Fires when a window's count is a multiple (or a fraction) of the previous windows' mean."""

    kind = "spike"
    PROPERTIES = {"window": DURATION, "threshold": threshold([">", ">=", "<", "<="]),
                  "history": {"type": "integer", "minimum": 1, "maximum": 100},
                  "min_count": {"type": "number", "minimum": 0}}
    REQUIRED = ("window", "threshold")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self.history = int(spec.option("history", 1))
        self.min_count = float(spec.option("min_count", 1))
        self.compare = NUMPY_OPERATORS[spec.threshold.op]
        self.counts: dict[int, dict[int, int]] = {}  # window -> key -> count
        self.first_window: dict[int, int] = {}
        self.recent: dict[int, deque[tuple[int, int]]] = {}  # key -> (window, count) of closed windows

    def accumulate(self, matched: pa.Table, keys: Keys, rows: np.ndarray, times: np.ndarray,
                   windows: np.ndarray) -> None:
        hashes = keys.hashes[rows].astype(np.int64)
        pairs, counts = np.unique(np.stack([windows, hashes]), axis=1, return_counts=True)
        for (k, h), n in zip(pairs.T.tolist(), counts.tolist()):
            key_hash = int(np.int64(h).astype(np.uint64))
            per_key = self.counts.setdefault(int(k), {})
            per_key[key_hash] = per_key.get(key_hash, 0) + int(n)
            if key_hash not in self.first_window or k < self.first_window[key_hash]:
                self.first_window[key_hash] = int(k)

    def pending_windows(self) -> list[int]:
        return sorted(self.counts)

    def idle(self, window: int) -> bool:
        return not any(q and q[-1][0] >= window - self.history and q[-1][1] for q in self.recent.values())

    def close(self, window: int) -> list[WindowResult]:
        current = self.counts.pop(window, {})
        watched = set(current) | {h for h, q in self.recent.items() if any(w >= window - self.history for w, _ in q)}
        out = []
        for key_hash in sorted(watched):
            count = current.get(key_hash, 0)
            past = {w: n for w, n in self.recent.get(key_hash, ())}
            reference = sum(past.get(w, 0) for w in range(window - self.history, window)) / self.history
            ready = self.first_window.get(key_hash, window) <= window - self.history
            ratio = count / reference if reference else (float("inf") if count else 0.0)
            holds = bool(ready and max(count, reference) >= self.min_count and reference + count > 0
                         and self.compare(ratio, self.spec.threshold.value))
            first, last = self.span(window, key_hash)
            out.append(WindowResult(key_hash, ratio if np.isfinite(ratio) else float(count), holds, first, last))
            queue = self.recent.setdefault(key_hash, deque(maxlen=self.history))
            queue.append((window, count))
        return out

    def garbage_collect(self) -> None:
        super().garbage_collect()
        if self.next_window is None:
            return
        horizon = self.next_window - self.history - 1
        for key_hash in [h for h, q in self.recent.items() if not q or q[-1][0] < horizon]:
            del self.recent[key_hash]
            self.first_window.pop(key_hash, None)
            self.names.pop(key_hash, None)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "watched_keys": len(self.recent)}
