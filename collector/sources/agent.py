"""The node agent (``logwarden agent``): follow the ``sources:`` of a node, ship them to a central collector.

One process, no Dask, Ray or Arrow: the same :class:`~.tailer.Tailer` as the collector's file sources
(rotation, copytruncate, compressed copies, partial and overlong lines, multi-line records, CRI and
docker lines, pod metadata), lines parsed by ``logwarden.formats`` into native records (each with
``host`` and ``file`` attributes), a bounded disk buffer and a sender (``shipper.py``).

State (``--state-dir``): ``checkpoints/`` (where each file was read to; see ``checkpoint.py``),
``buffer/`` (batches not yet acknowledged), ``deadletter/`` (the parts of overlong lines past
``max_line_bytes``, as the collector's dead-letter store keeps them).

Each checkpoint entry holds two offsets: ``offset``, up to which the file's records are in the buffer
or delivered (reading resumes there), and ``delivered``, up to which the collector acknowledged them.
"""
from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

from logwarden.collector.deadletter import DeadLetter, DeadLetterStore
from logwarden.collector.sources.checkpoint import CheckpointStore
from logwarden.collector.sources.config import SourcesConfig
from logwarden.collector.sources.framing import Block, Dead, Entry
from logwarden.collector.sources.records import json_line
from logwarden.collector.sources.shipper import DiskBuffer, Shipper
from logwarden.collector.sources.tailer import Tailer
from logwarden.collector.sources.watch import Watcher

log = logging.getLogger(__name__)

DEFAULT_BUFFER_BYTES = 256 << 20
ROUND_BYTES = 1 << 20  # read per round at most: one batch, one request (and little memory)
IDLE_SECONDS = 0.2


class Agent:
    """Follows the sources and feeds the buffer; a :class:`Shipper` thread empties it."""

    def __init__(self, sources: SourcesConfig, state_dir: Path, url: str, token: str | None = None,
                 buffer_bytes: int = DEFAULT_BUFFER_BYTES, ca_file: str | None = None, host: str | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.host = host or socket.gethostname()
        self.store = CheckpointStore(self.state_dir / "checkpoints")
        self.buffer = DiskBuffer(self.state_dir / "buffer", buffer_bytes)
        self._reapply_buffered()
        self.deadletters = DeadLetterStore(self.state_dir / "deadletter")
        self.tailer = Tailer(sources.files, self.store, extra={"host": self.host}, add_file=True,
                             max_round_bytes=ROUND_BYTES)
        self.shipper = Shipper(url, self.buffer, token, ca_file, on_delivered=self._delivered)
        self._wake = threading.Event()
        self.watcher = Watcher([pattern for source in sources.files for pattern in source.paths], self._wake_up)
        self._scan_now = True
        self.records = 0  # records put in the buffer

    def _reapply_buffered(self) -> None:
        """Checkpoints carried by buffered batches and not in the checkpoint store (a crash in between)."""
        for entry in self.buffer.entries():
            current = self.store.entries.get(entry["id"])
            if current is None or entry["offset"] > current["offset"]:
                self.store.put(entry)

    def _wake_up(self) -> None:
        self._scan_now = True
        self._wake.set()

    def _delivered(self, meta: dict[str, Any]) -> None:
        self.store.mark_delivered({entry["id"]: entry["offset"] for entry in meta.get("entries", ())})

    def run(self, stop: threading.Event) -> None:
        """Follow and ship until ``stop`` is set."""
        self.watcher.start()
        self.shipper.start()
        log.info("agent: following %d source(s), shipping to %s://%s:%s%s", len(self.tailer.sources),
                 self.shipper.scheme, self.shipper.host, self.shipper.port or "", self.shipper.path)
        try:
            while not stop.is_set():
                try:
                    if not self.round():
                        self._wake.wait(IDLE_SECONDS)
                        self._wake.clear()
                except Exception:  # noqa: BLE001 - a bad round must not end the agent
                    log.exception("agent: round failed; retrying")
                    stop.wait(1.0)
        finally:
            self.close()

    def round(self) -> bool:
        """Scan when due, read, buffer; whether anything was read."""
        if self.buffer.full:
            return False
        if self.tailer.scan_due(self._scan_now):
            self._scan_now = False
            self.tailer.scan()
            self.watcher.refresh()
        chunks = self.tailer.poll()
        if not chunks:
            return False
        lines: list[bytes] = []  # each record serialized at once: no round holds its records as objects
        letters: list[DeadLetter] = []
        for chunk in chunks:
            f = chunk.file
            for item in chunk.items:
                if isinstance(item, Block):
                    lines.extend(json_line(value) for _, value in f.maker.block(item.data, f.format, f.detected,
                                                                                   chunk.read_time))
                elif isinstance(item, Entry):
                    lines.append(json_line(f.maker.entry(item, f.format, f.detected, chunk.read_time)))
                elif isinstance(item, Dead):
                    letters.append(DeadLetter(item.raw, "line_too_long", item.error, "", f.path, "", item.start,
                                              protocol="file"))
        if letters:
            self.deadletters.add(letters)
        if lines:
            self.buffer.append(b"".join(lines), len(lines), [chunk.entry for chunk in chunks])
            self.records += len(lines)
        for chunk in chunks:
            self.tailer.commit(chunk)
        self.store.maybe_snapshot()
        return True

    def close(self) -> None:
        """Stop watching and shipping; keep the checkpoints and the buffer."""
        self.watcher.stop()
        self.shipper.stop()
        self.tailer.close()
        self.store.close()


__all__ = ["Agent", "DEFAULT_BUFFER_BYTES"]
