"""Write-ahead log with group commit.

Accepted records are appended to the open segment and acknowledged only once an
fsync covers them. One committer task runs the fsyncs: every request that appended
while an fsync was running is covered by the next one (group commit). A segment is
closed by ``rotate``; once an fsync covers it, ``on_closed`` receives its id so the
spool can turn it into a Parquet batch and then delete it.
"""
from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import orjson

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".wal"


class WriteAheadLog:
    """Append-only segments in one folder, fsync'ed in groups."""

    def __init__(self, directory: Path, on_closed: Callable[[str], None]) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._on_closed = on_closed
        self._fd: int | None = None
        self.segment_id: str | None = None
        self._dirty: set[int] = set()
        self._closing: list[tuple[int, str]] = []
        self._waiters: list[asyncio.Future] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-fsync")
        self.fsyncs = 0

    def path_of(self, segment_id: str) -> Path:
        """The file of segment ``segment_id``."""
        return self.directory / f"{segment_id}{SEGMENT_SUFFIX}"

    def start(self) -> None:
        """Start the committer task on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._committer(), name="wal-committer")

    def open_segment(self, segment_id: str) -> None:
        """Direct further appends to a new segment; the previous one is closed after its next fsync."""
        if self._fd is not None:
            self._closing.append((self._fd, self.segment_id))
            self._dirty.add(self._fd)
            self._signal()
        self._fd = os.open(self.path_of(segment_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.segment_id = segment_id

    def append(self, data: bytes) -> asyncio.Future:
        """Append ``data`` to the open segment; the future resolves once it is on disk."""
        assert self._fd is not None, "open_segment first"
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._dirty.add(self._fd)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._signal()
        return waiter

    def _signal(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _committer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            waiters, self._waiters = self._waiters, []
            dirty, self._dirty = self._dirty, set()
            closing, self._closing = self._closing, []
            try:
                await loop.run_in_executor(self._executor, _fsync_all, list(dirty))
                self.fsyncs += 1
            except OSError as exc:
                log.error("wal fsync failed: %s", exc)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for fd, segment_id in closing:
                os.close(fd)
                self._on_closed(segment_id)

    async def close(self) -> None:
        """Close the open segment (it stays on disk for recovery) and stop the committer."""
        if self._fd is not None:
            self._closing.append((self._fd, self.segment_id))
            self._dirty.add(self._fd)
            self._fd = None
        if self._task and not self._task.done():
            # Segments are closed right after the waiters of the same round are released.
            barrier = asyncio.get_running_loop().create_future()
            self._waiters.append(barrier)
            self._signal()
            await barrier
        if self._task:
            self._task.cancel()
        self._executor.shutdown(wait=True)

    def existing_segments(self) -> list[str]:
        """Ids of the segments on disk, oldest first."""
        return sorted(p.name[: -len(SEGMENT_SUFFIX)] for p in self.directory.glob(f"*{SEGMENT_SUFFIX}"))


def _fsync_all(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


def read_segment(path: Path) -> Iterator[dict]:
    """The rows of a segment; a torn last line (never acknowledged) is skipped."""
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                log.warning("skipping torn last line of %s (%d bytes, never acknowledged)", path.name, len(line))
                break
            yield orjson.loads(line)
