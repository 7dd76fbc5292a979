"""Session-wide real clusters for the end-to-end tests (one Ray head for the whole session)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.e2e.cluster import DaskPair, RayHead


@pytest.fixture(scope="session")
def ray_head():
    """A real ``ray start --head`` on 127.0.0.1, with a fresh temp dir, shared by the session."""
    head = RayHead(Path(tempfile.mkdtemp(prefix="lwray-", dir="/tmp")))
    try:
        yield head.start()
    finally:
        head.stop()


@pytest.fixture(scope="session")
def dask_pair(tmp_path_factory):
    """A real ``dask scheduler`` and ``dask worker`` on 127.0.0.1."""
    pair = DaskPair(tmp_path_factory.mktemp("dask"))
    try:
        yield pair.start()
    finally:
        pair.stop()
