"""Framing: partial lines, overlong lines, CRI and docker split lines, multi-line records, exact resume offsets."""

from __future__ import annotations

import random

import orjson
import pytest

from logwarden.collector.sources.config import FileSource, Multiline
from logwarden.collector.sources.framing import Block, Dead, Entry, Framer
from logwarden.collector.sources.records import RecordMaker

JAVA = b"""2024-01-01 10:00:00,001 ERROR [main] c.e.Billing - charge failed
java.lang.IllegalStateException: card declined
\tat com.example.Billing.charge(Billing.java:42)
\tat com.example.Api.handle(Api.java:7)
Caused by: java.io.IOException: timeout
\tat com.example.Gateway.call(Gateway.java:99)
\t... 2 more
2024-01-01 10:00:01,000 INFO [main] c.e.Billing - next request
"""

PYTHON = b"""2024-01-01 10:00:00,001 ERROR worker: job failed
Traceback (most recent call last):
  File "/app/job.py", line 10, in run
    step()
  File "/app/job.py", line 5, in step
    raise KeyError("x")
KeyError: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/job.py", line 12, in run
    raise RuntimeError("wrapped")
RuntimeError: wrapped
2024-01-01 10:00:02,000 INFO worker: next job
"""

GO = b"""2024/01/01 10:00:00 serving on :8080
panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.handler(0xc000012345)
\t/app/main.go:12 +0x1d
main.main()
\t/app/main.go:20 +0x25
exit status 2
2024/01/01 10:00:05 restarted
"""


def frame(data: bytes, pieces: int = 1, seed: int = 0, **options) -> list:
    framer = Framer(0, **options)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), pieces - 1)) if pieces > 1 else []
    items = []
    for start, end in zip([0, *cuts], [*cuts, len(data)]):
        framer.feed(data[start:end], 0.0)
        items += framer.take()
    framer.tick(1e9, final=True)
    return items + framer.take()


def records(items: list) -> list[list[bytes]]:
    out = []
    for item in items:
        if isinstance(item, Block):
            out += [[line] for line in item.data.split(b"\n") if line]
        elif isinstance(item, Entry):
            out.append(item.lines)
    return out


@pytest.mark.parametrize("pieces", [1, 7, 60])
def test_java_python_go_tracebacks_are_one_record(pieces: int) -> None:
    java = records(frame(JAVA, pieces, multiline=Multiline("java")))
    assert [len(lines) for lines in java] == [7, 1]
    python = records(frame(PYTHON, pieces, multiline=Multiline("python")))
    assert [len(lines) for lines in python] == [14, 1]
    assert python[0][-1] == b"RuntimeError: wrapped"
    go = records(frame(GO, pieces, multiline=Multiline("go")))
    assert [len(lines) for lines in go] == [1, 8, 1]
    assert go[1][0].startswith(b"panic:") and go[1][-1] == b"exit status 2"
    assert [len(lines) for lines in records(frame(JAVA, pieces))] == [1] * 8  # no rule: one line, one record


def test_start_pattern_groups_lines() -> None:
    data = b"[1] first\n  more\nmore still\n[2] second\n"
    assert [len(r) for r in records(frame(data, multiline=Multiline("start", r"\[\d+\]")))] == [3, 1]


def test_a_multiline_record_is_parsed_from_its_first_line_and_keeps_the_others() -> None:
    (entry, _) = [item for item in frame(JAVA, multiline=Multiline("java")) if isinstance(item, Entry)]
    maker = RecordMaker(FileSource("s", ("x",)), "/var/log/billing/app.log")
    value = maker.entry(entry, "text", True, "2026-01-01T00:00:00+00:00")
    assert value["level"] == "ERROR" and value["timestamp"].startswith("2024-01-01T10:00:00.001")
    assert value["message"].startswith("[main] c.e.Billing - charge failed\njava.lang.IllegalStateException")
    assert value["message"].endswith("\t... 2 more") and value["service"] == "app"


def test_cri_partial_lines_are_joined_per_stream_and_handed_out_in_order() -> None:
    data = (b"2024-01-01T00:00:00.1Z stdout P {\"level\":\"error\",\"msg\":\"par\n"
            b"2024-01-01T00:00:00.2Z stderr F other stream\n"
            b"2024-01-01T00:00:00.3Z stdout P t-\n"
            b"2024-01-01T00:00:00.4Z stdout F joined\"}\n"
            b"2024-01-01T00:00:00.5Z stdout F after\n")
    for pieces in (1, 5, 40):
        items = frame(data, pieces, seed=pieces, mode="cri")
        assert [item.lines for item in items] == [[b'{"level":"error","msg":"part-joined"}'], [b"other stream"],
                                                   [b"after"]]
        assert [item.container.stream for item in items] == ["stdout", "stderr", "stdout"]
        assert items[0].container.time == "2024-01-01T00:00:00.1Z"  # the first part's time
    maker = RecordMaker(FileSource("s", ("x",)), "/var/log/pods/shop_cart-7d9f_0e1b/cart/0.log")
    value = maker.entry(items[0], "cri", True, "2026-01-01T00:00:00+00:00")
    assert (value["message"], value["level"], value["stream"]) == ("part-joined", "ERROR", "stdout")
    assert value["service"] == "cart" and value["kubernetes"]["namespace"] == "shop"


def test_an_unfinished_cri_line_is_taken_as_partial_after_the_timeout() -> None:
    framer = Framer(0, mode="cri", line_timeout=5.0)
    framer.feed(b"2024-01-01T00:00:00Z stdout P half\n", 0.0)
    framer.tick(4.0)
    assert framer.take() == [] and framer.resume() == 0
    framer.tick(5.0)
    (item,) = framer.take()
    assert item.lines == [b"half"] and item.container.partial and framer.resume() == framer.pos


def test_docker_split_lines_are_joined_and_unwrapped() -> None:
    parts = [{"log": "2024-01-01T00:00:00Z WARN disk ", "stream": "stderr", "time": "2024-01-01T00:00:01Z"},
             {"log": "almost full\n", "stream": "stderr", "time": "2024-01-01T00:00:02Z"}]
    data = b"".join(orjson.dumps(part) + b"\n" for part in parts)
    (item,) = frame(data, mode="docker-json")
    maker = RecordMaker(FileSource("s", ("x",)), "/var/lib/docker/containers/abc/abc-json.log")
    value = maker.entry(item, "docker-json", True, "2026-01-01T00:00:00+00:00")
    assert value["message"] == "disk almost full" and value["level"] == "WARNING"
    assert value["stream"] == "stderr" and value["runtime_time"] == "2024-01-01T00:00:01Z"
    assert value["timestamp"].startswith("2024-01-01T00:00:00")


def test_a_partial_last_line_waits_for_its_newline_then_is_taken_as_it_is() -> None:
    framer = Framer(0, line_timeout=5.0)
    framer.feed(b"complete\nhalf a li", 0.0)
    assert [item.data for item in framer.take()] == [b"complete\n"]
    assert framer.resume() == 9
    framer.feed(b"ne", 3.0)
    framer.tick(4.9)
    assert framer.take() == [] and framer.resume() == 9
    framer.tick(5.0)  # five seconds after the line began
    (item,) = framer.take()
    assert item.lines == [b"half a line"] and framer.resume() == framer.pos == 20


@pytest.mark.parametrize("pieces", [1, 3, 200])
def test_an_overlong_line_is_cut_and_the_rest_dead_lettered_without_stalling(pieces: int) -> None:
    long_line = bytes(random.Random(1).choice(b"abcdef") for _ in range(10_000))
    data = b"before\n" + long_line + b"\nafter\n"
    framer = Framer(0, max_line_bytes=1024)
    rng = random.Random(pieces)
    cuts = sorted(rng.sample(range(1, len(data)), pieces - 1)) if pieces > 1 else []
    items = []
    for start, end in zip([0, *cuts], [*cuts, len(data)]):
        framer.feed(data[start:end], 0.0)
        assert len(framer._buf) <= 1024  # never more than one line's worth in memory
        items += framer.take()
    kept = [item for item in items if isinstance(item, Entry) and item.truncated]
    dead = [item for item in items if isinstance(item, Dead)]
    assert [entry.lines for entry in kept] == [[long_line[:1024]]]
    assert b"".join(item.raw for item in dead) == long_line[1024:]
    assert all(len(item.raw) <= 1024 for item in dead)
    assert records(items)[0] == [b"before"] and records(items)[-1] == [b"after"]
    assert framer.resume() == len(data) and not framer.skipping


def test_resume_is_exact_whatever_the_cut_and_the_timeouts() -> None:
    """Read part of a file, "crash", frame again from resume(): every line is handed out exactly once."""
    rng = random.Random(3)
    lines = []
    for n in range(400):
        stream = rng.choice(["stdout", "stderr"])
        tag = "P" if rng.random() < 0.2 else "F"
        lines.append(f"2024-01-01T00:00:{n % 60:02d}Z {stream} {tag} n{n:04d} \n".encode())
        if tag == "F" and rng.random() < 0.3:  # a stack frame: continues the record (multiline java)
            lines.append(f"2024-01-01T00:00:{n % 60:02d}Z {stream} F \tat frame{n}\n".encode())
    data = b"".join(lines)
    options = {"mode": "cri", "multiline": Multiline("java", timeout=1.0), "line_timeout": 100.0}
    for trial in range(40):
        crash = rng.randrange(1, len(data))
        framer = Framer(0, **options)
        handed, clock, pos = [], 0.0, 0
        while pos < crash:
            step = min(rng.randint(1, 300), crash - pos)
            framer.feed(data[pos:pos + step], clock)
            pos += step
            clock += rng.choice([0.0, 0.5, 1.5])  # multi-line records time out, lines do not
            framer.tick(clock)
            handed += framer.take()
        resume = framer.resume()
        again = Framer(resume, skipping=framer.skipping, **options)
        again.feed(data[resume:], clock)
        again.tick(clock + 100, final=True)
        handed += again.take()
        assert min(item.start for item in handed) == 0 and max(item.end for item in handed) == len(data)
        contents = b" ".join(b" ".join(item.lines) for item in handed)
        numbers = sorted(int(word[1:5]) for word in contents.split() if word.startswith(b"n"))
        assert numbers == list(range(400)), f"trial {trial}: a line lost or handed out twice"
