"""Stream processing on a real Dask cluster: templates consistent across workers, secrets masked,
and exactly once into the lake even when a worker is killed in the middle of a batch."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from distributed import Client, LocalCluster

from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.processing.pipeline import SpoolProcessor
from logwarden.processing.templates import FileTemplateStore
from logwarden.storage import Lake, query

pytestmark = pytest.mark.cluster
VALIDATOR = RecordValidator(skew=SkewLimits(max_future=1e10, max_past=1e10))
MESSAGES = [
    "Connection to 10.0.{n}.7 failed after {r} retries",
    "User u-{n} logged in from 192.168.1.{r}",
    "Payment {n} authorized amount={r}.50 currency=EUR",
    "login attempt user=bob password=hunter{n} from 10.1.1.{r}",
]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as dask_client:
        yield dask_client


def spool_batches(paths: DataDir, batches: int, size: int, first: int = 0) -> int:
    spool = Spool(paths.spool)
    for b in range(first, first + batches):
        rows = []
        for i in range(size):
            n = b * size + i
            record = {"timestamp": f"2026-11-22T10:{(n // 60) % 60:02d}:{n % 60:02d}Z", "level": "INFO",
                      "service": f"svc-{n % 3}", "message": MESSAGES[n % 4].format(n=n, r=n % 9)}
            rows.append(VALIDATOR.normalize(record, f"b{b:04d}-{i:06d}", "t", "test", 0))
        spool.write(f"{1_700_000_000_000 + b:013d}-test-{b:06d}", rows)
    return batches * size


def run_until_drained(processor: SpoolProcessor, paths: DataDir, timeout: float = 120) -> None:
    processor.start()
    deadline = time.monotonic() + timeout
    while Spool(paths.spool).depth() and time.monotonic() < deadline:
        time.sleep(0.1)
    processor.stop()
    assert Spool(paths.spool).depth() == 0, processor.last_error


def test_templates_are_consistent_across_workers_and_restarts(tmp_path, client):
    paths = DataDir.at(tmp_path).create()
    total = spool_batches(paths, batches=6, size=400)
    outputs = []
    run_until_drained(SpoolProcessor(client, paths, outputs.append), paths)
    lake = Lake(paths.lake)
    rows = query(lake, "SELECT template, count(DISTINCT template_id), count(*) FROM logs GROUP BY 1 ORDER BY 1")
    assert [(template, ids) for template, ids, _ in rows] == [
        ("Connection to <*> failed after <*> retries", 1),
        ("Payment <*> authorized amount=<*> currency=EUR", 1),
        ("User <*> logged in from <*>", 1),
        ("login attempt user=bob password=*** from <*>", 1),
    ]
    assert sum(n for *_, n in rows) == total
    assert query(lake, "SELECT count(*) FROM logs WHERE message LIKE '%hunter%'") == [(0,)]
    assert sum(len(o.new_templates) for o in outputs) == 4  # each template announced once
    stored = {t.template_id: t.count for t in FileTemplateStore(paths.lake / "templates").load().templates()}
    assert sum(stored.values()) == total  # usage counted exactly once per record

    more = spool_batches(paths, batches=2, size=100, first=100)  # a restarted processor keeps the ids
    run_until_drained(SpoolProcessor(client, paths, outputs.append), paths)
    again = query(lake, "SELECT count(DISTINCT template_id), count(*) FROM logs")
    assert again == [(4, total + more)]


def test_batches_are_handed_on_in_spool_order_even_when_a_later_one_finishes_first(tmp_path, client):
    paths = DataDir.at(tmp_path).create()
    spool_batches(paths, batches=1, size=30_000)  # slow to process
    spool_batches(paths, batches=3, size=5, first=1)  # quick, on the other worker
    outputs = []
    run_until_drained(SpoolProcessor(client, paths, outputs.append), paths)
    ids = [o.batch_id for o in outputs]
    assert len(ids) == 4 and ids == sorted(ids)


def test_killed_workers_mid_batch_leave_each_record_in_the_lake_once(tmp_path, client):
    paths = DataDir.at(tmp_path).create()
    total = spool_batches(paths, batches=24, size=3000)
    delivered: list[str] = []
    killed: list[int] = []

    def sink(output):
        delivered.append(output.batch_id)
        if len(delivered) in (2, 10):  # one worker, then all of them: every copy of what they held is lost
            pids = list(client.run(os.getpid).values())
            for victim in pids[:1] if len(delivered) == 2 else pids:
                os.kill(victim, signal.SIGKILL)  # workers with batches in flight
                killed.append(victim)

    run_until_drained(SpoolProcessor(client, paths, sink, max_in_flight=6), paths, timeout=240)
    assert len(killed) >= 2
    client.wait_for_workers(2, timeout=60)
    lake = Lake(paths.lake)
    assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(total, total)]
    assert len(lake.committed_batches()) == 24
    assert sorted(delivered) == sorted(set(delivered)) and len(delivered) == 24


def test_backfill_reprocesses_a_time_range_in_place(tmp_path, client):
    from datetime import datetime, timezone

    from logwarden.processing.backfill import batches_in_range, stage_batches
    from logwarden.processing.masking import MaskingConfig

    paths = DataDir.at(tmp_path).create()
    total = spool_batches(paths, batches=3, size=200)
    run_until_drained(SpoolProcessor(client, paths, lambda o: None, masking=MaskingConfig(enabled=False)), paths)
    lake = Lake(paths.lake)
    assert query(lake, "SELECT count(*) FROM logs WHERE message LIKE '%hunter%'")[0][0] > 0

    since, until = datetime(2026, 11, 22, tzinfo=timezone.utc), datetime(2026, 11, 23, tzinfo=timezone.utc)
    batch_ids = batches_in_range(lake, since, until)
    assert len(batch_ids) == 3
    staging = tmp_path / "backfill"
    assert stage_batches(lake, batch_ids, staging) == total
    processor = SpoolProcessor(client, paths, lambda o: None, spool_dir=staging)  # masking on again
    processor.start()
    deadline = time.monotonic() + 60
    while processor.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    processor.stop()
    assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(total, total)]
    assert query(lake, "SELECT count(*) FROM logs WHERE message LIKE '%hunter%'") == [(0,)]
    later = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert batches_in_range(lake, later, later.replace(day=2)) == []


def test_adaptive_cluster_grows_with_the_spool_and_shrinks_when_idle(tmp_path):
    from logwarden.clusters import DaskConnection

    paths = DataDir.at(tmp_path).create()
    spool_batches(paths, batches=30, size=4000)
    dask = DaskConnection.open(None, workers=1, dashboard_port=None, host="127.0.0.1", adaptive_max=3,
                               spool_dir=paths.spool)
    try:
        sizes = []
        processor = SpoolProcessor(dask.client, paths, lambda o: sizes.append(len(dask.client.nthreads())),
                                   max_in_flight=6)
        run_until_drained(processor, paths, timeout=180)
        assert max(sizes) > 1  # grew under the backlog
        deadline = time.monotonic() + 60
        while len(dask.client.nthreads()) > 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(dask.client.nthreads()) == 1  # and shrank back when idle
    finally:
        dask.close()
