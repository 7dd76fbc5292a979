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

Faults (a full disk, an I/O error) never leave a torn entry for the next one to follow, and
never acknowledge what is not durable:

- a write that fails part-way is cut off: the segment is truncated back to its last whole entry
  before anything else is appended (if even the truncation fails, nothing is appended until it
  succeeds), and the request gets ``WalFailure``;
- an fsync that fails puts every byte after the last successful fsync in doubt: every segment is
  truncated back to it, every request waiting on those bytes gets ``WalFailure`` and
  ``on_discarded`` is told which entries are gone;
- after a failure, ``failed`` says why for ``FAILURE_HOLD_SECONDS`` (appends are refused
  meanwhile), then the next append tries again: a disk that had no space recovers by itself.

On recovery, ``read_entries`` keeps every entry whose frame checks out: a corrupt entry in the
middle of a segment is skipped (the reader resynchronises on the next valid frame: magic, lengths
and CRC) and a torn tail (never acknowledged) is ignored; both are reported through ``on_skip``.
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
#: How long appends are refused after a failed write or fsync before the disk is tried again.
FAILURE_HOLD_SECONDS = 1.0


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


def _entry_at(data: bytes, pos: int) -> tuple[WalEntry, int] | None:
    """The valid entry starting at byte ``pos`` of ``data`` and the offset after it, or None."""
    if len(data) - pos < _FRAME.size:
        return None
    magic, head_len, payload_len, crc = _FRAME.unpack_from(data, pos)
    start = pos + _FRAME.size
    end = start + head_len + payload_len
    if magic != MAGIC or end > len(data):
        return None
    head, payload = data[start : start + head_len], data[start + head_len : end]
    if zlib.crc32(head, zlib.crc32(payload)) != crc:
        return None
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict):
        return None
    return WalEntry(header, payload), end


def _next_entry(data: bytes, start: int) -> int | None:
    """The offset of the first valid entry at or after ``start``, or None."""
    while True:
        found = data.find(MAGIC, start)
        if found < 0:
            return None
        if _entry_at(data, found) is not None:
            return found
        start = found + 1


def read_entries(path: Path, on_skip: Callable[[int, int], None] | None = None) -> Iterator[WalEntry]:
    """The valid entries of a segment, in order.

    A corrupt entry is skipped and reading goes on at the next valid frame; a torn tail (a write
    cut short, never acknowledged) is ignored. Each skipped run of bytes is logged and passed to
    ``on_skip(offset, length)``.
    """
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        found = _entry_at(data, pos)
        if found is not None:
            entry, pos = found
            yield entry
            continue
        resume = _next_entry(data, pos + 1)
        if resume is None:
            log.warning(
                "%s: ignoring %d bytes of torn or corrupt tail at byte %d (never acknowledged, or damaged)",
                path.name,
                len(data) - pos,
                pos,
            )
            if on_skip is not None:
                on_skip(pos, len(data) - pos)
            return
        log.warning(
            "%s: skipped %d corrupt bytes at byte %d; the entries after them (from byte %d) are kept",
            path.name,
            resume - pos,
            pos,
            resume,
        )
        if on_skip is not None:
            on_skip(pos, resume - pos)
        pos = resume


class WalFailure(RuntimeError):
    """The write-ahead log could not make data durable: nothing of the request was kept (retry later)."""


class _Segment:
    """One segment file open for appending."""

    __slots__ = ("fd", "segment_id", "end", "durable", "torn")

    def __init__(self, fd: int, segment_id: str) -> None:
        self.fd = fd
        self.segment_id = segment_id
        self.end = os.fstat(fd).st_size  # bytes of whole entries
        self.durable = self.end  # bytes covered by a successful fsync
        self.torn = False  # bytes past ``end`` that could not be truncated yet


class WriteAheadLog:
    """Append-only segments in one folder, fsync'ed in groups.

    ``on_discarded(segment_id, token)`` is called (on the event loop, before the request's future
    fails) for each appended entry that a failed fsync took back; ``token`` is the one given to
    ``append``. ``on_error(kind)`` counts failures (``"write"`` or ``"fsync"``).
    """

    def __init__(
        self,
        directory: Path,
        on_closed: Callable[[str], None],
        on_fsync: Callable[[int], None] | None = None,
        on_discarded: Callable[[str, Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self._on_fsync = on_fsync
        self._on_discarded = on_discarded
        self._on_error = on_error
        self.directory.mkdir(parents=True, exist_ok=True)
        self._on_closed = on_closed
        self._open: _Segment | None = None
        self._fd: int | None = None
        self.segment_id: str | None = None
        self._dirty: set[_Segment] = set()
        self._closing: list[_Segment] = []
        self._waiters: list[tuple[asyncio.Future, _Segment | None, Any]] = []
        self._new_files = False  # a segment was created since the folder was last fsync'ed
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-fsync")
        self.fsyncs = 0
        #: Why the last write or fsync failed; set for FAILURE_HOLD_SECONDS, during which appends are refused.
        self.failed: str | None = None
        self._clear_failure: asyncio.TimerHandle | None = None

    def path_of(self, segment_id: str) -> Path:
        """The file of segment ``segment_id``."""
        return self.directory / f"{segment_id}{SEGMENT_SUFFIX}"

    def start(self) -> None:
        """Start the committer task on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._committer(), name="wal-committer")

    def open_segment(self, segment_id: str) -> None:
        """Direct further appends to a new segment; the previous one is closed after its next fsync.

        Raises OSError when the new file cannot be created (the open segment then stays open)."""
        segment = _Segment(os.open(self.path_of(segment_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                           segment_id)
        if self._open is not None:
            self._closing.append(self._open)
            self._dirty.add(self._open)
        self._open, self._fd, self.segment_id = segment, segment.fd, segment_id
        self._new_files = True
        self._signal()

    def append(
        self, header: dict[str, Any], payload: bytes, crc: int | None = None, token: Any = None
    ) -> asyncio.Future:
        """Append one entry to the open segment; the future resolves once it is on disk.

        ``crc`` is ``payload_crc(payload)`` if the caller computed it already (off the event loop).
        Raises WalFailure, having kept nothing of the entry, when it cannot be written whole; the future
        fails with WalFailure when its fsync fails (the entry is then taken back, see ``on_discarded``).
        """
        if self.failed is not None:
            raise WalFailure(self.failed)
        segment = self._open
        assert segment is not None, "open_segment first"
        if segment.torn:
            self._truncate(segment)
        parts = entry_parts(header, payload, crc)
        try:
            _write_all(segment.fd, parts)
        except OSError as exc:
            segment.torn = True
            self._fail("write", f"write-ahead log write failed: {exc}")
            try:
                self._truncate(segment)
            except WalFailure:
                pass
            raise WalFailure(self.failed) from exc
        segment.end += sum(len(part) for part in parts)
        self._dirty.add(segment)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((waiter, segment, token))
        self._signal()
        return waiter

    def _truncate(self, segment: _Segment) -> None:
        """Cut ``segment`` back to its last whole entry; WalFailure if that fails too."""
        try:
            os.ftruncate(segment.fd, segment.end)
        except OSError as exc:
            log.error("write-ahead segment %s: cannot cut off a torn entry: %s", segment.segment_id, exc)
            raise WalFailure(f"write-ahead log cannot cut off a torn entry: {exc}") from exc
        segment.torn = False
        self._dirty.add(segment)  # the next fsync makes the truncation durable

    def _fail(self, kind: str, reason: str) -> None:
        """Refuse appends with ``reason`` for FAILURE_HOLD_SECONDS."""
        log.error("%s; refusing records for %.0fs", reason, FAILURE_HOLD_SECONDS)
        self.failed = reason
        if self._on_error is not None:
            self._on_error(kind)
        if self._clear_failure is not None:
            self._clear_failure.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._clear_failure = loop.call_later(FAILURE_HOLD_SECONDS, self._clear, reason)

    def _clear(self, reason: str) -> None:
        if self.failed == reason:
            self.failed = None

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
            covered = {segment: segment.end for segment in dirty}
            sync_folder, self._new_files = self._new_files, False
            try:
                await loop.run_in_executor(
                    self._executor, _fsync_all, [segment.fd for segment in dirty],
                    self.directory if sync_folder else None,
                )
            except OSError as exc:
                self._fsync_failed(exc, waiters, dirty, closing, sync_folder)
                await asyncio.sleep(FAILURE_HOLD_SECONDS)
                if self._dirty or self._closing or self._waiters:
                    self._signal()
                continue
            self.fsyncs += 1
            for segment, end in covered.items():
                segment.durable = max(segment.durable, end)
            if self._on_fsync is not None:
                self._on_fsync(len(waiters))
            for waiter, _, _ in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for segment in closing:
                os.close(segment.fd)
                self._on_closed(segment.segment_id)

    def _fsync_failed(
        self,
        exc: OSError,
        waiters: list[tuple[asyncio.Future, _Segment | None, Any]],
        dirty: set[_Segment],
        closing: list[_Segment],
        sync_folder: bool,
    ) -> None:
        """Take back every byte after the last successful fsync and fail every request waiting on them."""
        self._fail("fsync", f"write-ahead log fsync failed: {exc}")
        reason = self.failed
        waiters = waiters + self._waiters
        self._waiters = []
        for segment in dirty | self._dirty:
            if segment.end > segment.durable or segment.torn:
                segment.end = segment.durable
                try:
                    self._truncate(segment)
                except WalFailure:
                    segment.torn = True
        self._dirty |= dirty
        self._closing = closing + self._closing
        self._new_files = self._new_files or sync_folder
        for waiter, segment, token in waiters:
            if segment is not None and self._on_discarded is not None:
                self._on_discarded(segment.segment_id, token)
            if not waiter.done():
                waiter.set_exception(WalFailure(reason))

    async def close(self) -> None:
        """Close the open segment (it stays on disk until spooled) and stop the committer."""
        if self._open is not None:
            self._closing.append(self._open)
            self._dirty.add(self._open)
            self._open = self._fd = None
        if self._task and not self._task.done():
            # Segments are closed right after the waiters of the same round are released.
            barrier = asyncio.get_running_loop().create_future()
            self._waiters.append((barrier, None, None))
            self._signal()
            try:
                await barrier
            except WalFailure as exc:
                log.error("%s: the open segments stay on disk and are recovered at the next start", exc)
        if self._task:
            self._task.cancel()
        if self._clear_failure is not None:
            self._clear_failure.cancel()
        self._executor.shutdown(wait=True)

    def existing_segments(self) -> list[str]:
        """Ids of the segments on disk, oldest first."""
        return sorted(p.name[: -len(SEGMENT_SUFFIX)] for p in self.directory.glob(f"*{SEGMENT_SUFFIX}"))


def _write_all(fd: int, parts: tuple[bytes, ...]) -> None:
    """Write ``parts`` in order with as few system calls as possible (handling short writes)."""
    views = [memoryview(part) for part in parts if part]
    while views:
        written = os.writev(fd, views)
        if written == 0:
            raise OSError(28, "write-ahead segment: no byte written")
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _fsync_all(fds: list[int], folder: Path | None) -> None:
    for fd in fds:
        os.fsync(fd)
    if folder is not None:  # new segment files: make their names durable too
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


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
