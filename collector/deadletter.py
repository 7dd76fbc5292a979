"""The dead-letter store: every rejected record with its original bytes, the reason, the source and the time.

Letters are appended to hourly JSON-lines files (``YYYY-MM-DDTHH.jsonl``), one fsync per
batch of letters. Replaying a letter through the collector records its id in
``replayed.jsonl`` so that it is neither listed as pending nor replayed twice.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import orjson

REPLAYED_FILE = "replayed.jsonl"


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
        """The inverse of ``to_json`` (keys this version does not know are ignored)."""
        body = orjson.loads(line)
        known = {f.name for f in fields(cls)}
        body = {key: value for key, value in body.items() if key in known}
        body["raw"] = base64.b64decode(body["raw"])
        return cls(**body)


class DeadLetterStore:
    """Hourly JSON-lines files below one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def add(self, letters: list[DeadLetter]) -> None:
        """Append ``letters`` durably (one write and one fsync for the lot)."""
        if not letters:
            return
        hour = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H")
        _append_durably(self.directory / f"{hour}.jsonl", b"".join(letter.to_json() for letter in letters))

    def __iter__(self) -> Iterator[DeadLetter]:
        for path in sorted(self.directory.glob("*.jsonl")):
            if path.name == REPLAYED_FILE:
                continue
            with open(path, "rb") as handle:
                for line in handle:
                    if line.strip():
                        yield DeadLetter.from_json(line)

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
        return {orjson.loads(line)["id"] for line in path.read_bytes().splitlines() if line.strip()}

    def mark_replayed(self, letter_ids: Iterable[str]) -> None:
        """Record that ``letter_ids`` were resubmitted and accepted."""
        now = time.time()
        data = b"".join(orjson.dumps({"id": letter_id, "time": now}) + b"\n" for letter_id in letter_ids)
        if data:
            _append_durably(self.directory / REPLAYED_FILE, data)

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


def _append_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
