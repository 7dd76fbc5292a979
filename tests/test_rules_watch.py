"""The rules watcher reacts to edits of its file, never to reads of it (a reload reads the file)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from logwarden.rules_watch import RulesWatcher


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_reading_the_file_is_no_change_and_writing_it_is_one(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")
    calls: list[float] = []
    lock = threading.Lock()

    def on_change() -> None:
        with lock:
            calls.append(time.monotonic())
        rules.read_text()  # as the stack does when it reloads

    watcher = RulesWatcher(rules, on_change, debounce=0.1)
    watcher.start()
    try:
        time.sleep(0.3)
        for _ in range(5):
            rules.read_text()
        time.sleep(0.8)
        assert calls == [], "reading the rules file triggered a reload"
        rules.write_text("rules: []  # edited\n")
        assert _wait_for(lambda: len(calls) == 1)
        time.sleep(1.0)  # the reload read the file: that must not trigger another one
        assert len(calls) == 1, f"{len(calls)} reloads for one edit"
    finally:
        watcher.stop()
