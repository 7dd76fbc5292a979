"""The dead-letter store: every rejected record with its original bytes, the reason, the source and the time.

Letters are appended to hourly JSON-lines files (``YYYY-MM-DDTHH.jsonl``, then ``YYYY-MM-DDTHH.1.jsonl``
... once a file holds an eighth of the cap), one fsync per batch of letters. An append is whole or
nothing (``common/jsonlines.py``): a full disk never leaves a torn line, and a torn or corrupt line
of an older file is skipped with a warning. Replaying a letter through the collector records its
id in ``replayed.jsonl`` so that it is neither listed as pending nor replayed twice.

The store is capped at ``max_bytes`` (``collector.max_deadletter_bytes``, 1 GiB by default): before
an append would pass it, the oldest files are deleted, oldest first, and the letters they held are
counted (``on_evicted``; the collector's metric ``logwarden_collector_deadletters_evicted_total``).
New letters are always kept; a single batch larger than the cap keeps its newest letters that fit.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

import orjson

from logwarden.common.jsonlines import append_lines, read_lines

log = logging.getLogger(__name__)
REPLAYED_FILE = "replayed.jsonl"
DEFAULT_MAX_BYTES = 1 << 30
#: A file takes new letters until it holds this share of the cap, so an eviction frees at most about as much.
FILE_SHARE = 8
#: How long the sizes of the files, as last read from the folder, are trusted (other processes may add letters).
RESCAN_SECONDS = 5.0


@dataclass
class DeadLetter:
    """One rejected record."""

    raw: bytes
    reason: str
    error: str
    field: str
    source: str
    tenant: str
    index: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: float = field(default_factory=time.time)
    protocol: str = ""

    def to_json(self) -> bytes:
        """One JSON line; the raw bytes in base64 so that invalid UTF-8 survives."""
        body = asdict(self)
        body["raw"] = base64.b64encode(self.raw).decode()
        return orjson.dumps(body) + b"\n"

    @classmethod
    def from_json(cls, line: bytes) -> "DeadLetter":
        """The inverse of ``to_json`` (keys this version does not know are ignored); ValueError, KeyError
        or TypeError on a line that is not a letter."""
        body = orjson.loads(line)
        known = {f.name for f in fields(cls)}
        body = {key: value for key, value in body.items() if key in known}
        body["raw"] = base64.b64decode(body["raw"], validate=True)
        return cls(**body)


def _order(path: Path) -> tuple[str, int]:
    """Files sort by hour, then by their number within the hour (none: 0)."""
    hour, _, number = path.name[: -len(".jsonl")].partition(".")
    return hour, int(number) if number.isdigit() else 0


class DeadLetterStore:
    """Hourly JSON-lines files below one folder, at most ``max_bytes`` of them (None: no cap)."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        on_evicted: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.on_evicted = on_evicted
        self.evicted = 0
        self._lock = threading.Lock()
        self._sizes: dict[Path, int] = {}
        self._scanned_at = float("-inf")

    def files(self) -> list[Path]:
        """The files of letters, oldest first."""
        paths = [p for p in self.directory.glob("*.jsonl") if p.name != REPLAYED_FILE]
        return sorted(paths, key=_order)

    def add(self, letters: list[DeadLetter]) -> None:
        """Append ``letters`` durably (one write and one fsync for the lot), evicting the oldest letters
        first when the store would pass its cap. Raises OSError, having kept none of them, when the
        write fails (a full disk)."""
        if not letters:
            return
        lines = [letter.to_json() for letter in letters]
        with self._lock:
            if time.monotonic() - self._scanned_at >= RESCAN_SECONDS:
                self._sizes = {path: _size(path) for path in self.files()}
                self._scanned_at = time.monotonic()
            sizes = self._sizes
            if self.max_bytes is not None:
                lines = self._make_room(sizes, lines)
            hour = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H")
            target = self._target(hour, sizes)
            try:
                append_lines(target, b"".join(lines))
            finally:
                size = _size(target)
                if size:
                    sizes[target] = size
                else:
                    sizes.pop(target, None)

    def _make_room(self, sizes: dict[Path, int], lines: list[bytes]) -> list[bytes]:
        """Delete the oldest files until ``lines`` fit under the cap; returns the lines to write."""
        evicted = 0
        size = sum(len(line) for line in lines)
        while lines and size > self.max_bytes:  # one batch larger than the cap: its oldest letters go
            size -= len(lines.pop(0))
            evicted += 1
        total = sum(sizes.values())
        for path in list(sizes):
            if total + size <= self.max_bytes:
                break
            try:
                count = path.read_bytes().count(b"\n")
                path.unlink()
            except FileNotFoundError:
                count = 0
            total -= sizes.pop(path)
            evicted += count
            log.warning("dead-letter store at its cap of %d bytes: evicted %s (%d letters)", self.max_bytes,
                        path.name, count)
        if evicted:
            self.evicted += evicted
            if self.on_evicted is not None:
                self.on_evicted(evicted)
        return lines

    def _target(self, hour: str, sizes: dict[Path, int]) -> Path:
        """The file of this hour that takes new letters (a new one once the last holds its share of the cap)."""
        mine = [path for path in sizes if _order(path)[0] == hour]
        if not mine:
            return self.directory / f"{hour}.jsonl"
        last = mine[-1]
        if self.max_bytes is None or sizes[last] < self.max_bytes // FILE_SHARE:
            return last
        return self.directory / f"{hour}.{_order(last)[1] + 1}.jsonl"

    def size(self) -> int:
        """Bytes of letters in the store."""
        return sum(_size(path) for path in self.files())

    def __iter__(self) -> Iterator[DeadLetter]:
        for path in self.files():
            try:
                yield from read_lines(path, DeadLetter.from_json)
            except FileNotFoundError:
                continue  # evicted meanwhile

    def get(self, letter_id: str) -> DeadLetter | None:
        """The letter with id ``letter_id`` (a unique prefix of at least 6 characters is enough)."""
        matches = [
            letter
            for letter in self
            if letter.id == letter_id or (len(letter_id) >= 6 and letter.id.startswith(letter_id))
        ]
        exact = [letter for letter in matches if letter.id == letter_id]
        if exact:
            return exact[0]
        return matches[0] if len(matches) == 1 else None

    def replayed(self) -> set[str]:
        """Ids of the letters already replayed successfully."""
        path = self.directory / REPLAYED_FILE
        if not path.exists():
            return set()
        return set(read_lines(path, lambda line: orjson.loads(line)["id"]))

    def mark_replayed(self, letter_ids: Iterable[str]) -> None:
        """Record that ``letter_ids`` were resubmitted and accepted."""
        now = time.time()
        data = b"".join(orjson.dumps({"id": letter_id, "time": now}) + b"\n" for letter_id in letter_ids)
        append_lines(self.directory / REPLAYED_FILE, data)

    def pending(
        self, reason: str | None = None, tenant: str | None = None, since: float | None = None
    ) -> Iterator[DeadLetter]:
        """Letters not replayed yet, oldest first, optionally filtered."""
        done = self.replayed()
        for letter in self:
            if letter.id in done:
                continue
            if reason is not None and letter.reason != reason:
                continue
            if tenant is not None and letter.tenant != tenant:
                continue
            if since is not None and letter.time < since:
                continue
            yield letter


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
