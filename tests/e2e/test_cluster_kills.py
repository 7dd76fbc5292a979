"""``kill -9`` of an external Dask scheduler while spool batches are in flight: it is started again on its
port (as a service manager would), its workers with it, and the spool processor carries on. Every batch
is committed once, none is quarantined: the batches lost with the scheduler are not charged an attempt."""
from __future__ import annotations

import time

import pytest

from logwarden.clusters import DaskConnection
from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.processing import pipeline
from logwarden.processing.pipeline import SpoolProcessor
from logwarden.processing.quarantine import Quarantine
from logwarden.storage import Lake, query
from logwarden.testing.dask import DaskCluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]
VALIDATOR = RecordValidator(skew=SkewLimits(max_future=1e10, max_past=1e10))
BATCHES, SIZE = 16, 2000


def spool_batches(paths: DataDir) -> int:
    spool = Spool(paths.spool)
    for b in range(BATCHES):
        rows = [VALIDATOR.normalize({"timestamp": f"2026-11-22T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "level": "INFO",
                                     "service": f"svc-{i % 3}", "message": f"order {b}-{i} shipped in {i % 9} days"},
                                    f"b{b:04d}-{i:06d}", "t", "test", 0) for i in range(SIZE)]
        spool.write(f"{1_700_000_000_000 + b:013d}-kill-{b:06d}", rows)
    return BATCHES * SIZE


def test_a_killed_dask_scheduler_costs_no_batch_and_charges_no_attempt(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_ATTEMPTS", 1)  # one charged failure would quarantine a batch
    cluster = DaskCluster(tmp_path / "dask", workers=2).start()
    dask = DaskConnection.open(cluster.address, 2, None, "127.0.0.1")
    paths = DataDir.at(tmp_path / "data").create()
    total = spool_batches(paths)
    delivered: list[str] = []
    killed: list[int] = []

    def sink(output) -> None:
        delivered.append(output.batch_id)
        if len(delivered) == 2:  # batches are in flight behind this one
            killed.append(cluster.kill_scheduler())

    processor = SpoolProcessor(dask.client, paths, sink, max_in_flight=4, reconnect=dask.reconnect)
    try:
        processor.start()
        deadline = time.monotonic() + 150
        while Spool(paths.spool).depth() and time.monotonic() < deadline:
            time.sleep(0.2)
        processor.stop()
        assert Spool(paths.spool).depth() == 0, processor.last_error
        assert killed and cluster.restarts["scheduler"] >= 1
        assert processor.outages >= 1 and processor.resubmitted >= 1, processor.last_error
        assert Quarantine(paths.spool).count() == 0
        lake = Lake(paths.lake)
        assert len(lake.committed_batches()) == BATCHES
        assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(total, total)]
        assert sorted(delivered) == sorted(set(delivered)) and len(delivered) == BATCHES
    finally:
        processor.stop()
        dask.close()
        cluster.stop()


def test_only_a_batch_s_own_failure_is_charged_an_attempt():
    from logwarden.processing.quarantine import counts_as_attempt

    import errno

    assert counts_as_attempt("error") and counts_as_attempt("error", ValueError("bad record"))
    assert not counts_as_attempt("cancelled") and not counts_as_attempt("lost")
    assert not counts_as_attempt("error", OSError(errno.ENOSPC, "No space left on device"))
    assert counts_as_attempt("error", OSError(errno.EACCES, "Permission denied"))


def test_a_ray_head_counts_as_lost_once_its_gcs_refused_connections_for_the_grace_period():
    import socket

    from logwarden.clusters import RayConnection

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        ray = RayConnection("127.0.0.1:1", gcs_address=f"127.0.0.1:{port}")
        assert ray.lost(grace=0.0) is None
    assert ray.lost(grace=0.3) is None  # refused once: not yet
    time.sleep(0.4)
    reason = ray.lost(grace=0.3)
    assert reason and f"127.0.0.1:{port}" in reason


def test_logwarden_up_exits_75_saying_why_when_its_ray_head_is_gone(tmp_path):
    """The GCS of the head dies (the local raylet lives on a while, as on a node other than the head's):
    ``logwarden up`` notices within seconds, stops cleanly (its collector too) and exits 75, for the
    service manager to start it again once the head is back."""
    import tempfile
    from pathlib import Path

    from logwarden.clusters import EXIT_CLUSTER_LOST
    from logwarden.testing.cluster import cmdline
    from tests.e2e.cluster import RayHead, StackProcess

    head = RayHead(Path(tempfile.mkdtemp(prefix="lwgcs-", dir="/tmp")))
    stack = StackProcess(tmp_path / "data", head, extra=["--dask-workers", "1"])
    try:
        head.start()
        stack.start()
        gcs = [p for p in head.processes() if "gcs_server" in " ".join(cmdline(p))]
        assert gcs, "no gcs_server process found"
        for proc in gcs:
            proc.kill()
        status = stack.popen.wait(90)
        assert status == EXIT_CLUSTER_LOST, stack.output()[-3000:]
        assert "the Ray head at" in stack.output() and "logwarden: stopped" in stack.output()
        assert stack.stray_processes() == []
    finally:
        stack.kill()
        head.stop()
