"""The alert outbox never keeps a torn line, and its reader skips one left by an older version."""
from __future__ import annotations

import logging

import orjson
import pytest

from logwarden.alerting.outbox import Outbox
from tests.diskfull import fill, small_disk


def test_a_torn_outbox_line_is_skipped_and_never_glued_onto(tmp_path, caplog):
    outbox = Outbox(tmp_path / "alerts" / "outbox.jsonl")
    outbox.append([{"rule": "first"}])
    line = orjson.dumps({"rule": "torn"}) + b"\n"
    with open(outbox.path, "ab") as handle:  # an older version, cut short by a full disk or a crash
        handle.write(line[:7])
    outbox.append([{"rule": "second"}, {"rule": "third"}])
    with caplog.at_level(logging.WARNING):
        assert [entry["rule"] for entry in outbox] == ["first", "second", "third"]
    assert "skipping a torn or corrupt line" in caplog.text


def test_an_outbox_append_on_a_full_disk_leaves_no_torn_line(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        outbox = Outbox(disk / "alerts" / "outbox.jsonl")
        outbox.append([{"rule": "kept"}])
        before = outbox.path.read_bytes()
        filler = fill(disk / "filler", leave=16 * 1024)
        with pytest.raises(OSError):
            outbox.append([{"rule": "big", "samples": ["s" * 1000] * 200}])
        assert outbox.path.read_bytes() == before
        filler.unlink()
        outbox.append([{"rule": "after"}])
        assert [entry["rule"] for entry in outbox] == ["kept", "after"]
