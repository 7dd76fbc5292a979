"""Shared pytest fixtures for logwarden's test suite."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Ray fixes its authentication mode once, from the environment it sees when it first loads its
# configuration; ``logwarden.clusters`` turns token mode on at import when ~/.ray/auth_token exists. The
# tests that call ``ray.init`` start a private local cluster in this process, whose servers take the mode
# from the environment at ``ray.init``: a test module importing ``logwarden.clusters`` before Ray loaded
# (any collection of the whole suite does) left this process in token mode and those servers without it,
# so every actor's owner was refused and its actors died at start. Pinned here, before any test module is
# imported; ``logwarden up`` children on a ``ray start --head`` get token mode from ``RayHead.env``.
os.environ["RAY_AUTH_MODE"] = "disabled"

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LOGWARDEN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data beside the project; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LOGWARDEN_SHARED_DATA)")
    return SHARED_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files whose tests run on real clusters first, those with the most tests first, then the rest in
    collection order. ``make test`` hands whole files to its workers in this order
    (``--dist loadfile --no-loadscope-reorder``): the few files that take minutes start early, and the many
    short ones at the end even out when the workers finish (ordered by test count instead, as pytest-xdist
    does by default, the slow files, which have few tests, came last)."""
    per_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        per_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def weight(entry: tuple[int, list[pytest.Item]]) -> tuple[int, int, int]:
        position, tests = entry
        on_clusters = any(item.get_closest_marker("cluster") for item in tests)
        return (0, -len(tests), position) if on_clusters else (1, 0, position)

    ordered = sorted(enumerate(per_file.values()), key=weight)
    items[:] = [item for _, tests in ordered for item in tests]
