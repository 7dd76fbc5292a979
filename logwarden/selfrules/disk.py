"""``disk_low`` (HIGH): free space of the data dir under ``disk_low_water``.

It warns before the collector refuses records (``collector.min_free_disk_bytes``) and the lake's
commits fail. It resolves once free space is 10 % above the mark, so that a level hovering at the
mark does not page again and again.
"""
from __future__ import annotations

from logwarden.monitoring.self_rules import DISK_LOW
from logwarden.selfrules.base import Finding, Held, SelfRule, SelfState

HYSTERESIS = 1.1
MIB = 1024 * 1024


class DiskLow(SelfRule):
    """Fires while the data dir's free bytes are under ``low_water``."""

    name = DISK_LOW
    severity = "HIGH"
    action = ("Free space on the data dir's disk: check the retention settings (`logwarden retention "
              "--dry-run`), the dead-letter store and the quarantine, or grow the volume.")

    def __init__(self, low_water: int) -> None:
        self.low_water = low_water
        self._held = Held()

    def findings(self, state: SelfState, firing: frozenset[str]) -> dict[str, Finding]:
        """The data dir while its free space is under the mark."""
        free, key = state.free_disk_bytes, state.data_dir or "data"
        if free is None:
            return {}
        mark = self.low_water * HYSTERESIS if key in firing else self.low_water
        since = self._held.since(key, free < mark, state.now)
        if since is None:
            return {}
        return {key: Finding(since, free, f"< {self.low_water // MIB} MiB free",
                             f"{free // MIB} MiB free on the disk of {key}, under the low-water mark of "
                             f"{self.low_water // MIB} MiB", (f"free: {free} bytes",))}
