"""Stream processing on a real Dask cluster: templates consistent across workers, secrets masked,
and exactly once into the lake even when a worker is killed in the middle of a batch."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from distributed import Client, LocalCluster

from collector.spool import Spool
from collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from processing.pipeline import SpoolProcessor
from processing.templates import FileTemplateStore
from storage import Lake, query

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


def test_a_killed_worker_mid_batch_leaves_each_record_in_the_lake_once(tmp_path, client):
    paths = DataDir.at(tmp_path).create()
    total = spool_batches(paths, batches=24, size=3000)
    delivered: list[str] = []
    killed = threading.Event()

    def sink(output):
        delivered.append(output.batch_id)
        if len(delivered) == 2 and not killed.is_set():
            pids = client.run(os.getpid)
            os.kill(next(iter(pids.values())), signal.SIGKILL)  # a worker with batches in flight
            killed.set()

    run_until_drained(SpoolProcessor(client, paths, sink, max_in_flight=6), paths, timeout=240)
    assert killed.is_set()
    client.wait_for_workers(2, timeout=60)
    lake = Lake(paths.lake)
    assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(total, total)]
    assert len(lake.committed_batches()) == 24
    assert sorted(delivered) == sorted(set(delivered)) and len(delivered) == 24
