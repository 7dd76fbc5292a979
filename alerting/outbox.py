"""The alert outbox: one JSON object per delivered alert, appended and fsync'ed.

An append is whole or nothing (``common/jsonlines.py``): a full disk never leaves a torn line, and
a torn line left in an older file is skipped by the reader with a warning.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import orjson

from logwarden.common.jsonlines import append_lines, read_lines


class Outbox:
    """An append-only JSON-lines file of alerts."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, entries: list[dict]) -> None:
        """Append ``entries`` durably (one write, one fsync), or nothing of them (OSError)."""
        if not entries:
            return
        data = b"".join(orjson.dumps(entry) + b"\n" for entry in entries)
        with self._lock:
            append_lines(self.path, data)

    def __iter__(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        yield from read_lines(self.path, _entry)


def _entry(line: bytes) -> dict:
    entry = orjson.loads(line)
    if not isinstance(entry, dict):
        raise TypeError(f"expected a JSON object, got {type(entry).__name__}")
    return entry
