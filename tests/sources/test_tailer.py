"""The tailer alone (no collector): rotations while nothing runs, found again by inode or fingerprint — also
for a file that was still empty when last seen — and copies that are not read twice."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from logwarden.collector.sources.checkpoint import CheckpointStore
from logwarden.collector.sources.config import FileSource
from logwarden.collector.sources.framing import Block, Entry
from logwarden.collector.sources.tailer import Tailer


def tailer(tmp_path: Path, logs: Path) -> Tailer:
    source = FileSource("app", (str(logs / "app.log"),), rotate_wait=0.0, line_timeout=0.0)
    return Tailer([source], CheckpointStore(tmp_path / "checkpoints"))


def drain(t: Tailer, rounds: int = 20) -> list[bytes]:
    """Scan, poll and commit until nothing comes: the lines handed out."""
    lines: list[bytes] = []
    for _ in range(rounds):
        t.scan()
        for chunk in t.poll():
            for item in chunk.items:
                if isinstance(item, Block):
                    lines += [line for line in item.data.split(b"\n") if line]
                elif isinstance(item, Entry):
                    lines += item.lines
            t.commit(chunk)
    return lines


def stop(t: Tailer) -> None:  # as a kill -9 would: files closed, the checkpoints as they are on disk
    t.close()
    t.store.close()


def rotate(logs: Path, compress: bool) -> None:
    """logrotate's create (and compress) by hand."""
    for old in sorted(logs.glob("app.log.*"), reverse=True):
        number = int(old.name.split(".")[2])
        old.rename(logs / old.name.replace(f".{number}", f".{number + 1}", 1))
    os.rename(logs / "app.log", logs / "app.log.1")
    (logs / "app.log").touch()
    if compress:
        (logs / "app.log.1.gz").write_bytes(gzip.compress((logs / "app.log.1").read_bytes()))
        (logs / "app.log.1").unlink()


def lines(first: int, count: int) -> bytes:
    return b"".join(b"line %06d %s\n" % (n, b"x" * (n % 50)) for n in range(first, first + count))


@pytest.mark.parametrize("compress", [False, True])
def test_rotations_while_down_are_read_on_from_the_checkpoint(tmp_path: Path, compress: bool) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_bytes(lines(0, 100))
    t = tailer(tmp_path, logs)
    seen = drain(t)
    with open(logs / "app.log", "ab") as handle:
        handle.write(lines(100, 50))  # written, not read before the "crash"
    stop(t)
    rotate(logs, compress)
    (logs / "app.log").write_bytes(lines(150, 50))
    rotate(logs, compress)
    (logs / "app.log").write_bytes(lines(200, 50))
    t = tailer(tmp_path, logs)
    seen += drain(t)
    assert sorted(seen) == sorted(lines(0, 250).splitlines())
    stop(t)


def test_a_file_still_empty_when_last_seen_is_found_in_its_rotated_copy(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_bytes(lines(0, 10))
    t = tailer(tmp_path, logs)
    seen = drain(t)
    stop(t)
    rotate(logs, compress=True)  # the new, empty app.log is seen, then nothing runs
    t = tailer(tmp_path, logs)
    seen += drain(t)
    empty = next(entry for entry in t.store.entries.values() if not entry.get("released"))
    assert empty["fp_len"] == 0
    stop(t)
    (logs / "app.log").write_bytes(lines(10, 40))  # written and rotated away while nothing runs
    rotate(logs, compress=True)
    (logs / "app.log").write_bytes(lines(50, 5))
    t = tailer(tmp_path, logs)
    seen += drain(t)
    assert sorted(seen) == sorted(lines(0, 55).splitlines())
    stop(t)


def test_an_inode_reused_by_the_new_file_does_not_hide_the_old_bytes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").touch()
    t = tailer(tmp_path, logs)
    drain(t)
    (entry,) = t.store.entries.values()
    stop(t)
    (logs / "app.log").write_bytes(lines(0, 30))
    rotate(logs, compress=True)
    (logs / "app.log").write_bytes(lines(30, 3))
    store = CheckpointStore(tmp_path / "checkpoints")  # the new app.log took the old file's inode
    new = os.stat(logs / "app.log")
    store.put({**entry, "dev": new.st_dev, "ino": new.st_ino})
    store.close()
    t = tailer(tmp_path, logs)
    assert sorted(drain(t)) == sorted(lines(0, 33).splitlines())
    stop(t)


def test_a_rotated_copy_in_the_globs_is_not_read_twice(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_bytes(lines(0, 100))
    source = FileSource("app", (str(logs / "app.log*"),), rotate_wait=0.0, line_timeout=0.0)
    t = Tailer([source], CheckpointStore(tmp_path / "checkpoints"))
    seen = drain(t)
    (logs / "app.log.1").write_bytes((logs / "app.log").read_bytes())  # copytruncate: the copy...
    seen += drain(t, 2)  # ...seen before the truncation
    with open(logs / "app.log", "r+b") as handle:
        handle.truncate(0)
    with open(logs / "app.log", "ab") as handle:
        handle.write(lines(100, 10))
    seen += drain(t)
    assert sorted(seen) == sorted(lines(0, 110).splitlines())
    stop(t)


def test_a_file_created_and_moved_aside_between_two_looks_is_read(tmp_path: Path) -> None:
    """logrotate's create finds the log recreated by its writer meanwhile and moves it to NAME-DATE.backup."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_bytes(lines(0, 10))
    t = tailer(tmp_path, logs)
    seen = drain(t)
    os.rename(logs / "app.log", logs / "app.log.1")
    (logs / "app.log").write_bytes(lines(10, 5))  # the writer recreates it...
    os.rename(logs / "app.log", logs / "app.log-2026112210.backup")  # ...logrotate moves that aside
    (logs / "app.log").touch()
    with open(logs / "app.log", "ab") as handle:
        handle.write(lines(15, 5))
    seen += drain(t)
    assert sorted(seen) == sorted(lines(0, 20).splitlines())
    stop(t)
