"""The periodic job behind retention, compaction and ML retraining."""
from __future__ import annotations

import time

from logwarden.common.periodic import PeriodicJob


class Counting(PeriodicJob):
    def __init__(self, right_away: bool, fail_first: bool = False, interval: float = 1.0) -> None:
        super().__init__("counting", interval, right_away)
        self.runs: list[float] = []
        self.fail_first = fail_first

    def run_once(self) -> None:
        self.runs.append(time.monotonic())
        if self.fail_first and len(self.runs) == 1:
            raise RuntimeError("first run fails")


def test_runs_right_away_and_goes_on_after_a_failed_run():
    job = Counting(right_away=True, fail_first=True)
    started = time.monotonic()
    job.start()
    deadline = started + 10
    while len(job.runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.stop()
    assert len(job.runs) == 2
    assert job.runs[0] - started < 0.5 <= job.runs[1] - started  # at once, then one interval later
    time.sleep(0.1)
    assert len(job.runs) == 2  # stopped


def test_waits_an_interval_first_when_asked_and_stops_before_running():
    job = Counting(right_away=False)
    job.start()
    job.stop()
    assert job.runs == []
