"""File sources of a collector (in-process): discovery, release, start_at, long lines, multi-line records,
the JSON fast path, Kubernetes files, restarts, and how a crash's unacknowledged writes are settled."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from logwarden.collector.deadletter import DeadLetterStore
from logwarden.collector.sources.checkpoint import CheckpointStore
from logwarden.collector.sources.local import resolve_intents
from logwarden.collector.wal import encode_entry
from logwarden.common.yamlconf import ConfigError
from logwarden.settings import parse_settings
from tests.sources.helpers import InProcessCollector
from tests.sources.test_framing import JAVA, PYTHON


def source(glob: Path | str, **options: object) -> str:
    extra = "".join(f"    {key}: {orjson.dumps(value).decode()}\n" for key, value in options.items())
    return f"  - type: file\n    paths: ['{glob}']\n{extra}"


def native(n: int, **extra: object) -> bytes:
    return orjson.dumps({"timestamp": "2026-11-22T10:00:00Z", "level": "INFO", "service": "svc",
                         "message": f"m{n}", **extra}) + b"\n"


def test_a_new_file_is_read_within_a_second(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with InProcessCollector(tmp_path / "data", source(logs / "*.log")) as collector:
        time.sleep(1.2)  # the first scans are over: only inotify or the periodic scan can find it
        started = time.monotonic()
        (logs / "new.log").write_bytes(b"2026-11-22T10:00:00Z ERROR payment failed\n")
        while collector.sources.records < 1 and time.monotonic() - started < 5:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    assert collector.sources.records == 1
    assert elapsed < 1.0, f"found after {elapsed:.2f}s"


def open_paths() -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return links


def test_a_deleted_file_is_read_to_its_end_then_released(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "gone.log"
    path.write_bytes(b"one\n")
    with InProcessCollector(tmp_path / "data", source(logs / "*.log", rotate_wait="300ms")) as collector:
        collector.wait_for_rows(1)
        assert any(link.endswith("gone.log") for link in open_paths())
        with open(path, "ab") as handle:
            handle.write(b"two\n")
            os.unlink(path)
            handle.write(b"three\n")  # still written through the open descriptor
        deadline = time.monotonic() + 5
        while any("gone.log" in link for link in open_paths()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any("gone.log" in link for link in open_paths()), "the deleted file is still open"
        rows = collector.wait_for_rows(3)
    assert sorted(row["message"] for row in rows) == ["one", "three", "two"]


def test_start_at_end_reads_only_what_comes_later_and_new_files_whole(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "old.log").write_bytes(b"old 1\nold 2\nold 3 without newline")
    sources = source(logs / "*.log", start_at="end")
    with InProcessCollector(tmp_path / "data", sources) as collector:
        time.sleep(0.5)
        with open(logs / "old.log", "ab") as handle:
            handle.write(b"\nnew 1\n")
        collector.wait_for_rows(2)
    with InProcessCollector(tmp_path / "data", sources) as collector:  # the second run: a new file is read whole
        (logs / "later.log").write_bytes(b"later 1\nlater 2\n")
        rows = collector.wait_for_rows(4)
    assert sorted(row["message"] for row in rows) == ["later 1", "later 2", "new 1", "old 3 without newline"]


def test_a_restart_goes_on_where_it_stopped(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    path.write_bytes(b"".join(native(n) for n in range(100)))
    sources = source(logs / "*.log", format="json")
    for run in range(3):
        with InProcessCollector(tmp_path / "data", sources) as collector:
            collector.wait_for_rows(100 * (run + 1))
            with open(path, "ab") as handle:
                handle.write(b"".join(native(n) for n in range(100 * (run + 1), 100 * (run + 2))))
    with InProcessCollector(tmp_path / "data", sources) as collector:
        rows = collector.wait_for_rows(400)
        time.sleep(0.5)
        rows = collector.rows()
    assert sorted(int(row["message"][1:]) for row in rows) == list(range(400))


def test_native_json_lines_take_the_fast_path_and_others_are_parsed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "native.log").write_bytes(b"".join(native(n) for n in range(50)))
    (logs / "app.log").write_bytes(b'{"ts":"2026-11-22T10:00:01Z","lvl":"warn","msg":"disk low","app":"api","k":1}\n')
    with InProcessCollector(tmp_path / "data", source(logs / "*.log", format="json")) as collector:
        rows = collector.wait_for_rows(51)
    other = [row for row in rows if row["message"] == "disk low"]
    assert len(rows) == 51 and len(other) == 1
    assert (other[0]["service"], other[0]["level"]) == ("api", "WARNING")
    assert orjson.loads(other[0]["attributes"]) == {"k": 1}
    assert all(row["attributes"] is None for row in rows if row["message"].startswith("m"))


def test_an_overlong_line_is_cut_and_its_rest_dead_lettered(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    long_line = b"2026-11-22T10:00:00Z ERROR " + b"y" * 5000
    (logs / "app.log").write_bytes(long_line + b"\nafter\n")
    with InProcessCollector(tmp_path / "data", source(logs / "*.log", max_line_bytes="1KiB")) as collector:
        rows = collector.wait_for_rows(2)
    cut = [row for row in rows if row["message"] != "after"]
    assert len(rows) == 2 and orjson.loads(cut[0]["attributes"]) == {"truncated": True}
    assert cut[0]["level"] == "ERROR" and len(cut[0]["message"]) == 1024 - len(b"2026-11-22T10:00:00Z ERROR ")
    letters = list(DeadLetterStore(tmp_path / "data" / "deadletter"))
    assert b"".join(letter.raw for letter in letters) == long_line[1024:]
    assert {letter.reason for letter in letters} == {"line_too_long"}
    assert {letter.protocol for letter in letters} == {"file"}


@pytest.mark.parametrize(("rule", "text", "first_lines"), [("java", JAVA, 7), ("python", PYTHON, 14)])
def test_multiline_tracebacks_become_one_record(tmp_path: Path, rule: str, text: bytes, first_lines: int) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_bytes(text)
    with InProcessCollector(tmp_path / "data", source(logs / "*.log", multiline=rule)) as collector:
        rows = collector.wait_for_rows(2)
        time.sleep(1.5)  # the last record is emitted after the multi-line timeout; nothing else comes
        rows = collector.rows()
    assert len(rows) == 2
    (trace,) = [row for row in rows if row["level"] == "ERROR"]
    assert trace["message"].count("\n") == first_lines - 1
    assert "Caused by: java.io.IOException" in trace["message"] or "RuntimeError: wrapped" in trace["message"]


def test_kubernetes_files_give_pod_metadata_once_through_both_names(tmp_path: Path) -> None:
    uid = "0e1b2c3d-1111-2222-3333-444455556666"
    container_id = "ab" * 32
    pod_dir = tmp_path / "var/log/pods" / f"shop_cart-7d9f8-xk2p_{uid}" / "cart"
    pod_dir.mkdir(parents=True)
    links = tmp_path / "var/log/containers"
    links.mkdir(parents=True)
    log_file = pod_dir / "0.log"
    log_file.write_bytes(
        b'2026-11-22T10:00:00.123456789Z stderr P {"level":"error","msg":"payment '
        b"\n2026-11-22T10:00:00.2Z stdout F listening on :8080\n"
        b'2026-11-22T10:00:00.3Z stderr F declined","user_id":"u-1"}\n'
    )
    (links / f"cart-7d9f8-xk2p_shop_cart-{container_id}.log").symlink_to(log_file)
    sources = source(links / "*.log") + source(tmp_path / "var/log/pods/*/*/*.log")
    with InProcessCollector(tmp_path / "data", sources) as collector:
        rows = collector.wait_for_rows(2)
        time.sleep(0.5)
        rows = collector.rows()
    assert len(rows) == 2, "the file is read once, through either name"
    error = next(row for row in rows if row["level"] == "ERROR")
    assert (error["message"], error["user_id"], error["service"]) == ("payment declined", "u-1", "cart")
    attributes = orjson.loads(error["attributes"])
    assert attributes["stream"] == "stderr"
    assert attributes["kubernetes"] == {"namespace": "shop", "pod": "cart-7d9f8-xk2p", "pod_uid": uid,
                                        "container": "cart", "container_id": container_id, "restart_count": 0}
    assert error["timestamp"].isoformat().startswith("2026-11-22T10:00:00.123456")


def test_unacknowledged_writes_of_a_crash_are_settled_by_the_write_ahead_log(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "sources")
    entry = {"id": "f1", "source": "s", "path": "/x.log", "dev": 1, "ino": 2, "fp": "ab", "fp_len": 2,
             "offset": 0, "skipping": False}
    store.put(entry)
    payload = native(1) + native(2)
    import zlib

    crc = zlib.crc32(payload)
    durable = store.intent({**entry, "offset": 100}, "/x.log", "seg-1", crc, len(payload), 2)
    missing = store.intent({**entry, "id": "f2", "offset": 50}, "/y.log", "seg-1", 7, 10, 1)
    spooled = store.intent({**entry, "id": "f3", "offset": 70}, "/z.log", "seg-0", 8, 10, 1)
    store.close()
    wal = tmp_path / "wal"
    wal.mkdir()
    header = {"tenant": "default", "source": "/x.log", "protocol": "file", "received_us": 1}
    (wal / "seg-1.wal").write_bytes(encode_entry(header, payload))
    store = CheckpointStore(tmp_path / "sources")  # as after a kill -9
    assert sorted(intent["n"] for intent in store.unresolved()) == [durable, missing, spooled]
    assert resolve_intents(store, wal, lambda segment: segment == "seg-0", lambda segment: False) == (2, 1)
    assert store.entries["f1"]["offset"] == 100 and store.entries["f3"]["offset"] == 70
    assert "f2" not in store.entries and not store.unresolved()
    store.close()
    assert CheckpointStore(tmp_path / "sources").entries["f1"]["offset"] == 100


@pytest.mark.parametrize(("snippet", "message"), [
    ("sources:\n  - type: file\n    paths: [a]\n    colour: red\n", "t.yaml:4: sources.0.colour: unknown key"),
    ("sources:\n  - type: file\n", "t.yaml:2: sources.0.paths: missing"),
    ("sources:\n  - type: socket\n    paths: [a]\n", "t.yaml:2: sources.0.type: expected one of file"),
    ("sources:\n  - type: file\n    paths: [a]\n    multiline: '(unclosed'\n",
     "t.yaml:4: sources.0.multiline: expected java, python, go or a regular expression"),
    ("sources:\n  - type: file\n    paths: [a]\n    service: '{pod}-{colour}'\n",
     "t.yaml:4: sources.0.service: unknown placeholder {colour}"),
    ("sources:\n  - type: file\n    paths: [a]\n    format: yaml\n", "t.yaml:4: sources.0.format: expected one of auto"),
    ("sources: {type: file}\n", "t.yaml:1: sources: expected a list of sources"),
])
def test_the_sources_section_is_refused_with_file_and_line(snippet: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(snippet, "t.yaml")
    assert str(refused.value).startswith(message), str(refused.value)
