"""Append-only JSON-lines files that never keep a torn line, and readers that survive one.

``append_lines`` writes whole lines only: it takes an exclusive lock on the file, writes the lines,
fsyncs, and on any failure (a full disk, an I/O error) truncates the file back to its size
before the write, so a failed append leaves nothing behind. A file written by an older version
may still end with a torn line: the next append starts on a new line rather than gluing its
first line onto it, and ``read_lines`` skips a line that does not parse, with a warning.
"""
from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import orjson

from logwarden.common.atomic import fsync_path

log = logging.getLogger(__name__)
T = TypeVar("T")


def append_lines(path: Path, data: bytes) -> None:
    """Append ``data`` (whole lines, each ending with a newline) to ``path`` durably, or nothing of it.

    Raises OSError after truncating the file back when the lines cannot be written and fsync'ed."""
    if not data:
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one appender at a time, across threads and processes
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # end the torn last line of an older file: never glue a line onto it
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError as exc:
                log.error("%s: cannot cut off a failed append: %s (readers skip the torn line)", path, exc)
            raise
    finally:
        os.close(fd)
    if not size:
        fsync_path(path.parent)  # a new file: make its name durable


def read_lines(path: Path, parse: Callable[[bytes], T] = orjson.loads) -> Iterator[T]:
    """``parse`` of each non-blank line of ``path``, in order; a line that does not parse (torn by a
    crash or a full disk, or damaged) is skipped with a warning naming the file and line."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield parse(line)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("%s:%d: skipping a torn or corrupt line (%d bytes): %s", path, number, len(line),
                            _short(exc))


def _short(exc: Any) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:119] + "…"
