"""Sessions of template ids, grouped by a key (a field such as request_id or user_id, or a regex on
the message such as an HDFS block id), closed after a quiet period of event time."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class Session:
    """The template ids of one session so far."""

    key: str
    first_us: int
    last_us: int
    events: list[str] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


class SessionTracker:
    """Open sessions by key; ``close`` hands out those idle for ``timeout_us`` or grown to ``max_events``."""

    def __init__(self, key_field: str | None = "request_id", key_regex: str | None = None,
                 timeout_us: int = 300_000_000, max_events: int = 1000, max_open: int = 100_000) -> None:
        if not key_field and not key_regex:
            raise ValueError("a session needs a key field or a key regex")
        self.key_field = key_field
        self.key_regex = re.compile(key_regex) if key_regex else None
        self.timeout_us = timeout_us
        self.max_events = max_events
        self.max_open = max_open
        self.open: dict[str, Session] = {}
        self.full: list[Session] = []

    def keys(self, table: pa.Table) -> list[str | None]:
        """The session key of each row (None where there is none)."""
        if self.key_regex is not None:
            found = []
            for message in table["message"].to_pylist():
                match = self.key_regex.search(message or "")
                found.append(None if match is None else match.group(1) if match.groups() else match.group(0))
            return found
        if self.key_field not in table.column_names:
            return [None] * table.num_rows
        return [None if v is None or v == "" else str(v) for v in table[self.key_field].to_pylist()]

    def add(self, table: pa.Table) -> int:
        """Append every keyed row's template id to its session; returns the rows used."""
        if table.num_rows == 0:
            return 0
        keys = self.keys(table)
        micros = pc.cast(table["timestamp"], pa.int64()).to_pylist()
        tids = table["template_id"].to_pylist() if "template_id" in table.column_names else [None] * len(keys)
        texts = table["template"].to_pylist() if "template" in table.column_names else [None] * len(keys)
        messages = table["message"].to_pylist()
        used = 0
        for key, at, tid, text, message in zip(keys, micros, tids, texts, messages):
            if key is None or tid is None:
                continue
            used += 1
            session = self.open.get(key)
            if session is None:
                session = self.open[key] = Session(key, at, at)
            session.events.append(tid)
            session.templates.setdefault(tid, text or "")
            session.last_us = max(session.last_us, at)
            session.first_us = min(session.first_us, at)
            session.lines.append(message or "")
            del session.lines[:-5]
            if len(session.events) >= self.max_events:
                self.full.append(self.open.pop(key))
        return used

    def close(self, watermark_us: int) -> list[Session]:
        """Sessions complete at ``watermark_us`` (idle for the timeout, full, or beyond ``max_open``)."""
        done, self.full = self.full, []
        for key in [k for k, s in self.open.items() if watermark_us - s.last_us >= self.timeout_us]:
            done.append(self.open.pop(key))
        if len(self.open) > self.max_open:
            oldest = sorted(self.open.values(), key=lambda s: s.last_us)[: len(self.open) - self.max_open]
            for session in oldest:
                done.append(self.open.pop(session.key))
        return done
