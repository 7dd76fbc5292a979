"""Fixtures of the processing tests."""
from __future__ import annotations

import pytest
from distributed import Client, LocalCluster


@pytest.fixture(scope="module")
def threaded_client():
    """A Dask cluster of threads in this process, so that a test can patch what its tasks call."""
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as dask_client:
        yield dask_client
