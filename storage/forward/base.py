"""What every forwarding sink shares: its common settings, the disk buffer, batching and retries.

A sink takes the committed records of a processing batch (:meth:`Sink.enqueue`, in the driver, after
the lake commit), keeps them in a disk buffer under ``<data-dir>/forward/<name>/`` (one Parquet
segment per batch, fsynced before ``enqueue`` returns), and a worker thread drains the buffer: it
encodes records in requests of at most ``batch.max_records`` records and ``batch.max_bytes`` bytes,
sends each, and only then moves its cursor (``cursor.json``) past them.

- Retries: a failure the receiver may get over (connection refused or reset, timeout, HTTP 408, 429,
  5xx) is retried without end, after an exponential backoff with jitter (``retry.initial_backoff``
  doubling up to ``retry.max_backoff``); the records stay in the buffer meanwhile. A refusal that
  retrying cannot change (HTTP 400, 401, 403, 413...) drops the request's records, counted and logged.
- A full buffer refuses new records (``buffer_bytes``): a batch that does not fit is dropped whole and
  counted, the records already buffered keep their order and go out once the receiver is back.
- Delivery is at least once: a crash after a request was sent but before the cursor moved sends it
  again, and so does a batch handed on again by processing after a crash (see the README).

Counted in ``logwarden_forward_records_total{sink, outcome}`` (``sent``, ``retried``, ``dropped``) and
``logwarden_forward_buffer_bytes{sink}``.
"""
from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import Counter, Gauge

from logwarden.common.atomic import write_bytes_atomic, write_parquet_atomic
from logwarden.common.yamlconf import (
    ConfigError, check_bool, check_duration, check_int, check_mapping, check_str, describe,
)

log = logging.getLogger(__name__)

RECORDS = Counter("logwarden_forward_records", "Records forwarded to a SIEM sink, by sink and outcome "
                  "(sent; retried: sent again after a failure; dropped: refused by the receiver or the full buffer)",
                  ["sink", "outcome"])
BUFFER_BYTES = Gauge("logwarden_forward_buffer_bytes", "Bytes in a forwarding sink's disk buffer", ["sink"])

Predicate = Callable[[pa.Table], pa.Array]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_SEGMENT = re.compile(r"^(\d{12})-(\d+)-(.+)\.parquet$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
SEEN_BATCHES = 4096  # batch ids remembered per sink, so a batch handed on twice is buffered once
COMMON_KEYS = ("type", "name", "url", "filter", "batch", "buffer_bytes", "retry", "timeout")


class Retriable(Exception):
    """The receiver did not take a request, but may later (down, overloaded, timed out)."""


class Refused(Exception):
    """The receiver refused a request for good: sending it again would not help."""


def check_size(value: Any, keys: tuple) -> int:
    """Bytes in ``value``: an integer, or a string such as ``64MiB``; ConfigError at ``keys``."""
    size = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and (match := _SIZE.match(value)):
        size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    if size is None or size <= 0:
        raise ConfigError.at(keys, f"expected a size larger than 0 (e.g. 1048576, 500KB, 64MiB), got {describe(value)}")
    return size


def check_url(value: Any, keys: tuple, schemes: tuple[str, ...]) -> str:
    """A URL with one of ``schemes`` and a host."""
    if not isinstance(value, str) or not value.startswith(tuple(f"{s}://" for s in schemes)) or \
            not value.split("://", 1)[1].strip("/"):
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError.at(keys, f"expected a URL starting with {wanted}, got {describe(value)}")
    return value.rstrip("/")


@dataclass(frozen=True)
class BatchPolicy:
    """How many records go in one request, and how long a partial request may wait for more."""

    max_records: int = 500
    max_bytes: int = 1024 * 1024
    timeout_seconds: float = 1.0

    @classmethod
    def from_dict(cls, section: Any, where: tuple) -> "BatchPolicy":
        """``{max_records, max_bytes, timeout}`` at ``where``."""
        section = check_mapping(section, where, ("max_records", "max_bytes", "timeout"))
        kwargs: dict[str, Any] = {}
        if "max_records" in section:
            kwargs["max_records"] = check_int(section["max_records"], (*where, "max_records"), minimum=1)
        if "max_bytes" in section:
            kwargs["max_bytes"] = check_size(section["max_bytes"], (*where, "max_bytes"))
        if "timeout" in section:
            kwargs["timeout_seconds"] = check_duration(section["timeout"], (*where, "timeout"))
        return cls(**kwargs)


@dataclass(frozen=True)
class SinkOptions:
    """The settings every sink has (``storage.forward[i]``, besides its own)."""

    name: str
    url: str
    filter: Any = None  # a rule-style filter (monitoring/rules/filters.py); None: every record
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    buffer_bytes: int = 256 * 1024 * 1024
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 10.0

    @classmethod
    def from_dict(cls, section: dict, where: tuple, url: str) -> "SinkOptions":
        """The common keys of ``section`` (already checked to be a mapping of known keys)."""
        name = check_str(section.get("name", section["type"]), (*where, "name"))
        if _UNSAFE.search(name):
            raise ConfigError.at((*where, "name"), f"expected letters, digits, '_', '.' or '-', got {describe(name)}")
        retry = check_mapping(section.get("retry"), (*where, "retry"), ("initial_backoff", "max_backoff"))
        kwargs: dict[str, Any] = {"name": name, "url": url, "filter": section.get("filter"),
                                  "batch": BatchPolicy.from_dict(section.get("batch"), (*where, "batch"))}
        if "buffer_bytes" in section:
            kwargs["buffer_bytes"] = check_size(section["buffer_bytes"], (*where, "buffer_bytes"))
        for key in ("initial_backoff", "max_backoff"):
            if key in retry:
                kwargs[f"{key}_seconds"] = check_duration(retry[key], (*where, "retry", key), positive=True)
        if "timeout" in section:
            kwargs["timeout_seconds"] = check_duration(section["timeout"], (*where, "timeout"), positive=True)
        return cls(**kwargs)


def check_verify(section: dict, where: tuple) -> bool | str:
    """``verify`` (default true) and ``ca_file``: what ``requests`` takes as ``verify``."""
    verify = check_bool(section.get("verify", True), (*where, "verify"))
    if section.get("ca_file") is not None:
        return check_str(section["ca_file"], (*where, "ca_file")) if verify else False
    return verify


# the records as the receivers see them ---------------------------------------------------------------------

_SKIPPED = frozenset({"attributes", "timestamp", "received_at"})


def flat_rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    """Each record as one flat mapping: its attributes, then its non-null columns (which win on a name
    clash); ``timestamp`` as RFC 3339 text, ``_time_us`` as epoch microseconds."""
    stamps = table["timestamp"].cast(pa.int64()).to_pylist()
    attributes = table["attributes"].to_pylist() if "attributes" in table.column_names else [None] * table.num_rows
    for stamp, extra, row in zip(stamps, attributes, table.drop_columns(
            [c for c in _SKIPPED if c in table.column_names]).to_pylist()):
        out: dict[str, Any] = {}
        if extra:
            try:
                parsed = orjson.loads(extra)
            except orjson.JSONDecodeError:
                parsed = {"attributes": extra}
            if isinstance(parsed, dict):
                out.update(parsed)
        out.update((k, v) for k, v in row.items() if v is not None)
        out["timestamp"] = rfc3339(stamp)
        out["_time_us"] = stamp
        yield out


def rfc3339(micros: int) -> str:
    """``2026-11-22T10:00:00.123456Z`` for epoch microseconds."""
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


# the disk buffer --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """One buffered batch: ``<seq>-<rows>-<batch id>.parquet``."""

    path: Path
    seq: int
    rows: int
    batch_id: str

    @classmethod
    def parse(cls, path: Path) -> "Segment | None":
        """The segment a file name describes (None for another file)."""
        match = _SEGMENT.match(path.name)
        return cls(path, int(match.group(1)), int(match.group(2)), match.group(3)) if match else None


class DiskBuffer:
    """Segments in a folder, oldest first, within ``max_bytes``; a cursor says how far the oldest was sent."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*.tmp"):  # a write cut short by a crash
            stale.unlink(missing_ok=True)
        self._lock = threading.Lock()
        self._segments: list[Segment] = sorted(
            (s for p in folder.glob("*.parquet") if (s := Segment.parse(p)) is not None), key=lambda s: s.seq)
        self._sizes = {s.path.name: s.path.stat().st_size for s in self._segments}
        self._cursor = self._read_cursor()
        self._cached: tuple[str, pa.Table] | None = None  # (segment name, its records), read by the worker only

    @property
    def size(self) -> int:
        """Bytes of the buffered segments."""
        with self._lock:
            return sum(self._sizes.values())

    def holds(self, batch_id: str) -> bool:
        """Whether a segment of ``batch_id`` waits in the buffer."""
        safe = _UNSAFE.sub("_", batch_id)
        with self._lock:
            return any(s.batch_id == safe for s in self._segments)

    def append(self, batch_id: str, table: pa.Table) -> bool:
        """Write ``table`` as the newest segment (durable on return); False when it does not fit."""
        with self._lock:
            seq = self._segments[-1].seq + 1 if self._segments else 1
            batch_id = _UNSAFE.sub("_", batch_id)
            path = self.folder / f"{seq:012d}-{table.num_rows}-{batch_id}.parquet"
            write_parquet_atomic(table, path)
            size = path.stat().st_size
            if sum(self._sizes.values()) + size > self.max_bytes:
                path.unlink()
                return False
            self._segments.append(Segment(path, seq, table.num_rows, batch_id))
            self._sizes[path.name] = size
            return True

    def pending_rows(self) -> int:
        """Records not yet sent."""
        with self._lock:
            return sum(s.rows for s in self._segments) - self._cursor[1]

    def oldest_mtime(self) -> float | None:
        """When the oldest segment was written (None: empty)."""
        with self._lock:
            if not self._segments:
                return None
            try:
                return self._segments[0].path.stat().st_mtime
            except FileNotFoundError:
                return None

    def read(self, limit: int) -> pa.Table | None:
        """Up to ``limit`` records from the cursor on, across segments (None: nothing buffered)."""
        with self._lock:
            segments, skip = list(self._segments), self._cursor[1]
        parts, rows = [], 0
        for segment in segments:
            table = self._load(segment).slice(skip)
            skip = 0
            parts.append(table.slice(0, limit - rows))
            rows += parts[-1].num_rows
            if rows >= limit:
                break
        if not rows:
            return None
        return pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]

    def _load(self, segment: Segment) -> pa.Table:
        """The segment's records; the last one read is kept, as a large segment is sent in many requests."""
        if self._cached is None or self._cached[0] != segment.path.name:
            self._cached = (segment.path.name, pq.read_table(segment.path))
        return self._cached[1]

    def advance(self, rows: int) -> None:
        """Mark ``rows`` more records as done: drop the segments fully done, save the cursor."""
        with self._lock:
            offset = self._cursor[1] + rows
            while self._segments and offset >= self._segments[0].rows:
                done = self._segments.pop(0)
                offset -= done.rows
                self._sizes.pop(done.path.name, None)
                done.path.unlink(missing_ok=True)
            self._cursor = (self._segments[0].path.name, offset) if self._segments else ("", 0)
            write_bytes_atomic(orjson.dumps({"segment": self._cursor[0], "offset": self._cursor[1]}),
                               self.folder / "cursor.json")

    def _read_cursor(self) -> tuple[str, int]:
        try:
            saved = orjson.loads((self.folder / "cursor.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return ("", 0)
        if self._segments and saved.get("segment") == self._segments[0].path.name:
            return (saved["segment"], min(int(saved.get("offset", 0)), self._segments[0].rows))
        return ("", 0)


# the sink ---------------------------------------------------------------------------------------------------

class Sink:
    """A forwarding sink: a disk buffer and a thread that sends what it holds. Subclasses give
    :meth:`encode` (records to one payload item each) and :meth:`send` (items to the receiver)."""

    def __init__(self, options: SinkOptions, data_dir: Path, predicate: Predicate | None = None) -> None:
        self.options = options
        self.name = options.name
        self.predicate = predicate
        self.buffer = DiskBuffer(Path(data_dir) / "forward" / options.name, options.buffer_bytes)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts = {"sent": 0, "retried": 0, "dropped": 0}
        BUFFER_BYTES.labels(self.name).set(self.buffer.size)

    # the hand-off -------------------------------------------------------------------------------------
    def enqueue(self, batch_id: str, records: pa.Table) -> int:
        """Buffer the records of ``batch_id`` that pass the filter (durably); the number buffered.

        A batch handed on again (processing retried it after a crash) is buffered once while this
        process remembers it or its segment still waits. A batch that does not fit the buffer is dropped.
        """
        if batch_id in self._seen or self.buffer.holds(batch_id):
            return 0
        if self.predicate is not None and records.num_rows:
            records = records.filter(self.predicate(records))
        if records.num_rows:
            if not self.buffer.append(batch_id, records):
                self._count("dropped", records.num_rows)
                log.warning("forward %s: buffer full (%d bytes), dropped %d records of batch %s", self.name,
                            self.options.buffer_bytes, records.num_rows, batch_id)
                return 0
            BUFFER_BYTES.labels(self.name).set(self.buffer.size)
            self._wake.set()
        self._seen[batch_id] = None
        while len(self._seen) > SEEN_BATCHES:
            self._seen.popitem(last=False)
        return records.num_rows

    # the worker ---------------------------------------------------------------------------------------
    def start(self) -> "Sink":
        """Start draining the buffer in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"forward-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop the worker, first waiting up to ``drain_timeout`` s for the buffer to empty (what is left
        stays on disk for the next start)."""
        deadline = time.monotonic() + drain_timeout
        while self._thread and time.monotonic() < deadline and self.buffer.pending_rows():
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=max(5.0, self.options.timeout_seconds + 1))
        self.close()

    def close(self) -> None:
        """Release connections (a subclass's)."""

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._drain_once():
                    self._wake.wait(self._linger())
                    self._wake.clear()
            except Exception:  # noqa: BLE001 - keep the worker alive; the records stay buffered
                log.exception("forward %s: sending failed; retrying", self.name)
                self._stop.wait(self.options.initial_backoff_seconds)

    def _linger(self) -> float:
        """How long to wait before looking again: a partial batch waits for ``batch.timeout``."""
        oldest = self.buffer.oldest_mtime()
        if oldest is None:
            return 1.0
        return max(0.01, self.options.batch.timeout_seconds - (time.time() - oldest))

    def _drain_once(self) -> bool:
        """Send one request's worth; False when there is nothing to send yet."""
        policy = self.options.batch
        pending = self.buffer.pending_rows()
        oldest = self.buffer.oldest_mtime()
        if not pending or (pending < policy.max_records and oldest is not None and not self._stop.is_set()
                           and time.time() - oldest < policy.timeout_seconds):
            return False
        table = self.buffer.read(policy.max_records)
        if table is None:
            return False
        try:
            items = self.encode(table)
        except Exception:  # noqa: BLE001 - records this sink cannot encode would block it for good
            log.exception("forward %s: cannot encode %d records; dropped", self.name, table.num_rows)
            self._done(table.num_rows, "dropped")
            return True
        for request in _requests(items, policy.max_bytes):
            if not self._deliver(request):
                return False
        return True

    def _deliver(self, items: list[bytes]) -> bool:
        """Send ``items`` until they are taken or refused; False when stopped first (they stay buffered)."""
        attempt = 0
        while not self._stop.is_set():
            try:
                self.send(items)
            except Retriable as exc:
                attempt += 1
                self._count("retried", len(items))
                delay = min(self.options.max_backoff_seconds, self.options.initial_backoff_seconds * 2 ** (attempt - 1))
                log.warning("forward %s: %s; retry %d (%d records) in about %.1fs", self.name, exc, attempt,
                            len(items), delay)
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                continue
            except Refused as exc:
                log.error("forward %s: %d records refused for good, dropped: %s", self.name, len(items), exc)
                self._done(len(items), "dropped")
                return True
            self._done(len(items), "sent")
            return True
        return False

    def _done(self, rows: int, outcome: str) -> None:
        self.buffer.advance(rows)
        self._count(outcome, rows)
        BUFFER_BYTES.labels(self.name).set(self.buffer.size)

    def _count(self, outcome: str, rows: int) -> None:
        self.counts[outcome] += rows
        RECORDS.labels(self.name, outcome).inc(rows)

    # what a sink gives ------------------------------------------------------------------------------
    def encode(self, table: pa.Table) -> list[bytes]:
        """One payload item per record of ``table``, in order."""
        raise NotImplementedError

    def send(self, items: list[bytes]) -> None:
        """Send ``items`` in one request; raise Retriable or Refused when the receiver did not take them."""
        raise NotImplementedError


def _requests(items: list[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """``items`` cut into requests of at most ``max_bytes`` (an item larger than that alone)."""
    request: list[bytes] = []
    size = 0
    for item in items:
        if request and size + len(item) > max_bytes:
            yield request
            request, size = [], 0
        request.append(item)
        size += len(item) + 1
    if request:
        yield request


def http_outcome(status: int, text: str) -> None:
    """Raise Retriable or Refused for an HTTP answer that is not a success."""
    if 200 <= status < 300:
        return
    error = f"HTTP {status}: {text[:300]}"
    if status in RETRIABLE_STATUS or status >= 500:
        raise Retriable(error)
    raise Refused(error)

