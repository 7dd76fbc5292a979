"""Trust under faults (issue 16): a full disk, a failing fsync, a corrupt write-ahead entry, torn
dead-letter lines, a dead-letter store at its cap. Nothing acknowledged is lost, nothing refused is
claimed, and the collector takes records again by itself once the fault is gone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import requests

from logwarden.collector import wal as wal_module
from logwarden.collector.config import CollectorConfig
from logwarden.collector.deadletter import DeadLetter, DeadLetterStore
from logwarden.collector.ingest import BatchPolicy, Ingestor
from logwarden.collector.metrics import CollectorMetrics
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.collector.wal import _FRAME, WalFailure
from logwarden.commands import deadletter as deadletter_command
from logwarden.common.paths import DataDir
from logwarden.storage import Lake
from tests.collector.helpers import RunningCollector, collector_config, spooled_rows
from tests.diskfull import fill, free_bytes, small_disk

REPO = Path(__file__).resolve().parents[2]
NDJSON = {"Content-Type": "application/x-ndjson"}


def body(tag: str, count: int, pad: int = 40) -> bytes:
    """``count`` valid records whose messages are ``tag-0`` ... (padded to make the body bigger)."""
    return b"".join(
        orjson.dumps(
            {
                "timestamp": "2026-11-22T10:00:00Z",
                "level": "INFO",
                "service": "svc",
                "message": f"{tag}-{i}",
                "note": "x" * pad,
            }
        )
        + b"\n"
        for i in range(count)
    )


def messages(count: int, tag: str) -> list[str]:
    return [f"{tag}-{i}" for i in range(count)]


def make_ingestor(root: Path, **options) -> Ingestor:
    paths = DataDir.at(root).create()
    return Ingestor(
        paths,
        RecordValidator(skew=SkewLimits(max_future=1e10, max_past=1e10)),
        BatchPolicy(max_records=1_000_000, max_age=3600.0),
        CollectorMetrics(),
        Lake(paths.lake).is_committed,
        **options,
    )


def metric(ingestor: Ingestor, name: str, **labels: str) -> float:
    return ingestor.metrics.registry.get_sample_value(name, labels) or 0.0


def restart(root: Path) -> Ingestor:
    """Start an ingestor on ``root`` (recovering what is on disk) and stop it cleanly."""

    async def run() -> Ingestor:
        ingestor = make_ingestor(root)
        await ingestor.start()
        await ingestor.stop()
        return ingestor

    return asyncio.run(run())


# -- a collector process, killed with -9 -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(data: Path, port: int, config: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "logwarden", "collector", "--data-dir", str(data), "--http-port", str(port),
               "--no-tcp", "--no-syslog", "--config", str(config)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("collector did not start")


def test_a_full_disk_answers_503_and_loses_no_acknowledged_record(tmp_path):
    """The issue's sequence: a write-ahead write fails part-way (ENOSPC); the next request must not be
    appended after a torn entry, and recovery after kill -9 must keep every acknowledged record."""
    config = tmp_path / "logwarden.yaml"
    config.write_text(  # the low-water mark out of the way: this is about writes that fail anyway
        "collector:\n  min_free_disk_bytes: 1\n  batch: {max_records: 1000000, max_age: 1h}\n"
        "  timestamp_skew: {max_future: 3650d, max_past: 3650d}\n"
    )
    with small_disk(tmp_path / "disk") as disk:
        data, port = disk / "data", free_port()
        url = f"http://127.0.0.1:{port}/v1/logs"
        acknowledged: list[str] = []
        refused: list[tuple[str, requests.Response]] = []

        def post(tag: str, count: int) -> requests.Response:
            answer = requests.post(url, data=body(tag, count), headers=NDJSON, timeout=30)
            if answer.status_code == 200:
                assert answer.json()["accepted"] == count
                acknowledged.extend(messages(count, tag))
            else:
                refused.append((tag, answer))
            return answer

        process = start_collector(data, port, config)
        try:
            post("a", 100)
            [segment] = (data / "wal").glob("*.wal")
            size_after_a = segment.stat().st_size
            filler = fill(disk / "filler", leave=64 * 1024)
            big = post("b", 3000)  # ~300 KB: the write fails part-way
            size_after_b = segment.stat().st_size
            os.truncate(filler, filler.stat().st_size - 32 * 1024)  # a little space comes back
            deadline = time.monotonic() + 10
            while post("c", 10).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)  # refused for a moment after the failure, then taken again: no restart
            filler.unlink()
            post("d", 50)
        finally:
            process.kill()  # kill -9: the open segment is all there is
            process.wait(10)
        restarted = start_collector(data, port, config)
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0
        kept = Counter(row["message"] for row in spooled_rows(data))

    # every acknowledged record exactly once, nothing of the refused request claimed
    missing = [m for m in acknowledged if kept[m] == 0]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    assert all(kept[m] == 1 for m in acknowledged)
    assert not [m for m in kept if m.startswith("b-")], "records of a refused request were claimed"
    assert sum(kept.values()) == len(acknowledged)
    assert set(acknowledged) == set(messages(100, "a") + messages(10, "c") + messages(50, "d"))
    # the failed request: 503, retryable, with the reason; its torn bytes cut off at once
    assert big.status_code == 503, big.text
    assert big.headers.get("Retry-After") == "1"
    assert "No space left" in big.json()["errors"][0]["error"]
    assert size_after_b == size_after_a
    assert all(answer.status_code == 503 and answer.headers.get("Retry-After") for _, answer in refused)


def test_under_the_low_water_mark_ready_is_false_and_records_are_refused_before_the_disk_is_full(tmp_path):
    mark = 8 << 20
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        with RunningCollector(data, collector_config(min_free_disk_bytes=mark)) as collector:
            ready = f"{collector.url}/ready"
            assert requests.get(ready, timeout=5).json()["ready"] is True
            assert requests.post(f"{collector.url}/v1/logs", data=body("a", 20), timeout=10).status_code == 200
            [segment] = (data / "wal").glob("*.wal")
            size = segment.stat().st_size
            filler = fill(disk / "filler", leave=4 << 20)  # 4 MiB left: the disk is not full yet
            assert free_bytes(disk) > 1 << 20
            deadline = time.monotonic() + 5
            while requests.get(ready, timeout=5).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            state = requests.get(ready, timeout=5).json()
            assert state["ready"] is False and "min_free_disk_bytes" in state["problems"][0]
            refused = requests.post(f"{collector.url}/v1/logs", data=body("b", 20), timeout=10)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert "min_free_disk_bytes" in refused.json()["errors"][0]["error"]
            assert segment.stat().st_size == size  # nothing of it was written
            filler.unlink()
            deadline = time.monotonic() + 5
            while requests.get(ready, timeout=5).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert requests.post(f"{collector.url}/v1/logs", data=body("c", 20), timeout=10).status_code == 200
        rows = sorted(row["message"] for row in spooled_rows(data))
    assert rows == sorted(messages(20, "a") + messages(20, "c"))


@pytest.mark.parametrize("ending", ["crash", "stop"])
def test_every_waiter_of_a_failed_group_commit_fails_and_the_log_recovers_by_itself(tmp_path, monkeypatch, ending):
    real_fsync_all = wal_module._fsync_all
    failing = {"armed": False, "failed": 0}

    def fsync_all(*args):
        if failing["armed"]:
            failing["armed"] = False
            failing["failed"] += 1
            raise OSError(5, "Input/output error")
        return real_fsync_all(*args)

    monkeypatch.setattr(wal_module, "_fsync_all", fsync_all)

    async def scenario():
        ingestor = make_ingestor(tmp_path)
        await ingestor.start()
        await asyncio.sleep(0.05)  # the first fsync (of the new segment's folder) is done
        failing["armed"] = True
        decoder = ingestor.decoder
        group = await asyncio.gather(
            *(ingestor.submit(decoder.ndjson(body(tag, 5)), "http", "h", "t") for tag in ("x", "y", "z")),
            return_exceptions=True,
        )
        segment = ingestor.wal.path_of(ingestor.wal.segment_id)
        size_after_failure = segment.stat().st_size
        await asyncio.sleep(wal_module.FAILURE_HOLD_SECONDS + 0.2)
        later = await ingestor.submit(decoder.ndjson(body("w", 5)), "http", "h", "t")
        if ending == "stop":
            await ingestor.stop()  # the batch is spooled from memory
        # else no stop(): the process dies here, recovery reads the segment
        return group, size_after_failure, later

    group, size_after_failure, later = asyncio.run(scenario())
    assert failing["failed"] == 1
    assert [type(result) for result in group] == [WalFailure] * 3
    assert size_after_failure == 0  # the entries of the failed fsync are taken back
    assert later.accepted == 5
    restart(tmp_path)
    assert sorted(row["message"] for row in spooled_rows(tmp_path)) == messages(5, "w")


def _frames(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each entry of a segment."""
    data, pos, frames = path.read_bytes(), 0, []
    while pos < len(data):
        _, head_len, payload_len, _ = _FRAME.unpack_from(data, pos)
        length = _FRAME.size + head_len + payload_len
        frames.append((pos, length))
        pos += length
    return frames


@pytest.mark.parametrize("damage", ["payload", "magic", "length"])
def test_a_corrupt_entry_in_the_middle_of_a_segment_loses_only_itself(tmp_path, damage, caplog):
    async def crash_after_three_entries():
        ingestor = make_ingestor(tmp_path)
        await ingestor.start()
        for tag in ("first", "middle", "last"):
            result = await ingestor.submit(ingestor.decoder.ndjson(body(tag, 5)), "http", "h", "t")
            assert result.accepted == 5
        # no stop(): the process dies, the segment stays on disk

    asyncio.run(crash_after_three_entries())
    [segment] = (tmp_path / "wal").glob("*.wal")
    frames = _frames(segment)
    assert len(frames) == 3
    offset, length = frames[1]
    data = bytearray(segment.read_bytes())
    if damage == "payload":
        data[offset + length - 10] ^= 0xFF
    elif damage == "magic":
        data[offset] = ord("X")
    else:
        data[offset + 8 : offset + 12] = (1 << 30).to_bytes(4, "little")
    segment.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING):
        ingestor = restart(tmp_path)
    assert sorted(row["message"] for row in spooled_rows(tmp_path)) == sorted(
        messages(5, "first") + messages(5, "last")
    )
    assert metric(ingestor, "logwarden_collector_wal_skipped_bytes_total") == length
    assert f"skipped {length} corrupt bytes" in caplog.text


def test_a_mixed_batch_whose_dead_letters_cannot_be_written_is_answered_with_what_was_stored(tmp_path):
    def disk_full(letters):
        raise OSError(28, "No space left on device")

    data = tmp_path / "data"
    with RunningCollector(data, collector_config()) as collector:
        collector.server.ingestor.deadletter.add = disk_full
        mixed = body("ok", 2) + orjson.dumps({"timestamp": "2026-11-22T10:00:00Z", "level": "LOUD",
                                              "service": "s", "message": "bad"}) + b"\n"
        answer = requests.post(f"{collector.url}/v1/logs", data=mixed, headers=NDJSON, timeout=10)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["accepted"], result["rejected"]) == (2, 1)
        assert "errors_truncated" not in result
        lost = [error for error in result["errors"] if error["index"] is None]
        assert len(lost) == 1 and "dead-letter store" in lost[0]["error"] and "No space left" in lost[0]["error"]
        assert metric(collector.server.ingestor, "logwarden_collector_deadletter_write_failures_total",
                      protocol="http") == 1
    assert sorted(row["message"] for row in spooled_rows(data)) == messages(2, "ok")


# -- the dead-letter store ----------------------------------------------------------------------------


def letter(raw: bytes) -> DeadLetter:
    return DeadLetter(raw, "schema_enum", "not one of", "level", "http:test", "t", 0)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    deadletter_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deadletter", *argv])
    return args.func(args)


def test_a_torn_dead_letter_line_is_skipped_and_never_glued_onto(tmp_path, caplog, capsys):
    data = tmp_path / "data"
    store = DeadLetterStore(DataDir.at(data).deadletter)
    store.add([letter(b"first")])
    [path] = store.files()
    torn = letter(b"torn").to_json()
    with open(path, "ab") as handle:  # an older version, cut short by a full disk or a crash
        handle.write(torn[: len(torn) // 2])
    store.add([letter(b"second")])
    with caplog.at_level(logging.WARNING):
        assert [item.raw for item in store] == [b"first", b"second"]
    assert "skipping a torn or corrupt line" in caplog.text
    assert cli("list", "--data-dir", str(data)) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and "first" in listed[0] and "second" in listed[1]


def test_a_dead_letter_write_on_a_full_disk_leaves_no_torn_line(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        store = DeadLetterStore(disk / "deadletter")
        store.add([letter(b"kept")])
        [path] = store.files()
        before = path.read_bytes()
        filler = fill(disk / "filler", leave=16 * 1024)
        with pytest.raises(OSError):
            store.add([letter(b"x" * 200_000)])
        assert path.read_bytes() == before
        filler.unlink()
        store.add([letter(b"after")])
        assert [item.raw for item in store] == [b"kept", b"after"]


def test_the_dead_letter_store_evicts_its_oldest_letters_past_its_cap(tmp_path):
    cap = 64 * 1024
    assert CollectorConfig.from_dict({"max_deadletter_bytes": "64KiB"}).max_deadletter_bytes == cap

    async def flood():
        ingestor = make_ingestor(tmp_path, max_deadletter_bytes=cap)
        await ingestor.start()
        sizes = []
        for n in range(200):
            bad = orjson.dumps({"timestamp": "2026-11-22T10:00:00Z", "level": "LOUD", "service": "s",
                                "message": f"bad-{n:03d}", "note": "y" * 1000}) + b"\n"
            result = await ingestor.submit(ingestor.decoder.ndjson(bad + body(f"ok{n}", 1)), "http", "h", "t")
            assert (result.accepted, result.rejected) == (1, 1)
            sizes.append(ingestor.deadletter.size())
        await ingestor.stop()
        return ingestor, sizes

    ingestor, sizes = asyncio.run(flood())
    assert max(sizes) <= cap
    kept = [orjson.loads(item.raw)["message"] for item in ingestor.deadletter]
    assert kept == [f"bad-{n:03d}" for n in range(200 - len(kept), 200)]  # the newest, in order
    assert 30 < len(kept) < 200
    assert len(ingestor.deadletter.files()) > 1  # evicted a file at a time, not the whole store
    assert metric(ingestor, "logwarden_collector_deadletters_evicted_total") == 200 - len(kept)
    assert len(spooled_rows(tmp_path)) == 200  # the valid records are untouched


def test_a_batch_of_letters_larger_than_the_cap_keeps_its_newest(tmp_path):
    evicted = []
    store = DeadLetterStore(tmp_path / "deadletter", max_bytes=4000, on_evicted=evicted.append)
    store.add([letter(f"{n:02d}".encode() + b"z" * 300) for n in range(40)])
    kept = [item.raw[:2] for item in store]
    assert store.size() <= 4000 and kept == [f"{n:02d}".encode() for n in range(40 - len(kept), 40)]
    assert sum(evicted) == 40 - len(kept)


def test_a_start_on_a_full_disk_keeps_the_segments_and_spools_them_once_space_returns(tmp_path):
    with small_disk(tmp_path / "disk", "8m") as disk:
        root = disk / "data"

        async def crash_after_ack():
            ingestor = make_ingestor(root)
            await ingestor.start()
            assert (await ingestor.submit(ingestor.decoder.ndjson(body("a", 200)), "http", "h", "t")).accepted == 200
            # no stop(): the process dies, the segment stays on disk

        asyncio.run(crash_after_ack())
        [segment] = (root / "wal").glob("*.wal")
        filler = fill(disk / "filler")

        async def start_while_full():
            ingestor = make_ingestor(root)
            ingestor.spool_retry_seconds = 0.1
            await ingestor.start()  # must not fail, nor drop the segment
            assert segment.exists() and not spooled_rows(root)
            assert not list((root / "spool").glob(".*.tmp"))  # a failed spool write gives its space back
            filler.unlink()
            deadline = time.monotonic() + 10
            while segment.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await ingestor.stop()

        asyncio.run(start_while_full())
        assert sorted(row["message"] for row in spooled_rows(root)) == sorted(messages(200, "a"))
        assert not segment.exists()
