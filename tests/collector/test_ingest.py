"""The ingestion core: mixed batches, dead-letters with original bytes, durability and recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from logwarden.collector.decoding import split_body
from logwarden.collector.ingest import BatchPolicy, Ingestor
from logwarden.collector.metrics import CollectorMetrics
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.storage import Lake


def record(n: int, **extra) -> dict:
    return {
        "timestamp": f"2026-11-22T10:00:{n % 60:02d}Z",
        "level": "INFO",
        "service": "svc",
        "message": f"m{n}",
        **extra,
    }


def make_ingestor(root: Path, max_age: float = 3600.0) -> Ingestor:
    paths = DataDir.at(root).create()
    validator = RecordValidator(skew=SkewLimits(max_future=1e9, max_past=1e9))
    return Ingestor(
        paths,
        validator,
        BatchPolicy(max_records=50_000, max_age=max_age),
        CollectorMetrics(),
        Lake(paths.lake).is_committed,
    )


def spooled_rows(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "spool").glob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def test_mixed_batch_keeps_valid_and_dead_letters_the_rest_with_original_bytes(tmp_path):
    bad_json = b'{"timestamp": "2026-11-22T10:00:00Z", "level": '
    bad_level = orjson.dumps({**record(2), "level": "LOUD"})
    body = b"\n".join([orjson.dumps(record(1)), bad_json, bad_level, orjson.dumps(record(3))])

    async def scenario():
        ingestor = make_ingestor(tmp_path)
        await ingestor.start()
        result = await ingestor.ingest(
            split_body(body, "application/x-ndjson", 1 << 20), "http", "http:test", "t1"
        )
        await ingestor.stop()
        return result

    result = asyncio.run(scenario())
    assert (result.accepted, result.rejected) == (2, 2)
    assert [(e["index"], e["field"]) for e in result.errors] == [(1, ""), (2, "level")]
    assert "invalid JSON" in result.errors[0]["error"]
    rows = spooled_rows(tmp_path)
    assert [r["message"] for r in rows] == ["m1", "m3"]
    assert {r["tenant"] for r in rows} == {"t1"}
    assert len({r["record_id"] for r in rows}) == 2
    letters = list(make_ingestor(tmp_path).deadletter)
    assert [(d.raw, d.reason, d.index) for d in letters] == [
        (bad_json, "malformed", 1),
        (bad_level, "schema_enum", 2),
    ]
    assert not list((tmp_path / "wal").glob("*.wal"))


def test_batches_roll_over_by_size(tmp_path):
    async def scenario():
        ingestor = make_ingestor(tmp_path)
        ingestor.policy = BatchPolicy(max_records=10, max_age=3600)
        await ingestor.start()
        for start in range(0, 35, 5):
            body = b"\n".join(orjson.dumps(record(n)) for n in range(start, start + 5))
            await ingestor.ingest(split_body(body, None, 1 << 20), "tcp", "tcp:test", "t")
        await ingestor.stop()

    asyncio.run(scenario())
    sizes = [pq.read_metadata(p).num_rows for p in sorted((tmp_path / "spool").glob("*.parquet"))]
    assert sizes == [10, 10, 10, 5]


def test_acknowledged_records_survive_a_crash_exactly_once(tmp_path):
    async def crash_after_ack():
        ingestor = make_ingestor(tmp_path)
        await ingestor.start()
        body = b"\n".join(orjson.dumps(record(n)) for n in range(3))
        result = await ingestor.ingest(split_body(body, None, 1 << 20), "http", "h", "t")
        assert result.accepted == 3  # acknowledged: fsync'ed in the write-ahead log
        # no stop(): the process dies here, with the batch still open

    asyncio.run(crash_after_ack())
    segments = list((tmp_path / "wal").glob("*.wal"))
    assert len(segments) == 1 and not spooled_rows(tmp_path)
    with open(segments[0], "ab") as handle:
        handle.write(b'{"torn": ')  # a write cut short by the crash, never acknowledged

    async def restart():
        ingestor = make_ingestor(tmp_path)
        await ingestor.start()
        await ingestor.stop()

    asyncio.run(restart())
    asyncio.run(restart())  # a second restart must not duplicate anything
    assert sorted(r["message"] for r in spooled_rows(tmp_path)) == ["m0", "m1", "m2"]
    assert not list((tmp_path / "wal").glob("*.wal"))


def test_recovery_skips_segments_already_spooled_or_committed(tmp_path):
    ingestor = make_ingestor(tmp_path)
    wal = tmp_path / "wal"
    row = {"timestamp": 1, "level": "INFO", "service": "s", "message": "x", "record_id": "r"}
    for batch_id in ("b1", "b2"):
        (wal / f"{batch_id}.wal").write_bytes(orjson.dumps(row) + b"\n")
    ingestor.spool.write("b1", [row])
    (tmp_path / "lake" / "_commits").mkdir(parents=True)
    (tmp_path / "lake" / "_commits" / "b2.json").write_text("{}")
    assert ingestor.recover() == 0
    assert [p.name for p in (tmp_path / "spool").glob("*.parquet")] == ["b1.parquet"]
    assert not list(wal.glob("*.wal"))


def test_recovered_batch_equals_the_batch_a_clean_stop_writes(tmp_path):
    """The fast path's in-memory rows and the rows rebuilt from the write-ahead log are the same."""
    bodies = [
        b"".join(
            orjson.dumps(record(n, user_id=f"u{n}", duration_ms=n / 3)) + b"\n" for n in range(k, k + 50)
        )
        for k in (0, 50)
    ]
    mixed = b"\n".join([orjson.dumps(record(200, region="eu")), b"{bad"])

    async def run(root: Path, crash: bool) -> None:
        ingestor = make_ingestor(root)
        await ingestor.start()
        for body in bodies:
            assert (await ingestor.submit(ingestor.decoder.ndjson(body), "http", "h", "t")).accepted == 50
        assert (await ingestor.submit(ingestor.decoder.ndjson(mixed), "http", "h", "t")).accepted == 1
        if not crash:
            await ingestor.stop()

    asyncio.run(run(tmp_path / "clean", crash=False))
    asyncio.run(run(tmp_path / "crashed", crash=True))

    async def restart(root: Path) -> None:
        ingestor = make_ingestor(root)
        await ingestor.start()
        await ingestor.stop()

    asyncio.run(restart(tmp_path / "crashed"))
    clean, recovered = spooled_rows(tmp_path / "clean"), spooled_rows(tmp_path / "crashed")
    assert len(clean) == 101

    def strip(rows):
        return [{k: v for k, v in row.items() if k not in ("record_id", "received_at")} for row in rows]

    assert strip(clean) == strip(recovered)
    assert [r["record_id"][-6:] for r in recovered] == [f"{i:06d}" for i in range(101)]


def test_segments_of_the_first_collector_version_are_recovered(tmp_path):
    ingestor = make_ingestor(tmp_path)
    row = {
        "timestamp": 1_795_334_400_000_000,
        "level": "INFO",
        "service": "s",
        "message": "old",
        "record_id": "r1",
    }
    (tmp_path / "wal" / "0000000000001-abc-000001.wal").write_bytes(orjson.dumps(row) + b"\n")
    assert ingestor.recover() == 1
    assert [r["message"] for r in spooled_rows(tmp_path)] == ["old"]


def test_a_failed_spool_write_is_retried_from_the_write_ahead_segment(tmp_path):
    async def scenario():
        ingestor = make_ingestor(tmp_path)
        ingestor.spool_retry_seconds = 0.05
        real_write = ingestor.spool.write_table
        failures = []

        def failing_once(batch_id, table):
            if not failures:
                failures.append(batch_id)
                raise OSError(28, "No space left on device")
            return real_write(batch_id, table)

        ingestor.spool.write_table = failing_once
        await ingestor.start()
        body = b"".join(orjson.dumps(record(n)) + b"\n" for n in range(5))
        assert (await ingestor.submit(ingestor.decoder.ndjson(body), "http", "h", "t")).accepted == 5
        ingestor.rotate()
        for _ in range(100):
            if list((tmp_path / "spool").glob("*.parquet")):
                break
            await asyncio.sleep(0.02)
        await ingestor.stop()
        return failures

    assert len(asyncio.run(scenario())) == 1
    assert sorted(r["message"] for r in spooled_rows(tmp_path)) == [f"m{n}" for n in range(5)]
    assert not list((tmp_path / "wal").glob("*.wal"))
