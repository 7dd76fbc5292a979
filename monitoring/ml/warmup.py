"""The warm-up of an ML rule: no alert until it has seen enough history.

History is counted in minutes of event time that had records (per tenant), not in elapsed event time,
so a source that sends one record, then nothing for hours, has not warmed the model up. The counters
live in the rule, so they are part of the detector's checkpoint: a restart neither restarts the
warm-up nor skips it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MINUTE_US = 60_000_000


@dataclass
class WarmUp:
    """Minutes with records seen per tenant, against the ``needed_minutes`` of the rule's ``warm_up``."""

    needed_minutes: int
    minutes: dict[str, int] = field(default_factory=dict)
    last_minute_us: dict[str, int] = field(default_factory=dict)
    held_back: int = 0  # findings not raised because their tenant was still warming up

    @classmethod
    def of(cls, warm_up_s: float) -> "WarmUp":
        """The warm-up of a rule whose ``warm_up`` is ``warm_up_s`` seconds (0: none)."""
        return cls(int(-(-warm_up_s // 60)))

    def observe(self, tenant: str, micros: np.ndarray) -> None:
        """Count the minutes of ``micros`` (event times) newer than the last minute counted for ``tenant``
        (late records do not count a minute twice)."""
        if self.done(tenant) or len(micros) == 0:
            return
        minutes = np.unique(np.asarray(micros, dtype=np.int64) // MINUTE_US)
        last = self.last_minute_us.get(tenant)
        if last is not None:
            minutes = minutes[minutes > last // MINUTE_US]
        if len(minutes):
            self.minutes[tenant] = self.minutes.get(tenant, 0) + len(minutes)
            self.last_minute_us[tenant] = int(minutes[-1]) * MINUTE_US

    def done(self, tenant: str) -> bool:
        """Whether ``tenant``'s history is long enough for alerts."""
        return self.minutes.get(tenant, 0) >= self.needed_minutes

    def hold(self) -> None:
        """Count a finding not raised during the warm-up."""
        self.held_back += 1

    def progress(self) -> dict[str, float]:
        """Per tenant, the fraction of the warm-up done (1.0 when complete)."""
        if self.needed_minutes <= 0:
            return {tenant: 1.0 for tenant in self.minutes}
        return {tenant: round(min(1.0, n / self.needed_minutes), 3) for tenant, n in self.minutes.items()}
