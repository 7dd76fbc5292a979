"""Write-ahead log with group commit.

Each accepted chunk of records is appended to the open segment as one framed entry::

    b"LWAL" | u32 header length | u32 payload length | u32 CRC-32 | header | payload

The CRC-32 runs over the payload, then the header, so that the payload's part (the costly one)
can be computed beforehand, off the event loop (see ``payload_crc``).

The header is JSON (tenant, source, protocol, receive time), the payload the NDJSON of the
accepted records. A request is acknowledged only once an fsync covers its entry. One committer
task runs the fsyncs: every request that appended while an fsync was running is covered by the
next one (group commit). A segment is closed by ``open_segment``; once an fsync covers it,
``on_closed`` receives its id so the spool can turn it into a Parquet batch and delete it.
A torn or corrupt tail (never acknowledged) is ignored on recovery.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".wal"
MAGIC = b"LWAL"
_FRAME = struct.Struct("<4sIII")


@dataclass(frozen=True)
class WalEntry:
    """One framed entry of a segment."""

    header: dict[str, Any]
    payload: bytes


def payload_crc(payload: bytes) -> int:
    """The payload's part of an entry's CRC-32."""
    return zlib.crc32(payload)


def encode_entry(header: dict[str, Any], payload: bytes) -> bytes:
    """The framed bytes of one entry."""
    return b"".join(entry_parts(header, payload))


def entry_parts(header: dict[str, Any], payload: bytes, crc: int | None = None) -> tuple[bytes, bytes, bytes]:
    """The frame, header and payload of one entry (written together without copying the payload);
    ``crc`` is ``payload_crc(payload)`` when already known."""
    head = orjson.dumps(header)
    crc = zlib.crc32(head, payload_crc(payload) if crc is None else crc)
    return _FRAME.pack(MAGIC, len(head), len(payload), crc), head, payload


def read_entries(path: Path) -> Iterator[WalEntry]:
    """The entries of a segment, stopping at a torn or corrupt tail (never acknowledged)."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        if len(data) - pos < _FRAME.size:
            log.warning("%s: ignoring a torn entry header at byte %d (never acknowledged)", path.name, pos)
            return
        magic, head_len, payload_len, crc = _FRAME.unpack_from(data, pos)
        start = pos + _FRAME.size
        end = start + head_len + payload_len
        head, payload = data[start : start + head_len], data[start + head_len : end]
        if magic != MAGIC or end > len(data) or zlib.crc32(head, zlib.crc32(payload)) != crc:
            log.warning(
                "%s: ignoring a torn or corrupt entry at byte %d (never acknowledged)", path.name, pos
            )
            return
        yield WalEntry(orjson.loads(head), payload)
        pos = end


class WalFailure(RuntimeError):
    """The write-ahead log could not make data durable."""


class WriteAheadLog:
    """Append-only segments in one folder, fsync'ed in groups."""

    def __init__(
        self, directory: Path, on_closed: Callable[[str], None], on_fsync: Callable[[int], None] | None = None
    ) -> None:
        self.directory = directory
        self._on_fsync = on_fsync
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
        self.failed: str | None = None  # set once an fsync failed: nothing further is acknowledged

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

    def append(self, header: dict[str, Any], payload: bytes, crc: int | None = None) -> asyncio.Future:
        """Append one entry to the open segment; the future resolves once it is on disk.

        ``crc`` is ``payload_crc(payload)`` if the caller computed it already (off the event loop).
        """
        if self.failed is not None:
            raise WalFailure(self.failed)
        assert self._fd is not None, "open_segment first"
        _write_all(self._fd, entry_parts(header, payload, crc))
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
                if self._on_fsync is not None:
                    self._on_fsync(len(waiters))
            except OSError as exc:
                self.failed = f"write-ahead log fsync failed: {exc}"
                log.critical("%s; refusing further records", self.failed)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(WalFailure(self.failed))
                continue
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for fd, segment_id in closing:
                os.close(fd)
                self._on_closed(segment_id)

    async def close(self) -> None:
        """Close the open segment (it stays on disk until spooled) and stop the committer."""
        if self._fd is not None:
            self._closing.append((self._fd, self.segment_id))
            self._dirty.add(self._fd)
            self._fd = None
        if self._task and not self._task.done() and self.failed is None:
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


def _write_all(fd: int, parts: tuple[bytes, ...]) -> None:
    """Write ``parts`` in order with as few system calls as possible (handling short writes)."""
    views = [memoryview(part) for part in parts if part]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _fsync_all(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


def is_legacy_segment(path: Path) -> bool:
    """Whether ``path`` is a segment of the first collector version (JSON lines of normalized rows)."""
    with open(path, "rb") as handle:
        head = handle.read(len(MAGIC))
    return head[:1] == b"{"


def read_legacy_segment(path: Path) -> Iterator[dict]:
    """The rows of a first-version segment; a torn last line (never acknowledged) is skipped."""
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                log.warning(
                    "skipping torn last line of %s (%d bytes, never acknowledged)", path.name, len(line)
                )
                break
            yield orjson.loads(line)
