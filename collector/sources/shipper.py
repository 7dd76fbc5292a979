"""The node agent's way out: a bounded disk buffer, and a sender to a collector's native API.

**Buffer.** Each round of the agent writes its records as one batch file (``NNNNNNNNNNNNNNNN.batch``:
a first line of metadata — the record count and the checkpoint entries of the files read — then the
records as NDJSON), atomically (temporary file, fsync, rename). The files' checkpoints advance once the
batch is written, and a batch file carries them too, so a crash between the two neither loses nor
repeats a line (:meth:`DiskBuffer.entries` at start-up). The buffer holds at most ``max_bytes``; the
agent stops reading while it is full (the files keep their lines meanwhile).

**Sender.** One thread posts the oldest batch to ``POST /v1/logs`` (NDJSON, gzip, ``Authorization:
Bearer``) and deletes it only on the collector's acknowledgement: 200 with the accepted count, or 400
whose answer counts every record as rejected (the collector keeps those in its dead-letter store). It
retries with exponential backoff and jitter, and waits as long as ``Retry-After`` says on 429 and 503.
A batch the collector refuses as a whole (another 400, 413) would never pass: it is moved to
``rejected/`` and logged. The files' ``delivered`` offsets (``CheckpointStore.delivered``) advance with
each acknowledgement.
"""
from __future__ import annotations

import email.utils
import gzip
import http.client
import logging
import os
import random
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import orjson

from logwarden.common.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

SUFFIX = ".batch"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
AGENT = "logwarden-agent"


@dataclass(frozen=True)
class Batch:
    """One batch file of the buffer."""

    path: Path
    size: int

    def read(self) -> tuple[dict[str, Any], bytes]:
        """(metadata, NDJSON records)."""
        data = self.path.read_bytes()
        head, _, payload = data.partition(b"\n")
        return orjson.loads(head), payload


class DiskBuffer:
    """Batch files in one folder, oldest first, at most ``max_bytes`` in all (see the module docstring)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "rejected").mkdir(exist_ok=True)
        self.max_bytes = max_bytes
        self._cond = threading.Condition()
        for stray in self.directory.glob(".*.tmp"):
            stray.unlink(missing_ok=True)
        self._batches = [Batch(path, path.stat().st_size) for path in sorted(self.directory.glob(f"*{SUFFIX}"))]
        self.bytes = sum(batch.size for batch in self._batches)
        self._seq = int(self._batches[-1].path.stem) if self._batches else 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._batches)

    @property
    def full(self) -> bool:
        """Whether the buffer holds ``max_bytes`` or more."""
        return self.bytes >= self.max_bytes

    def entries(self) -> list[dict[str, Any]]:
        """The checkpoint entries of every batch, oldest first (re-applied at start-up)."""
        out = []
        for batch in list(self._batches):
            meta, _ = batch.read()
            out.extend(meta.get("entries", ()))
        return out

    def append(self, payload: bytes, records: int, entries: list[dict[str, Any]]) -> Batch:
        """Write a batch durably."""
        with self._cond:
            self._seq += 1
            path = self.directory / f"{self._seq:016d}{SUFFIX}"
        data = orjson.dumps({"records": records, "entries": entries, "written": time.time()}) + b"\n" + payload
        write_bytes_atomic(data, path)
        batch = Batch(path, len(data))
        with self._cond:
            self._batches.append(batch)
            self.bytes += batch.size
            self._cond.notify_all()
        return batch

    def oldest(self, timeout: float) -> Batch | None:
        """The oldest batch, waiting up to ``timeout`` seconds for one."""
        with self._cond:
            if not self._batches:
                self._cond.wait(timeout)
            return self._batches[0] if self._batches else None

    def remove(self, batch: Batch, rejected: bool = False) -> None:
        """Forget a delivered batch (or keep it aside in ``rejected/``)."""
        if rejected:
            os.replace(batch.path, self.directory / "rejected" / batch.path.name)
        else:
            batch.path.unlink(missing_ok=True)
        with self._cond:
            if batch in self._batches:
                self._batches.remove(batch)
                self.bytes -= batch.size
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake a sender waiting for a batch."""
        with self._cond:
            self._cond.notify_all()


class Shipper(threading.Thread):
    """Sends the buffer's batches, oldest first, until stopped (see the module docstring)."""

    def __init__(self, url: str, buffer: DiskBuffer, token: str | None = None, ca_file: str | None = None,
                 timeout: float = 30.0, on_delivered: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__(name="agent-shipper", daemon=True)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--to: expected http(s)://HOST:PORT[/v1/logs], got {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = parts.path if parts.path not in ("", "/") else "/v1/logs"
        self.buffer = buffer
        self.token = token
        self.timeout = timeout
        self.on_delivered = on_delivered
        self.context = ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None
        self.stopping = threading.Event()
        self._connection: http.client.HTTPConnection | None = None
        self.delivered = 0  # records acknowledged by the collector
        self.retries = 0

    def stop(self, grace: float = 5.0) -> None:
        """Stop after the request under way (waiting at most ``grace`` seconds)."""
        self.stopping.set()
        self.buffer.wake()
        self.join(grace)

    def run(self) -> None:
        delay = BACKOFF_FIRST
        while not self.stopping.is_set():
            batch = self.buffer.oldest(0.5)
            if batch is None:
                continue
            try:
                wait = self._deliver(batch)
            except Exception as exc:  # noqa: BLE001 - a network or server fault: back off, try again
                self._close()
                wait = None
                log.warning("collector unreachable (%s); retrying in %.1fs", exc, delay)
            if wait == 0:
                delay = BACKOFF_FIRST
                continue
            self.retries += 1
            pause = wait if wait is not None else delay * random.uniform(0.8, 1.2)
            delay = min(BACKOFF_MAX, delay * 2)
            self.stopping.wait(pause)
        self._close()

    def _deliver(self, batch: Batch) -> float | None:
        """Post one batch: 0 when done with it, else how long to wait (None: the backoff's delay)."""
        meta, payload = batch.read()
        status, headers, body = self._post(gzip.compress(payload, compresslevel=1))
        answer = _json(body)
        count = meta.get("records", 0)
        if status == 200 or (status == 400 and answer.get("rejected") == count and "accepted" in answer):
            if answer.get("rejected"):
                log.warning("collector refused %d of %d records (kept in its dead-letter store): %s",
                            answer["rejected"], count, (answer.get("errors") or [{}])[0].get("error"))
            self.buffer.remove(batch)
            self.delivered += answer.get("accepted", count)
            if self.on_delivered is not None:
                self.on_delivered(meta)
            return 0
        if status in (400, 413):
            log.error("collector refused batch %s as a whole (%d: %s); kept in %s", batch.path.name, status,
                      _first_error(answer, body), self.buffer.directory / "rejected")
            self.buffer.remove(batch, rejected=True)
            return 0
        if status in (429, 503):
            log.info("collector busy (%d); waiting", status)
            return _retry_after(headers.get("retry-after"))
        log.warning("collector answered %d (%s); retrying", status, _first_error(answer, body))
        return None

    def _post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._connection is None:
            if self.scheme == "https":
                self._connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                               context=self.context)
            else:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip", "User-Agent": AGENT,
                   "Content-Length": str(len(body))}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self._connection.request("POST", self.path, body=body, headers=headers)
            response = self._connection.getresponse()
            data = response.read()
        except Exception:
            self._close()
            raise
        answer_headers = {key.lower(): value for key, value in response.getheaders()}
        if answer_headers.get("connection", "").lower() == "close":
            self._close()
        return response.status, answer_headers, data

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _first_error(answer: dict[str, Any], body: bytes) -> str:
    errors = answer.get("errors") or []
    if errors and isinstance(errors[0], dict):
        return str(errors[0].get("error"))
    return body[:200].decode("utf-8", "replace")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), bounded; None when absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.1), 300.0)


__all__ = ["Batch", "DiskBuffer", "Shipper"]
