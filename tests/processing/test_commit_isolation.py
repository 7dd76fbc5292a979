"""A batch whose lake commit fails is bisected: the records the lake cannot take go to the dead-letter
store with the reason, the rest commits (issue 16). Runs the two processing phases in-process."""
from __future__ import annotations

import errno

import orjson
import pyarrow.parquet as pq
import pytest

from logwarden.collector.deadletter import DeadLetterStore
from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.processing.batch import (
    DEAD_LETTER_REASON, CorruptBatch, failing_rows, finalize_batch, prepare_batch,
)
from logwarden.processing.mining import TemplateCoordinator
from logwarden.storage import Lake, query

VALIDATOR = RecordValidator(skew=SkewLimits(max_future=1e10, max_past=1e10))
POISON = "poison-service"


def spool_batch(paths: DataDir, services: list[str], size: int = 40, batch_id: str = "1700000000000-t-000001"):
    rows = []
    for i in range(size):
        record = {"timestamp": f"2026-11-22T10:{i % 60:02d}:00Z", "level": "ERROR" if i % 4 == 0 else "INFO",
                  "service": services[i % len(services)], "message": f"request {i} served in {i} ms",
                  "user_id": f"u-{i % 3}", "build": "1.2.3"}
        rows.append(VALIDATOR.normalize(record, f"rec-{i:04d}", "team-a" if i % 2 else "team-b", "http:test", 0))
    return Spool(paths.spool).write(batch_id, rows)


def process(paths: DataDir, path) -> object:
    """prepare -> learn -> finalize, as the SpoolProcessor runs them (without Dask)."""
    templates = TemplateCoordinator(paths.lake)
    unmatched = prepare_batch(str(path), templates.snapshot)
    templates.learn(unmatched)
    return finalize_batch(str(path), str(paths.lake), templates.snapshot, unmatched.messages,
                          deadletter_dir=str(paths.deadletter))


@pytest.fixture
def fail_for_poison(monkeypatch):
    """The Parquet writer fails for any file holding a record of POISON (a record the lake cannot take)."""
    real = pq.write_table

    def write(table, where, *args, **kwargs):
        if "/lake/" in str(where) and "service" in table.column_names and POISON in table["service"].to_pylist():
            raise OSError(errno.ENAMETOOLONG, "File name too long", str(where))
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write)


def test_one_record_the_lake_cannot_take_is_dead_lettered_and_the_rest_commits(tmp_path, fail_for_poison):
    paths = DataDir.at(tmp_path).create()
    services = ["api", "billing", "search"] * 13 + [POISON]  # record 39 is the poison
    path = spool_batch(paths, services)
    output = process(paths, path)
    lake = Lake(paths.lake)
    assert lake.is_committed(output.batch_id)
    assert output.num_records == 39 and output.dead_lettered == 1
    assert POISON not in output.records["service"].to_pylist()
    assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(39, 39)]
    assert query(lake, "SELECT count(*) FROM logs WHERE service = ?", [POISON]) == [(0,)]
    assert query(lake, "SELECT sum(count) FROM aggregates") == [(39,)]  # aggregates of what committed
    letters = list(DeadLetterStore(paths.deadletter))
    assert len(letters) == 1
    letter = letters[0]
    assert letter.reason == DEAD_LETTER_REASON and "File name too long" in letter.error
    assert letter.tenant == "team-a" and letter.source == "http:test"
    raw = orjson.loads(letter.raw)  # a record the collector takes again (deadletter replay)
    assert raw["service"] == POISON and raw["message"] == "request 39 served in 39 ms"
    assert raw["timestamp"] == "2026-11-22T10:39:00Z" and raw["build"] == "1.2.3" and "record_id" not in raw
    # a retry of the same batch (the task ran again) keeps the lake as it is and the letter's id
    again = process(paths, path)
    assert again.dead_lettered == 1
    assert query(lake, "SELECT count(*), count(DISTINCT record_id) FROM logs") == [(39, 39)]
    assert [again.id for again in DeadLetterStore(paths.deadletter)] == [letter.id]  # not stored twice


def test_a_full_disk_is_retried_whole_never_dead_lettered(tmp_path, monkeypatch):
    paths = DataDir.at(tmp_path).create()
    path = spool_batch(paths, ["api", "billing"])
    real = pq.write_table

    def full(table, where, *args, **kwargs):
        if "/lake/" in str(where) and "billing" in table["service"].to_pylist():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(OSError, match="No space"):
        process(paths, path)
    assert not Lake(paths.lake).is_committed(path.stem)
    assert list(DeadLetterStore(paths.deadletter)) == []
    assert query(Lake(paths.lake), "SELECT count(*) FROM logs") in ([], [(0,)])


def test_a_batch_where_every_record_fails_is_not_dead_lettered(tmp_path, fail_for_poison):
    paths = DataDir.at(tmp_path).create()
    path = spool_batch(paths, [POISON], size=8)
    with pytest.raises(OSError, match="File name too long"):
        process(paths, path)  # the lake's trouble, not a record's: retried, then quarantined
    assert list(DeadLetterStore(paths.deadletter)) == []


def test_bisection_finds_exactly_the_failing_rows():
    import pyarrow as pa

    table = pa.table({"n": list(range(100))})
    bad = {3, 4, 57, 99}
    tries = []

    def attempt(part):
        tries.append(part.num_rows)
        if bad & set(part["n"].to_pylist()):
            raise ValueError(f"bad rows in {part.num_rows}")

    found = failing_rows(table, attempt)
    assert [row for row, _ in found] == sorted(bad)
    assert all(isinstance(error, ValueError) for _, error in found)
    assert len(tries) < 60  # far fewer than one try per row


def test_an_unreadable_spool_batch_raises_corrupt_batch(tmp_path):
    paths = DataDir.at(tmp_path).create()
    path = paths.spool / "1700000000000-t-000009.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(CorruptBatch, match="unreadable spool batch"):
        prepare_batch(str(path), TemplateCoordinator(paths.lake).snapshot)
