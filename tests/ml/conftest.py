"""Fixtures of the ML tests: seeded traffic with template columns, history and incidents."""
from __future__ import annotations

import os

import pytest

from tests.ml.traffic import Incident, Traffic

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

HISTORY_MINUTES = 150


@pytest.fixture(scope="session")
def traffic_run():
    """(traffic, history batches of minutes 0-149, batches of minutes 150-189 with a checkout latency
    incident at 160-170 and an auth error burst at 175-180)."""
    traffic = Traffic(seed=7)
    history = traffic.batches(0, HISTORY_MINUTES)
    incidents = [Incident("latency", "checkout", 160, 170), Incident("errors", "auth", 175, 180)]
    live = traffic.batches(HISTORY_MINUTES, 40, incidents)
    return traffic, history, live, incidents
