"""Where each followed file was read to: a snapshot plus a journal, in one folder.

An entry names a file by its device, inode and a fingerprint of its first bytes (a hash of the
first :data:`FINGERPRINT_BYTES` bytes, or of all of them while the file is shorter: ``fp_len``),
and holds ``offset``, the first byte not yet made durable downstream (``Framer.resume``), plus
what is needed to read on from there: the detected format, whether that byte lies within an
overlong line being skipped, and the path seen last.

Changes are appended to ``journal.ndjson`` (one ``write`` each: a ``kill -9`` cannot lose a
written line, the kernel has it); ``state.json`` is rewritten atomically from time to time
(``logwarden.common.atomic``: temporary file, fsync, rename), after which the journal starts
over. Every journal line carries a sequence number, and lines older than the snapshot are
ignored, so a crash between the two is harmless.

An **intent** is journalled just before records of a file are handed to the collector's
write-ahead log, with what identifies the write-ahead entry (its segment, the CRC-32 and the
length of its payload) and the entry the file will have once it is durable; the **ack** that
follows applies it. An intent found without its ack at start-up (a ``kill -9`` in between) is
resolved against the write-ahead log before anything reads it (``local.resolve_intents``): if its
entry is there (or its segment went on to the spool), the records are durable and the offset
advances; otherwise they are read again. So no line is lost and none is written twice.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from logwarden.common.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 256
STATE_FILE = "state.json"
JOURNAL_FILE = "journal.ndjson"
#: Released files are remembered this long, so that a file coming back is not read twice.
KEEP_RELEASED_SECONDS = 7 * 24 * 3600.0
#: ... and this long once neither their path nor a file named after it in their folder exists (pods come and go).
KEEP_GONE_SECONDS = 3600.0
PRUNE_EVERY_SECONDS = 60.0
#: The journal is folded into the snapshot past this size (and by the drivers every few seconds).
MAX_JOURNAL_BYTES = 4 << 20


def fingerprint(head: bytes) -> str:
    """The fingerprint of a file's first bytes."""
    return hashlib.blake2b(head, digest_size=12).hexdigest()


def _stale(entry: dict[str, Any], now: float) -> bool:
    """Whether a released entry can be forgotten: kept :data:`KEEP_RELEASED_SECONDS`, or
    :data:`KEEP_GONE_SECONDS` once its file and its rotated files are all gone."""
    released = entry.get("released")
    if not released:
        return False
    if now - released > KEEP_RELEASED_SECONDS:
        return True
    if now - released <= KEEP_GONE_SECONDS:
        return False
    folder, name = os.path.split(entry.get("real") or entry.get("path") or "")
    try:
        return not any(other.startswith(name) for other in os.listdir(folder or "."))
    except OSError:
        return True


class CheckpointStore:
    """Entries (``id`` -> dict), the sources that ran once, and the pending intents; thread-safe."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, dict[str, Any]] = {}
        self.initialized: set[str] = set()
        self.intents: dict[int, dict[str, Any]] = {}
        self.delivered: dict[str, int] = {}  # the node agent: entry id -> offset the collector acknowledged
        self._seq = 0
        self._lock = threading.RLock()
        self._dirty = False
        self._snapshot_at = time.monotonic()
        self._pruned_at = 0.0
        #: When the previous run last wrote its checkpoints (wall clock; None on a first run): files rotated
        #: after it were rotated while nothing read them.
        self.last_run = self._last_write()
        self._load()
        self._journal = os.open(self.directory / JOURNAL_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._journal_bytes = os.fstat(self._journal).st_size

    # loading --------------------------------------------------------------------------------
    def _last_write(self) -> float | None:
        times = []
        for name in (STATE_FILE, JOURNAL_FILE):
            try:
                times.append(os.stat(self.directory / name).st_mtime)
            except OSError:
                pass
        return max(times) if times else None

    def _load(self) -> None:
        state_path = self.directory / STATE_FILE
        seq = 0
        if state_path.exists():
            state = orjson.loads(state_path.read_bytes())
            seq = state.get("seq", 0)
            self.entries = state.get("files", {})
            self.initialized = set(state.get("initialized", ()))
            self.intents = {int(k): v for k, v in state.get("intents", {}).items()}
            self.delivered = state.get("delivered", {})
        self._seq = seq
        journal = self.directory / JOURNAL_FILE
        if not journal.exists():
            return
        for line in journal.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                op = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("%s: ignoring a torn journal line", journal)
                continue
            if op.get("s", 0) <= seq:
                continue
            self._apply(op)
            self._seq = max(self._seq, op["s"])

    def _apply(self, op: dict[str, Any]) -> None:
        kind = op["op"]
        if kind == "put":
            self.entries[op["entry"]["id"]] = op["entry"]
        elif kind == "drop":
            self.entries.pop(op["id"], None)
        elif kind == "init":
            self.initialized.add(op["source"])
        elif kind == "intent":
            self.intents[op["n"]] = op
        elif kind == "ack":
            intent = self.intents.pop(op["n"], None)
            if intent is not None:
                self.entries[intent["entry"]["id"]] = intent["entry"]
        elif kind == "cancel":
            self.intents.pop(op["n"], None)
        elif kind == "delivered":
            for entry_id, offset in op["offsets"].items():
                self.delivered[entry_id] = max(self.delivered.get(entry_id, 0), offset)

    # changes --------------------------------------------------------------------------------
    def _write(self, op: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            op["s"] = self._seq
            line = orjson.dumps(op) + b"\n"
            view = memoryview(line)
            while view:
                view = view[os.write(self._journal, view):]
            self._journal_bytes += len(line)
            self._apply(op)
            self._dirty = True

    def put(self, entry: dict[str, Any]) -> None:
        """Record ``entry`` (a new file, a new offset, a new path...)."""
        self._write({"op": "put", "entry": dict(entry)})

    def drop(self, entry_id: str) -> None:
        """Forget an entry."""
        if entry_id in self.entries:
            self._write({"op": "drop", "id": entry_id})

    def mark_initialized(self, source: str) -> None:
        """Source ``source`` ran once: files found later are new files (read from their beginning)."""
        if source not in self.initialized:
            self._write({"op": "init", "source": source})

    def intent(self, entry: dict[str, Any], source: str, segment: str | None, crc: int, length: int,
               accepted: int) -> int:
        """Journal that records up to ``entry['offset']`` go to write-ahead segment ``segment`` as a payload of
        ``length`` bytes with CRC-32 ``crc``; returns the intent's number for :meth:`ack`."""
        with self._lock:
            number = self._seq + 1
            self._write({"op": "intent", "n": number, "entry": dict(entry), "source": source, "segment": segment,
                         "crc": crc, "length": length, "accepted": accepted})
            return number

    def ack(self, number: int) -> None:
        """The records of intent ``number`` are durable: its entry applies."""
        self._write({"op": "ack", "n": number})

    def cancel(self, number: int) -> None:
        """The records of intent ``number`` did not become durable: they will be read again."""
        self._write({"op": "cancel", "n": number})

    def mark_delivered(self, offsets: dict[str, int]) -> None:
        """The node agent's collector acknowledged the records of these files up to these offsets."""
        if offsets:
            self._write({"op": "delivered", "offsets": dict(offsets)})

    # queries --------------------------------------------------------------------------------
    def by_inode(self, dev: int, ino: int) -> dict[str, Any] | None:
        """The entry of the file with this device and inode (the one not released, if several)."""
        found = None
        for entry in self.entries.values():
            if entry["dev"] == dev and entry["ino"] == ino and not entry.get("compressed"):
                if not entry.get("released"):
                    return entry
                found = found or entry
        return found

    def unresolved(self) -> list[dict[str, Any]]:
        """Intents without their ack (a crash in between), oldest first."""
        return [self.intents[n] for n in sorted(self.intents)]

    # snapshot -------------------------------------------------------------------------------
    def maybe_snapshot(self, every: float = 2.0) -> None:
        """Fold the journal into the snapshot when it is due (time or size)."""
        if self._dirty and (time.monotonic() - self._snapshot_at >= every or self._journal_bytes > MAX_JOURNAL_BYTES):
            self.snapshot()

    def snapshot(self) -> None:
        """Write ``state.json`` atomically and start the journal over."""
        with self._lock:
            now = time.time()
            if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
                self._pruned_at = now
                for entry_id in [key for key, entry in self.entries.items() if _stale(entry, now)]:
                    del self.entries[entry_id]
            self.delivered = {key: value for key, value in self.delivered.items() if key in self.entries}
            state = {"version": 1, "seq": self._seq, "files": self.entries, "initialized": sorted(self.initialized),
                     "intents": {str(k): v for k, v in self.intents.items()}, "delivered": self.delivered}
            write_bytes_atomic(orjson.dumps(state), self.directory / STATE_FILE)
            os.ftruncate(self._journal, 0)
            self._journal_bytes = 0
            self._dirty = False
            self._snapshot_at = time.monotonic()

    def close(self) -> None:
        """Snapshot and close the journal."""
        with self._lock:
            if self._journal is None:
                return
            self.snapshot()
            os.close(self._journal)
            self._journal = None


__all__ = ["CheckpointStore", "FINGERPRINT_BYTES", "fingerprint"]
