"""The dead-letter store: every rejected record with its original bytes, the reason, the source and the time."""
from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson


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

    def to_json(self) -> bytes:
        """One JSON line; the raw bytes in base64 so that invalid UTF-8 survives."""
        body = asdict(self)
        body["raw"] = base64.b64encode(self.raw).decode()
        return orjson.dumps(body) + b"\n"

    @classmethod
    def from_json(cls, line: bytes) -> "DeadLetter":
        """The inverse of ``to_json``."""
        body = orjson.loads(line)
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
        path = self.directory / f"{hour}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, b"".join(letter.to_json() for letter in letters))
            os.fsync(fd)
        finally:
            os.close(fd)

    def __iter__(self) -> Iterator[DeadLetter]:
        for path in sorted(self.directory.glob("*.jsonl")):
            with open(path, "rb") as handle:
                for line in handle:
                    if line.strip():
                        yield DeadLetter.from_json(line)
