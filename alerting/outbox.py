"""The alert outbox: one JSON object per delivered alert, appended and fsync'ed."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterator

import orjson


class Outbox:
    """An append-only JSON-lines file of alerts."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, entries: list[dict]) -> None:
        """Append ``entries`` durably (one write, one fsync)."""
        if not entries:
            return
        data = b"".join(orjson.dumps(entry) + b"\n" for entry in entries)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def __iter__(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for line in handle:
                if line.strip():
                    yield orjson.loads(line)
