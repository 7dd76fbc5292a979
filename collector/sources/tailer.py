"""Follow files as Fluent Bit's tail or Vector's file source do: find them, read them, survive rotation.

**Finding.** Every :data:`SCAN_INTERVAL` (and at once when inotify reports a file created, moved or
deleted in a watched folder: ``watch.py``) the globs of each source are expanded. A file is known by
its device and inode, checked against a fingerprint of its first bytes (``checkpoint.py``), so a
file renamed within the globs is the same file, and an inode reused by a new file is a new file.
Compressed files (``.gz``, ``.zst``, ...) are never followed as such. A file whose first
:data:`~.checkpoint.FINGERPRINT_BYTES` bytes equal those of a file followed in the same folder,
under a name that begins with that file's name, is a rotated copy of it and is not read twice.

**Reading.** Each poll reads what the files have after their read position (``os.pread``, at most
:data:`MAX_FILE_BYTES` per file — a quarter of it unless whole blocks of JSON lines go to the columnar
fast path — and :data:`MAX_ROUND_BYTES` per poll, round-robin) and frames it
(``framing.py``) into a :class:`Chunk`: the items read, and the offset that becomes the file's
checkpoint once the chunk's records are durable (:meth:`Tailer.commit`). A chunk that could not be
made durable is read again (:meth:`Tailer.rewind`).

**Rotation.**

- *rename and create*: the old inode leaves the globs but stays open; it is read to its end, and
  released (its descriptor closed) once it has not grown for ``rotate_wait``. The new file is a new
  file, read from its beginning. A deleted file is treated the same way.
- *copytruncate*: the file shrinks below the read position, or its first bytes change. What was
  not read yet is in the copy: a file of the same folder, named after it (``app.log.1``,
  ``app.log-20240101.gz``...), whose first bytes have the same fingerprint; it is read from the read
  position to its end, decompressed when it is gzip or zstd. The truncated file is then read from
  its beginning.
- *while not running*: at start-up, a checkpoint whose file is no longer at its place (or holds
  other bytes) is looked for the same way, by inode (renamed) or by fingerprint (copied or
  compressed), and read on from its offset.
"""
from __future__ import annotations

import glob
import gzip
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from logwarden.collector.sources.checkpoint import FINGERPRINT_BYTES, CheckpointStore, fingerprint
from logwarden.collector.sources.config import FileSource
from logwarden.collector.sources.framing import PLAIN, Block, Dead, Entry, Framer
from logwarden.collector.sources.records import RecordMaker, detect_format, now_iso
from logwarden.formats.containers import CRI, DOCKER

log = logging.getLogger(__name__)

SCAN_INTERVAL = 1.0
NOTIFIED_SCAN_INTERVAL = 0.25
MAX_FILE_BYTES = 4 << 20
MAX_ROUND_BYTES = 16 << 20
DETECT_BYTES = 64 << 10
#: A compressed copy that keeps ending early (still being written) is given up after this long.
INCOMPLETE_COPY_SECONDS = 60.0
COMPRESSED_SUFFIXES = (".gz", ".zst", ".xz", ".bz2", ".zip", ".lz4", ".z", ".Z")
_READABLE = (".gz", ".zst")

LIVE, ROTATED, COPY = "live", "rotated", "copy"


class IncompleteCopy(Exception):
    """A compressed file ends before its stream does (its compressor is still writing)."""


class CompressedReader:
    """The decompressed bytes of a ``.gz`` or ``.zst`` file from a position on."""

    def __init__(self, path: str, pos: int = 0) -> None:
        self.path = path
        self.pos = 0
        self._open()
        self.skip_to(pos)

    def _open(self) -> None:
        raw = open(self.path, "rb")  # noqa: SIM115 - closed with the stream
        if self.path.endswith(".zst"):
            import zstandard

            self._stream = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        else:
            self._stream = gzip.GzipFile(fileobj=raw, mode="rb")
            self._raw = raw
        self.pos = 0

    def skip_to(self, pos: int) -> None:
        """Read on (discarding) to ``pos``."""
        while self.pos < pos:
            if not self.read(min(pos - self.pos, 1 << 20)):
                return

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end; IncompleteCopy when the file ends early."""
        try:
            data = self._stream.read(size)
        except EOFError as exc:
            raise IncompleteCopy(str(exc)) from None
        except Exception as exc:  # zstandard raises its own errors on a truncated frame
            if type(exc).__name__ == "ZstdError":
                raise IncompleteCopy(str(exc)) from None
            raise
        self.pos += len(data)
        return data

    def reopen(self, pos: int) -> None:
        """Start over and read on to ``pos`` (after an IncompleteCopy)."""
        self.close()
        self._open()
        self.skip_to(pos)

    def close(self) -> None:
        self._stream.close()
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close()


@dataclass(eq=False)
class Followed:
    """One file being read."""

    id: str
    source: FileSource
    path: str
    real: str
    dev: int
    ino: int
    fp: str
    fp_len: int
    committed: int  # the checkpoint: nothing before it is to be read again
    committed_skipping: bool = False
    state: str = LIVE
    fd: int | None = None
    reader: CompressedReader | None = None
    format: str | None = None
    detected: bool = False
    framer: Framer | None = None
    maker: RecordMaker | None = None
    size_seen: int = -1
    since: float = 0.0  # when the state last changed
    last_data: float = 0.0
    saved: bool = False  # whether the checkpoint holds the current path, identity and format
    created: float = 0.0  # when it was first seen (wall clock)

    @property
    def compressed(self) -> bool:
        return self.reader is not None

    def entry(self, offset: int, skipping: bool) -> dict[str, Any]:
        """The checkpoint entry of this file at ``offset``."""
        return {"id": self.id, "source": self.source.name, "path": self.path, "real": self.real, "dev": self.dev,
                "ino": self.ino, "fp": self.fp, "fp_len": self.fp_len, "offset": offset, "skipping": skipping,
                "format": self.format, "detected": self.detected, "compressed": self.compressed,
                "created": self.created}

    @property
    def pos(self) -> int:
        return self.framer.pos if self.framer is not None else self.committed


@dataclass(eq=False)
class Chunk:
    """What one poll read from one file: the items, and the checkpoint once they are durable."""

    file: Followed
    items: list[Block | Entry | Dead]
    entry: dict[str, Any]  # the file's checkpoint once the items are durable
    final: bool  # the file is released once this chunk is committed
    bytes: int
    read_time: str = field(default_factory=now_iso)

    @property
    def resume(self) -> int:
        return self.entry["offset"]


class Tailer:
    """The files of some sources, followed (see the module docstring). Not thread-safe: one caller."""

    def __init__(self, sources: Sequence[FileSource], store: CheckpointStore, *, extra: dict[str, Any] | None = None,
                 add_file: bool = False, clock: Callable[[], float] = time.monotonic,
                 max_file_bytes: int = MAX_FILE_BYTES, max_round_bytes: int = MAX_ROUND_BYTES) -> None:
        self.sources = list(sources)
        self.store = store
        self.extra = extra  # attributes of every record (the node agent: host)
        self.add_file = add_file  # whether every record has a ``file`` attribute (its file's path)
        self.clock = clock
        self.max_file_bytes = max_file_bytes
        self.max_round_bytes = max_round_bytes
        self.files: dict[str, Followed] = {}
        self._by_inode: dict[tuple[int, int], Followed] = {}
        self._sources = {source.name: source for source in self.sources}
        self._scanned = False
        self._fp_index: dict[str, list[str]] = {}
        self._claimed: set[str] = set()  # rotated files taken for the bytes of entries without fingerprint
        self._siblings: set[tuple[int, int]] = set()  # rotated files looked at (device, inode)
        self._started = time.time()
        self._cursor = 0
        self.last_scan = float("-inf")

    # finding ------------------------------------------------------------------------------------
    def scan_due(self, notified: bool) -> bool:
        """Whether to scan now: every :data:`SCAN_INTERVAL`, and after a notification (inotify) at most every
        :data:`NOTIFIED_SCAN_INTERVAL` (files created by the hundred cost one scan, not one each)."""
        since = self.clock() - self.last_scan
        return since >= SCAN_INTERVAL or (notified and since >= NOTIFIED_SCAN_INTERVAL)

    def scan(self) -> None:
        """Expand the globs: follow new files, notice the files that left (rotated or deleted)."""
        now = self.clock()
        self.last_scan = now
        self._index()
        found: dict[tuple[int, int], tuple[FileSource, str]] = {}
        for source in self.sources:
            for path in _expand(source):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.setdefault((st.st_dev, st.st_ino), (source, path))
        for f in list(self.files.values()):  # truncations first: a copy is claimed before it looks new
            if f.state == LIVE and f.fd is not None:
                self._check_truncated(f, os.fstat(f.fd), now)
        for key, (source, path) in found.items():
            f = self._by_inode.get(key)
            if f is not None:
                if f.path != path:
                    f.path, f.real, f.saved = path, os.path.realpath(path), False
                if f.state == ROTATED:
                    f.state, f.since = LIVE, now
                continue
            try:
                self._open(source, path, now)
            except OSError as exc:  # e.g. replaced by a folder meanwhile: the next scan tries again
                log.warning("%s: cannot follow: %s", path, exc.strerror or exc)
        for f in list(self.files.values()):
            if f.state == LIVE and (f.dev, f.ino) not in found:
                links = os.fstat(f.fd).st_nlink if f.fd is not None else 0
                log.info("%s %s: reading it to its end", f.path, "deleted" if links == 0 else "rotated")
                f.state, f.since = ROTATED, now
                f.last_data = max(f.last_data, now)
        first = not self._scanned
        if first:
            self._scanned = True
            self._resume_lost(now)
        self._read_unknown_siblings(now, first)
        for source in self.sources:
            self.store.mark_initialized(source.name)

    def _open(self, source: FileSource, path: str, now: float) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("%s: cannot open: %s", path, exc.strerror or exc)
            return
        try:
            self._start(source, path, fd, now)
        except BaseException:
            if not any(f.fd == fd for f in self.files.values()):
                os.close(fd)
            raise

    def _start(self, source: FileSource, path: str, fd: int, now: float) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        real = os.path.realpath(path)
        entry = self.store.by_inode(st.st_dev, st.st_ino)
        from_start = False
        if entry is not None and not entry.get("fp_len") and not entry.get("released") and head:
            # empty when last seen: its bytes may be here, or in a copy if it was rotated and its inode reused
            if self._continue_weak(entry, now, skip=(st.st_dev, st.st_ino)):
                entry, from_start = None, True
        if entry is not None:
            if _holds(head, entry) and st.st_size >= entry["offset"]:
                self._follow(source, path, real, fd, st, head, entry, LIVE, now)
                return
            if not entry.get("released"):
                log.info("%s: holds other bytes than at its checkpoint (truncated, or a new file): looking "
                         "for its rotated copy", path)
                self._continue_elsewhere(entry, now, skip=(st.st_dev, st.st_ino))
            from_start = True
        if self._is_copy(real, head, (st.st_dev, st.st_ino)):
            os.close(fd)
            return
        if from_start or source.name in self.store.initialized or source.start_at == "beginning":
            offset = 0
        else:
            offset = _after_last_line(fd, st.st_size)
        entry = {"id": secrets.token_hex(8), "source": source.name, "offset": offset, "skipping": False,
                 "format": None, "detected": False, "created": time.time()}
        self._follow(source, path, real, fd, st, head, entry, LIVE, now)

    def _follow(self, source: FileSource, path: str, real: str, fd: int | None, st: os.stat_result | None,
                head: bytes, entry: dict[str, Any], state: str, now: float,
                reader: CompressedReader | None = None) -> Followed:
        fp_len = min(len(head), FINGERPRINT_BYTES)
        f = Followed(entry["id"], source, path, real, st.st_dev if st else 0, st.st_ino if st else 0,
                     fingerprint(head[:fp_len]), fp_len, entry["offset"], bool(entry.get("skipping")), state,
                     fd, reader, entry.get("format"), bool(entry.get("detected")), since=now, last_data=now)
        if reader is None and entry.get("fp_len", 0) > fp_len:  # never shorter than at its checkpoint
            f.fp, f.fp_len = entry["fp"], entry["fp_len"]
        f.size_seen = st.st_size if st else -1
        f.created = entry.get("created") or time.time()
        named = entry.get("path") if state == COPY or (state == ROTATED and entry.get("path")) else path
        extra = {**(self.extra or {}), "file": named} if self.add_file else self.extra
        f.maker = RecordMaker(source, named, extra)
        if f.format is not None:
            f.framer = self._framer(f)
        self.files[f.id] = f
        if fd is not None:
            self._by_inode[(f.dev, f.ino)] = f
        if f.fp_len == FINGERPRINT_BYTES:
            self._fp_index.setdefault(f.fp, []).append(real)
        self.store.put(f.entry(f.committed, f.committed_skipping))
        f.saved = True
        return f

    def _framer(self, f: Followed) -> Framer:
        mode = f.format if f.format in (CRI, DOCKER) else PLAIN
        source = f.source
        return Framer(f.committed, mode, source.multiline, source.max_line_bytes, source.line_timeout,
                      skipping=f.committed_skipping)

    def _is_copy(self, real: str, head: bytes, key: tuple[int, int]) -> bool:
        """Whether a file is a rotated copy of a followed or checkpointed one (same folder, named after it,
        same first bytes)."""
        if len(head) < FINGERPRINT_BYTES:
            return False
        folder, name = os.path.split(real)
        for other_real in self._fp_index.get(fingerprint(head), ()):
            other_folder, other = os.path.split(other_real)
            if other_folder == folder and name != other and name.startswith(other):
                return True
        return False

    def _index(self) -> None:
        """Full fingerprints -> the paths of their files, for :meth:`_is_copy`."""
        self._fp_index = {}
        for entry in self.store.entries.values():
            if entry.get("fp_len") == FINGERPRINT_BYTES and "real" in entry:
                self._fp_index.setdefault(entry["fp"], []).append(entry["real"])

    def _resume_lost(self, now: float) -> None:
        """At start-up: checkpoints of files no longer where they were (rotated while not running)."""
        followed = set(self.files)
        for entry in list(self.store.entries.values()):
            if entry["id"] in followed or entry.get("released"):
                continue
            if entry["source"] not in self._sources:  # a source no longer configured: remembered a while
                self.store.put({**entry, "released": time.time()})
                continue
            self._continue_elsewhere(entry, now)

    def _continue_elsewhere(self, entry: dict[str, Any], now: float, skip: tuple[int, int] | None = None) -> None:
        """Read the bytes of ``entry`` on from its offset where they are now: the same inode under another name,
        or a copy (plain or compressed) with the same first bytes; forget it when they are nowhere."""
        source = self._sources.get(entry["source"])
        if source is None or "fp" not in entry:
            return
        if not entry.get("fp_len"):
            if not self._continue_weak(entry, now, skip=skip):
                self.store.drop(entry["id"])  # empty when last seen, and gone: nothing to read
            return
        found = _find_copy(entry.get("real") or entry["path"], entry["fp"], entry["fp_len"], entry["offset"],
                           exclude=skip, followed=self._by_inode, identity=(entry["dev"], entry["ino"]))
        if found is None:
            log.warning("%s: rotated away, or deleted, and no copy of it found: what it had after byte %d is "
                        "not read", entry["path"], entry["offset"])
            self.store.put({**entry, "released": time.time()})  # remembered: a copy showing up later is known
            return
        path, fd, st, reader = found
        same = fd is not None and (st.st_dev, st.st_ino) == (entry["dev"], entry["ino"])
        log.info("%s: reading on from byte %d in %s", entry["path"], entry["offset"], path)
        head = os.pread(fd, FINGERPRINT_BYTES, 0) if fd is not None else _reader_head(path)
        f = self._follow(source, path, os.path.realpath(path), fd, st, head, entry, ROTATED if same else COPY, now,
                         reader=reader)
        f.fp, f.fp_len = entry["fp"], entry["fp_len"]

    def _read_unknown_siblings(self, now: float, first: bool) -> None:
        """Rotated files that hold bytes no checkpoint knows: files of a followed file's folder, named after it,
        that appeared since the last look (at start-up: written since the previous run wrote its checkpoints)
        and whose first bytes match no entry. They are files created and rotated away between two looks (two
        rotations while nothing ran; logrotate's ``NAME-DATE.backup`` of a file recreated during its
        rotation). Read whole, oldest first."""
        if first:
            since = self.store.last_run
        else:
            since = self._started - 1.0
        names: dict[str, tuple[set[str], FileSource]] = {}
        for entry in self.store.entries.values():
            source = self._sources.get(entry["source"])
            if source is not None and not entry.get("compressed") and entry.get("fp_len") is not None:
                folder, name = os.path.split(entry.get("real") or entry["path"])
                names.setdefault(folder, (set(), source))[0].add(name)
        known = None
        found = []
        for folder, (bases, source) in names.items():
            try:
                entries = list(os.scandir(folder or "."))
            except OSError:
                continue
            for item in entries:
                other = item.name
                if other in bases or not any(other.startswith(base) for base in bases):
                    continue
                if other.endswith(COMPRESSED_SUFFIXES) and not other.endswith(_READABLE):
                    continue
                try:
                    st = item.stat()
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in self._siblings or key in self._by_inode or not stat.S_ISREG(st.st_mode):
                    continue
                self._siblings.add(key)
                if since is None or st.st_mtime < since or item.path in self._claimed:
                    continue
                head = _reader_head(item.path) if other.endswith(_READABLE) else _plain_head(item.path)
                if known is None:
                    known = [(entry["fp"], entry["fp_len"]) for entry in self.store.entries.values()
                             if entry.get("fp_len")]
                if head and not any(len(head) >= fp_len and fingerprint(head[:fp_len]) == fp for fp, fp_len in known):
                    found.append((st.st_mtime, item.path, source))
        for _, path, source in sorted(found, key=lambda item: item[0]):
            try:
                if path.endswith(_READABLE):
                    fd, reader, st, head = None, CompressedReader(path), os.stat(path), _reader_head(path)
                else:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    reader, st, head = None, os.fstat(fd), os.pread(fd, FINGERPRINT_BYTES, 0)
            except (OSError, IncompleteCopy):
                continue
            self._claimed.add(path)
            log.info("%s: a rotated file no checkpoint knows (created and rotated away between two looks): "
                     "read whole", path)
            entry = {"id": secrets.token_hex(8), "source": source.name, "offset": 0, "skipping": False, "format": None,
                     "detected": False, "created": time.time(), "path": path}
            self._follow(source, path, os.path.realpath(path), fd, st, head, entry, COPY, now, reader=reader)

    def _continue_weak(self, entry: dict[str, Any], now: float, skip: tuple[int, int] | None) -> bool:
        """Follow the bytes of an entry that was empty when last seen (no fingerprint to find them by) in the
        rotated copy that no checkpoint accounts for: a file of its folder named after it, not empty, whose
        first bytes match no entry, written since the entry was first seen (the oldest such file). Whether
        one was found."""
        source = self._sources.get(entry["source"])
        if source is None:
            return False
        folder, name = os.path.split(entry.get("real") or entry["path"])
        try:
            names = sorted(other for other in os.listdir(folder or ".") if other != name and other.startswith(name))
        except OSError:
            return False
        known = [(item["fp"], item["fp_len"]) for item in self.store.entries.values() if item.get("fp_len")]
        candidates = []
        for other in names:
            path = os.path.join(folder, other)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in self._by_inode or (st.st_dev, st.st_ino) == skip or path in self._claimed \
                    or st.st_mtime < entry.get("created", 0.0) - 1.0 or not stat.S_ISREG(st.st_mode):
                continue
            if other.endswith(COMPRESSED_SUFFIXES):
                if not other.endswith(_READABLE):
                    continue
                head = _reader_head(path)
            else:
                with open(path, "rb") as handle:
                    head = handle.read(FINGERPRINT_BYTES)
            if head and not any(len(head) >= fp_len and fingerprint(head[:fp_len]) == fp for fp, fp_len in known):
                candidates.append((st.st_mtime, path))
        for _, path in sorted(candidates):
            try:
                if path.endswith(_READABLE):
                    fd, reader, st = None, CompressedReader(path, entry["offset"]), os.stat(path)
                    head = _reader_head(path)
                else:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    reader, st = None, os.fstat(fd)
                    head = os.pread(fd, FINGERPRINT_BYTES, 0)
            except (OSError, IncompleteCopy):
                continue
            self._claimed.add(path)
            log.info("%s: empty when last seen; its bytes are taken to be those of %s, the rotated file no "
                     "checkpoint accounts for", entry["path"], path)
            self._follow(source, path, os.path.realpath(path), fd, st, head, entry, COPY, now, reader=reader)
            return True
        return False

    # reading ------------------------------------------------------------------------------------
    def poll(self) -> list[Chunk]:
        """Read what the files have now; one chunk per file with something to hand out or to checkpoint."""
        now = self.clock()
        files = list(self.files.values())
        if not files:
            return []
        self._cursor = (self._cursor + 1) % len(files)
        files = files[self._cursor:] + files[: self._cursor]
        budget = self.max_round_bytes
        chunks = []
        for f in files:
            if budget <= 0:
                break
            limit = self.max_file_bytes
            if f.format != "json" or f.framer is None or not f.framer.bulk:
                limit //= 4  # lines parsed one by one: smaller chunks, less memory at once
            try:
                chunk = self._read(f, now, min(budget, limit))
            except OSError as exc:
                log.error("%s: cannot read: %s; retrying", f.path, exc.strerror or exc)
                continue
            if chunk is not None:
                chunks.append(chunk)
                budget -= max(chunk.bytes, 1)
        return chunks

    def _read(self, f: Followed, now: float, limit: int) -> Chunk | None:
        if f.framer is None and not self._detect(f, now):
            return None
        data = b""
        at_end = True
        if f.reader is not None:
            try:
                data = f.reader.read(limit)
            except IncompleteCopy:
                if now - f.since < INCOMPLETE_COPY_SECONDS:
                    f.reader.reopen(f.pos)
                    return None
                log.error("%s: compressed copy ends early; what it lacks is not read", f.path)
            at_end = not data
        elif f.fd is not None:
            st = os.fstat(f.fd)
            if f.state == LIVE and self._check_truncated(f, st, now):
                return None
            if st.st_size > f.pos:
                data = os.pread(f.fd, min(st.st_size - f.pos, limit), f.pos)
            at_end = f.pos + len(data) >= st.st_size
            if f.fp_len < FINGERPRINT_BYTES and st.st_size > f.fp_len:
                # at once in the checkpoint: after a crash, a rotated copy is found by these bytes
                head = os.pread(f.fd, FINGERPRINT_BYTES, 0)
                f.fp, f.fp_len = fingerprint(head), len(head)
                self.store.put(f.entry(f.committed, f.committed_skipping))
            f.size_seen = st.st_size
        if data:
            f.framer.feed(data, now)
            f.last_data = now
        final = False
        if f.state != LIVE and not data and at_end:
            final = f.state == COPY or f.fd is None or now - f.last_data >= f.source.rotate_wait
        f.framer.tick(now, final)
        items = f.framer.take()
        resume, skipping = f.framer.resume(), f.framer.skipping
        if not items and not final and f.saved and resume == f.committed and skipping == f.committed_skipping:
            return None
        return Chunk(f, items, f.entry(resume, skipping), final, len(data))

    def _detect(self, f: Followed, now: float) -> bool:
        """Settle the file's format (configured, or detected from its first lines) and its framer."""
        if f.source.format != "auto":
            f.format, f.detected = f.source.format, False
        else:
            if f.reader is not None:
                head = _reader_head(f.path, DETECT_BYTES)
            elif f.fd is not None:
                head = os.pread(f.fd, DETECT_BYTES, 0)
            else:
                head = b""
            if b"\n" not in head and now - f.since < f.source.line_timeout and f.state == LIVE:
                return False  # not one whole line yet
            f.format, f.detected = detect_format(head, "auto")
        f.saved = False
        f.framer = self._framer(f)
        return True

    def _check_truncated(self, f: Followed, st: os.stat_result, now: float) -> bool:
        """Whether ``f`` was truncated (copytruncate); if so, its unread bytes are read from its copy."""
        if st.st_size >= f.pos and (st.st_size == f.size_seen or not f.fp_len
                                    or fingerprint(os.pread(f.fd, f.fp_len, 0)) == f.fp):
            return False
        log.info("%s: truncated at byte %d (copytruncate): reading on in its rotated copy", f.path, f.pos)
        self._by_inode.pop((f.dev, f.ino), None)
        del self.files[f.id]
        found = _find_copy(f.real, f.fp, f.fp_len, f.pos, exclude=(f.dev, f.ino), followed=self._by_inode)
        if found is None:
            shorter = _find_copy(f.real, f.fp, f.fp_len, 0, exclude=(f.dev, f.ino), followed=self._by_inode)
            if shorter is None:
                log.warning("%s: truncated, and no copy of it found: what it had after byte %d is not read",
                            f.path, f.pos)
            else:  # the copy was made before the bytes read last were written: nothing left to read
                if shorter[1] is not None:
                    os.close(shorter[1])
                if shorter[3] is not None:
                    shorter[3].close()
            ghost = Followed(f.id, f.source, f.path, f.real, f.dev, f.ino, f.fp, f.fp_len, f.committed,
                             f.committed_skipping, COPY, None, None, f.format, f.detected, f.framer, f.maker,
                             since=now, last_data=now)
            self.files[ghost.id] = ghost
        else:
            path, fd, copy_st, reader = found
            copy = Followed(f.id, f.source, path, os.path.realpath(path), copy_st.st_dev, copy_st.st_ino, f.fp,
                            f.fp_len, f.committed, f.committed_skipping, COPY, fd, reader, f.format, f.detected,
                            f.framer, f.maker, since=now, last_data=now)
            self.files[copy.id] = copy
            if fd is not None:
                self._by_inode[(copy.dev, copy.ino)] = copy
            self.store.put(copy.entry(copy.committed, copy.committed_skipping))
            copy.saved = True
        head = os.pread(f.fd, FINGERPRINT_BYTES, 0)
        entry = {"id": secrets.token_hex(8), "source": f.source.name, "offset": 0, "skipping": False,
                 "format": f.format, "detected": f.detected, "created": time.time()}
        self._follow(f.source, f.path, f.real, f.fd, st, head, entry, LIVE, now)
        return True

    # after a chunk ------------------------------------------------------------------------------
    def commit(self, chunk: Chunk, saved: bool = False) -> None:
        """The chunk's records are durable: its checkpoint holds (``saved``: the caller journalled it)."""
        f = chunk.file
        f.committed, f.committed_skipping = chunk.entry["offset"], chunk.entry["skipping"]
        if not saved:
            self.store.put(chunk.entry)
        f.saved = True
        if chunk.final:
            self._release(f)

    def rewind(self, chunk: Chunk) -> None:
        """The chunk's records were not made durable: read them again from the checkpoint."""
        f = chunk.file
        if f.reader is not None:
            f.reader.reopen(f.committed)
        if f.format is not None:
            f.framer = self._framer(f)

    def _release(self, f: Followed) -> None:
        """Stop following ``f``: close it; its checkpoint is kept for a while (a file coming back is not read
        twice)."""
        if f.fd is not None:
            os.close(f.fd)
            f.fd = None
        if f.reader is not None:
            f.reader.close()
        if self._by_inode.get((f.dev, f.ino)) is f:
            del self._by_inode[(f.dev, f.ino)]
        self.files.pop(f.id, None)
        entry = f.entry(f.committed, f.committed_skipping)
        entry["released"] = time.time()
        self.store.put(entry)
        log.info("%s: read to its end and released", f.path)

    def close(self) -> None:
        """Close every file (their checkpoints stay)."""
        for f in self.files.values():
            if f.fd is not None:
                os.close(f.fd)
                f.fd = None
            if f.reader is not None:
                f.reader.close()
        self.files.clear()
        self._by_inode.clear()

    @property
    def pending(self) -> bool:
        """Whether some file has read bytes not handed out (a partial line, a multi-line record...)."""
        return any(f.framer is not None and f.framer.pending for f in self.files.values())


def _expand(source: FileSource) -> list[str]:
    paths = []
    for pattern in source.paths:
        for path in glob.iglob(os.path.expanduser(pattern), recursive=True):
            name = os.path.basename(path)
            if name.endswith(COMPRESSED_SUFFIXES):
                continue
            if any(_matches(path, name, exclude) for exclude in source.exclude):
                continue
            paths.append(path)
    return paths


def _matches(path: str, name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(name, pattern)


def _holds(head: bytes, entry: dict[str, Any]) -> bool:
    """Whether a file whose first bytes are ``head`` holds the bytes of ``entry``."""
    fp_len = entry.get("fp_len", 0)
    return len(head) >= fp_len and fingerprint(head[:fp_len]) == entry.get("fp")


def _after_last_line(fd: int, size: int) -> int:
    """The offset after the last newline at or before ``size`` (0 when none in the last 1 MiB)."""
    start = max(0, size - (1 << 20))
    tail = os.pread(fd, size - start, start)
    cut = tail.rfind(b"\n")
    return start + cut + 1 if cut >= 0 else (0 if start == 0 else size)


def _plain_head(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(FINGERPRINT_BYTES)
    except OSError:
        return b""


def _reader_head(path: str, size: int = FINGERPRINT_BYTES) -> bytes:
    try:
        reader = CompressedReader(path)
        try:
            head = b""
            while len(head) < size:
                more = reader.read(size - len(head))
                if not more:
                    break
                head += more
            return head
        finally:
            reader.close()
    except (IncompleteCopy, OSError, EOFError):
        return b""


def _find_copy(real: str, fp: str, fp_len: int, offset: int, *, exclude: tuple[int, int] | None,
               followed: dict[tuple[int, int], Followed], identity: tuple[int, int] | None = None
               ) -> tuple[str, int | None, os.stat_result | None, CompressedReader | None] | None:
    """A file of ``real``'s folder named after it whose first ``fp_len`` bytes have fingerprint ``fp`` and that
    has at least ``offset`` bytes: (path, descriptor, stat, None) when plain (the same inode as ``identity``
    first), (path, None, stat, reader at ``offset``) when compressed."""
    folder, name = os.path.split(real)
    try:
        names = sorted(other for other in os.listdir(folder or ".") if other != name and other.startswith(name))
    except OSError:
        return None
    plain = [other for other in names if not other.endswith(COMPRESSED_SUFFIXES)]
    packed = [other for other in names if other.endswith(_READABLE)]
    matches = []
    for other in plain:
        path = os.path.join(folder, other)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key == exclude or key in followed or not stat.S_ISREG(st.st_mode) or st.st_size < offset \
                or fingerprint(os.pread(fd, fp_len, 0)) != fp:
            os.close(fd)
            continue
        matches.append((key != identity, path, fd, st))
    if matches:
        matches.sort(key=lambda match: match[0])  # the same inode (renamed) before a copy
        for _, path, fd, _ in matches[1:]:
            os.close(fd)
        _, path, fd, st = matches[0]
        return path, fd, st, None
    for other in packed:
        path = os.path.join(folder, other)
        head = _reader_head(path, fp_len)
        if len(head) == fp_len and fingerprint(head) == fp:
            try:
                reader = CompressedReader(path, offset)
            except (IncompleteCopy, OSError):
                continue
            if reader.pos < offset:
                reader.close()
                continue
            return path, None, os.stat(path), reader
    return None


__all__ = ["COPY", "Chunk", "CompressedReader", "Followed", "LIVE", "ROTATED", "SCAN_INTERVAL", "Tailer"]
