"""The detectors get a batch before its lake commit is done (issue 20), only the columns asked for; the
spool file goes once both are done; a commit that fails after the detectors took the batch is retried
without handing the batch to them again."""
from __future__ import annotations

import threading
import time

from logwarden.collector.spool import Spool
from logwarden.common.paths import DataDir
from logwarden.processing import pipeline
from logwarden.processing.pipeline import SpoolProcessor
from logwarden.storage import Lake
from tests.processing.batches import write_batch

BATCH = "1700000000001-test-000001"


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_sink_has_the_batch_while_its_commit_is_held_back(tmp_path, threaded_client, monkeypatch):
    paths = DataDir.at(tmp_path).create()
    write_batch(paths, BATCH)
    release, real_commit = threading.Event(), pipeline.commit_transformed

    def held_commit(*args, **kwargs):
        assert release.wait(30)
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(pipeline, "commit_transformed", held_commit)
    handed = []
    processor = SpoolProcessor(threaded_client, paths, handed.append, columns=("timestamp", "service", "template_id"))
    processor.start()
    try:
        wait_for(lambda: handed)
        assert handed[0].records.column_names == ["timestamp", "service", "template_id"]
        assert not Lake(paths.lake).is_committed(BATCH) and Spool(paths.spool).has(BATCH)
        release.set()
        wait_for(lambda: not Spool(paths.spool).has(BATCH))
        assert Lake(paths.lake).is_committed(BATCH) and processor.records_done == 20
    finally:
        release.set()
        processor.stop()


def test_a_commit_failing_after_the_sink_is_retried_without_a_second_hand_off(tmp_path, threaded_client, monkeypatch):
    paths = DataDir.at(tmp_path).create()
    write_batch(paths, BATCH)
    attempts, real_commit = [], pipeline.commit_transformed

    def failing_first(*args, **kwargs):
        attempts.append(1)
        if len(attempts) <= 3:  # the task and Dask's two retries of it: the pipeline sees the failure
            raise RuntimeError("simulated commit failure")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(pipeline, "commit_transformed", failing_first)
    monkeypatch.setattr(pipeline, "MAX_ATTEMPTS", 3)
    handed = []
    processor = SpoolProcessor(threaded_client, paths, handed.append)
    processor.start()
    try:
        wait_for(lambda: not Spool(paths.spool).has(BATCH), timeout=60)  # retried after its 2 s backoff
        assert len(attempts) == 4 and [o.batch_id for o in handed] == [BATCH]
        assert Lake(paths.lake).is_committed(BATCH) and processor.batches_done == 1
    finally:
        processor.stop()
