"""The periodic job behind retention, compaction and ML retraining."""
from __future__ import annotations

import time

from logwarden.common.periodic import PeriodicJob


class Counting(PeriodicJob):
    def __init__(self, right_away: bool, fail_first: bool = False) -> None:
        super().__init__("counting", 0.05, right_away)
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
    time.sleep(0.4)
    job.stop()
    assert job.runs[0] - started < 0.04 and len(job.runs) >= 3
    count = len(job.runs)
    time.sleep(0.15)
    assert len(job.runs) == count  # stopped


def test_waits_an_interval_first_when_asked_and_stops_before_running():
    job = Counting(right_away=False)
    job.start()
    job.stop()
    assert job.runs == []
