"""Stream mode: watch the spool, run each batch through Dask in three phases, hand the result on,
then delete the batch.

Per batch: ``prepare_batch`` on a worker (mask, order, match against the template snapshot) →
the driver learns the unmatched messages → ``transform_batch`` on the same worker (template every
record, enrich, aggregate) → the sink (monitoring) gets the records (only the ``columns`` it asked
for) while ``commit_transformed`` commits the batch to the lake on that worker → once both are done,
the spool file is deleted. Detection does not wait for the lake commit. A failure at any step
leaves the spool file for a later attempt (with backoff); the lake commit is idempotent, and the
detectors ignore a batch id they have seen.

A batch that cannot be read, or that failed ``MAX_ATTEMPTS`` times, is quarantined in
``spool/failed`` with its reason (``processing.quarantine``); it is counted in
``logwarden_spool_quarantined_batches`` and announced through ``on_quarantine`` (the stack raises a
CRITICAL self-alert). When a retried batch goes through, ``on_quarantine`` hears of it again, resolved.

Outages of the Dask scheduler: when the client loses it (``kill -9``, a restart), every future it held
is cancelled. The batches in flight go back to the spool and are submitted again once the client is
connected again, with no attempt counted against them (``quarantine.counts_as_attempt``; nor for a
full data disk): only failures of a batch's own tasks lead to quarantine. A client that gave up reconnecting (after its timeout) is
replaced through ``reconnect``, when given. Each batch is still committed once: the lake is idempotent
by batch id, and a batch is handed to the sink (and deleted from the spool) only once it went through.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from distributed import Client, Future
from distributed.diagnostics.plugin import WorkerPlugin

from logwarden.collector.deadletter import DEFAULT_MAX_BYTES
from logwarden.collector.spool import Spool
from logwarden.common.paths import DataDir
from logwarden.processing import metrics
from logwarden.processing.batch import (
    BatchOutput, Committed, CorruptBatch, batch_id_of, commit_transformed, prepare_batch, transform_batch,
)
from logwarden.processing.enrich import Inventory
from logwarden.processing.masking import MaskingConfig
from logwarden.processing.mining import TemplateCoordinator
from logwarden.processing.quarantine import FAILED, UNREADABLE, Quarantine, QuarantinedBatch, counts_as_attempt
from logwarden.processing.templates import TemplateInfo
from logwarden.storage.elasticsearch import ElasticsearchConfig

log = logging.getLogger(__name__)

BatchSink = Callable[[BatchOutput], None]
BatchesSink = Callable[[list[BatchOutput]], None]
QuarantineSink = Callable[[QuarantinedBatch], None]
MAX_ATTEMPTS = 5
READY_FACTOR = 4  # at most this many times max_in_flight batches held, computing or waiting to be handed on
OUTAGE_RETRY = 1.0  # seconds before a batch lost to an outage is submitted again
DELIVERY_DEPTH = 8  # finished batches queued for the sink while the workers go on
HANDOFF_BATCHES = 8  # at most this many queued batches handed to ``sink_many`` at once
RECONNECT_INTERVAL = 2.0  # seconds between attempts at a new client, once the old one gave up
CONNECTED = "running"
GAVE_UP = frozenset({"closing", "closed", "failed"})  # client states it does not leave by itself
Reconnect = Callable[[], Client]


@dataclass
class InFlight:
    """A batch between submission and hand-off."""

    path: Path
    future: Future
    phase: str = "prepare"  # then "transform", then "ready" (waiting for earlier batches to be handed on)
    learned: list[TemplateInfo] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # the unmatched messages the driver learned from
    submitted: float = field(default_factory=time.monotonic)  # for logwarden_processing_batch_seconds
    spooled_at: float | None = None  # the spool file's mtime, for logwarden_processing_lag_seconds
    output: BatchOutput | None = None  # once transformed, while it waits for the sink
    commit: Future | None = None  # the lake commit, running while the sink has the records
    sunk: bool = False  # the sink took the records (set by the delivery thread)
    sink_failed: bool = False  # the sink raised: the batch is processed again


class ImportProcessing(WorkerPlugin):
    """Imports the processing code on every worker (also ones that join later) when it starts, so the
    first batch a worker gets does not wait a second for imports."""

    name = "logwarden-processing"

    def setup(self, worker) -> None:
        import pyarrow.dataset  # noqa: F401  (what pyarrow.parquet.read_table imports on first use)

        import logwarden.processing.batch  # noqa: F401


class SpoolProcessor:
    """Submits spool batches to Dask and delivers their outputs, in a background thread."""

    def __init__(self, client: Client, paths: DataDir, sink: BatchSink, max_in_flight: int = 4,
                 poll_interval: float = 0.05, masking: MaskingConfig | None = None,
                 spool_dir: Path | None = None, elasticsearch: "ElasticsearchConfig | None" = None,
                 inventory: Inventory | None = None, on_quarantine: QuarantineSink | None = None,
                 deadletter_max_bytes: int | None = DEFAULT_MAX_BYTES, reconnect: Reconnect | None = None,
                 columns: tuple[str, ...] | None = None, sink_many: BatchesSink | None = None) -> None:
        self.client = client
        self.sink_many = sink_many  # when given, it takes every batch waiting for the sink in one call
        self.columns = columns  # what the sink gets of each batch's records (None: every column)
        self.reconnect = reconnect
        self.spool = Spool(spool_dir or paths.spool)
        self.quarantine = Quarantine(self.spool.directory)
        self.on_quarantine = on_quarantine
        self.lake_root = str(paths.lake)
        self.deadletter_dir = str(paths.deadletter)  # records the lake cannot take (the rest commits)
        self.deadletter_max_bytes = deadletter_max_bytes
        self.sink = sink
        self.max_in_flight = max_in_flight
        self.poll_interval = poll_interval
        self.masking = masking
        self.elasticsearch = elasticsearch
        self.inventory = inventory
        self.templates = TemplateCoordinator(paths.lake)
        self._snapshot_bytes: bytes | None = None
        self._snapshot_future: Future | None = None
        self._in_flight: dict[str, InFlight] = {}
        self._committing: dict[str, InFlight] = {}  # handed to the sink; deleted once it and the commit are done
        self._handed_on: set[str] = set()  # batches the sink took that are still in the spool
        self._failures: dict[str, tuple[int, float]] = {}  # batch id -> (attempts, retry not before)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Finished batches go to the sink (the detectors) in their own thread, in spool order, so the
        # workers keep processing meanwhile; a batch leaves the spool only once the sink took it.
        self._delivery: queue.Queue[InFlight | None] = queue.Queue(maxsize=DELIVERY_DEPTH)
        self._delivering: set[str] = set()
        self._delivery_thread: threading.Thread | None = None
        self.batches_done = 0
        self.records_done = 0
        self.last_error: str | None = None
        self.dead_lettered = 0
        self.outages = 0  # times the scheduler was lost
        self.resubmitted = 0  # batches submitted again after an outage, uncounted
        self._outage_since: float | None = None
        self._reconnect_at = 0.0
        client.register_plugin(ImportProcessing(), name=ImportProcessing.name)
        metrics.watch_quarantine(self.quarantine.count)
        metrics.watch_spool(self.spool)
        waiting = self.quarantine.count()
        if waiting:
            log.warning("%d spool batch(es) in quarantine (%s): see `logwarden spool failed list`",
                        waiting, self.quarantine.folder)

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="spool-processor", daemon=True)
        self._thread.start()
        self._delivery_thread = threading.Thread(target=self._delivery_loop, name="spool-delivery", daemon=True)
        self._delivery_thread.start()

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop; first wait up to ``drain_timeout`` seconds for the spool to empty."""
        deadline = time.monotonic() + drain_timeout
        while drain_timeout and time.monotonic() < deadline and (self.spool.depth() or self._in_flight
                                                                  or self._committing):
            time.sleep(0.1)
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        if self._delivery_thread:
            self._delivery.put(None)  # after the batches already handed over
            self._delivery_thread.join(timeout=30)
        self._finish_done(wait=5.0)
        self.templates.save()

    def pending(self) -> int:
        """Batches in the spool (waiting or in flight)."""
        return self.spool.depth()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._connected():
                    self._stop.wait(self.poll_interval * 4)
                    continue
                self._submit_new()
                if not (self._advance_done() | self._finish_done()):
                    time.sleep(self.poll_interval)
            except Exception as exc:  # keep the loop alive; the batch stays in the spool for a retry
                self.last_error = repr(exc)
                log.exception("spool processing failed; retrying")
                time.sleep(1.0)

    def _connected(self) -> bool:
        """Whether the client is connected to the scheduler. Losing it gives the batches in flight back to
        the spool; a client that gave up is replaced (``reconnect``); on its return, the plugin is
        registered again (a restarted scheduler does not know it)."""
        status = self.client.status
        if status == CONNECTED:
            if self._outage_since is not None:
                self._scheduler_back()
            return True
        if self._outage_since is None:
            self._outage_started(status)
        if status in GAVE_UP and self.reconnect is not None and time.monotonic() >= self._reconnect_at:
            self._reconnect_at = time.monotonic() + RECONNECT_INTERVAL
            try:
                self.client = self.reconnect()
            except Exception as exc:  # noqa: BLE001 - the scheduler is not back yet: try again later
                self.last_error = f"reconnecting to the Dask scheduler: {exc!r}"
                log.warning("Dask scheduler still unreachable (%r); trying again in %.0fs", exc, RECONNECT_INTERVAL)
        return False

    def _outage_started(self, status: str) -> None:
        self._outage_since = time.monotonic()
        self.outages += 1
        lost = len(self._in_flight) + len(self._committing)
        for item in self._in_flight.values():
            _release(item.future)
        for item in self._committing.values():  # handed to the sink or not, they are committed again
            _release(item.commit)
        self._in_flight.clear()
        self._committing.clear()
        self.resubmitted += lost
        self._snapshot_future = None
        self.last_error = f"lost the Dask scheduler (client {status})"
        log.warning("lost the Dask scheduler (client %s): %d batch(es) in flight go back to the spool, to be "
                    "submitted again (no attempt counted) when it is back", status, lost)

    def _scheduler_back(self) -> None:
        self.client.register_plugin(ImportProcessing(), name=ImportProcessing.name)
        log.warning("the Dask scheduler is back after %.1fs; processing the spool again",
                    time.monotonic() - self._outage_since)
        self._outage_since = None
        self._snapshot_future = None

    def _snapshot(self) -> Future:
        """The template snapshot on the workers, scattered again when it changed or was lost
        (a worker that died may have held the only copy)."""
        snapshot = self.templates.snapshot
        live = self._snapshot_future is not None and self._snapshot_future.status == "finished"
        if snapshot is not self._snapshot_bytes or not live:
            self._snapshot_future = self.client.scatter(snapshot, broadcast=True, hash=False)
            self._snapshot_bytes = snapshot
        return self._snapshot_future

    def _submit_new(self) -> None:
        now = time.monotonic()
        computing = (sum(item.phase != "ready" for item in self._in_flight.values())
                     + sum(not item.commit.done() for item in self._committing.values()))
        # Taken before listing the spool: a batch the delivery thread unlinks afterwards is in it; one it
        # was not delivering then cannot vanish from the listing (only delivered batches are unlinked).
        delivering = set(self._delivering)
        for path in self.spool.batches():
            # finished batches waiting for an earlier one do not hold the workers back, within reason
            if computing >= self.max_in_flight or len(self._in_flight) >= READY_FACTOR * self.max_in_flight:
                return
            batch_id = batch_id_of(path)
            if (batch_id in self._in_flight or batch_id in self._committing or batch_id in delivering
                    or self._failures.get(batch_id, (0, 0.0))[1] > now):
                continue
            future = self.client.submit(prepare_batch, str(path), self._snapshot(), self.masking,
                                        key=f"prepare-{batch_id}-{time.monotonic_ns()}", retries=2)
            self._in_flight[batch_id] = InFlight(path, future, spooled_at=_mtime(path))
            computing += 1

    def _advance_done(self) -> bool:
        done = sorted((bid, item) for bid, item in self._in_flight.items()
                      if item.phase != "ready" and item.future.done())
        for batch_id, item in done:
            if item.future.status != "finished":
                del self._in_flight[batch_id]
                status = item.future.status
                error = item.future.exception() if status == "error" else None
                _release(item.future)
                self._failed(batch_id, item.path, status, error)
            elif item.phase == "prepare":
                self._transform(batch_id, item)
            else:
                self._commit(batch_id, item)
        return self._deliver_ready() or bool(done)

    def _failed(self, batch_id: str, path: Path, status: str, error: BaseException | None) -> None:
        """A task of the batch did not finish: its own failure counts as an attempt, an outage does not."""
        self._snapshot_future = None  # it may be what was lost: scatter it again
        if counts_as_attempt(status, error):
            self._record_failure(batch_id, path, error or RuntimeError(f"task {status}"))
        else:
            self._retry_after_outage(batch_id, repr(error) if error else f"task {status}")

    def _deliver_ready(self) -> bool:
        """Hand on finished batches in spool order: a batch waits for the earlier ones still in flight,
        so the detectors see event time move as the collector received it (a failed batch does not
        hold the others back; it comes later, as late data)."""
        delivered = False
        while self._in_flight:
            batch_id = min(self._in_flight)
            item = self._in_flight[batch_id]
            if item.phase != "ready":
                break
            del self._in_flight[batch_id]
            self._committing[batch_id] = item
            self._delivering.add(batch_id)
            self._delivery.put(item)  # waits while DELIVERY_DEPTH batches are queued
            delivered = True
        return delivered

    def _transform(self, batch_id: str, item: InFlight) -> None:
        unmatched = item.future.result()
        item.learned = self.templates.learn(unmatched)
        item.messages = unmatched.messages
        prepared = item.future
        # Depending on the phase-one future places phase two on the worker that holds its table.
        item.future = self.client.submit(_transform_after, prepared, str(item.path), self._snapshot(),
                                         unmatched.messages, self.masking, self.inventory,
                                         frozenset(t.template_id for t in item.learned), self.columns,
                                         key=f"transform-{batch_id}-{time.monotonic_ns()}", retries=2,
                                         priority=1)  # before waiting phase-one tasks: a batch done sooner
        item.phase = "transform"
        prepared.release()

    def _commit(self, batch_id: str, item: InFlight) -> None:
        """Phase two is done: its records wait for the sink, and the lake commit starts on the same worker."""
        transformed = item.future
        item.output = transformed.result()
        item.output.new_templates = item.learned
        item.commit = self.client.submit(_commit_after, transformed, str(item.path), self.lake_root,
                                         self._snapshot(), item.messages, self.masking, self.elasticsearch,
                                         self.inventory, frozenset(t.template_id for t in item.learned),
                                         self.deadletter_dir, self.deadletter_max_bytes,
                                         key=f"commit-{batch_id}-{time.monotonic_ns()}", retries=2, priority=2)
        item.phase = "ready"
        transformed.release()

    def _delivery_loop(self) -> None:
        while True:
            items = [self._delivery.get()]
            while items[-1] is not None and len(items) < HANDOFF_BATCHES:
                try:
                    items.append(self._delivery.get_nowait())
                except queue.Empty:
                    break
            stopping = items[-1] is None
            self._hand_on([item for item in items if item is not None])
            if stopping:
                return

    def _hand_on(self, items: list[InFlight]) -> None:
        """Give batches to the sink: all at once to ``sink_many``, else one by one. A batch it took before
        (its commit failed afterwards) is not given again; one it refused is processed again."""
        for group in ([items] if self.sink_many else [[item] for item in items]):
            fresh = [item for item in group if item.output.batch_id not in self._handed_on]
            try:
                if fresh and self.sink_many:
                    self.sink_many([item.output for item in fresh])
                elif fresh:
                    self.sink(fresh[0].output)
                self._handed_on.update(item.output.batch_id for item in fresh)
                for item in group:
                    item.sunk = True
            except Exception as exc:  # the batches stay in the spool and are processed again
                for item in group:
                    item.sink_failed = True
                self.last_error = repr(exc)
                log.exception("handing on batch(es) %s failed; processed again",
                              ", ".join(item.output.batch_id for item in group))
            finally:
                for item in group:
                    self._delivering.discard(item.output.batch_id)

    def _finish_done(self, wait: float = 0.0) -> bool:
        """Finish the batches whose sink and lake commit are both done (waiting up to ``wait`` seconds for
        those still committing): delete their spool files, count them. Whether any was finished."""
        deadline = time.monotonic() + wait
        finished = False
        for batch_id, item in sorted(self._committing.items()):
            if not (item.sunk or item.sink_failed):
                continue
            if not item.commit.done() and time.monotonic() < deadline:
                try:
                    item.commit.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - looked at below
                    pass
            if not item.commit.done():
                continue
            del self._committing[batch_id]
            self._finish(batch_id, item)
            finished = True
        return finished

    def _finish(self, batch_id: str, item: InFlight) -> None:
        status = item.commit.status
        if status != "finished":
            error = item.commit.exception() if status == "error" else None
            _release(item.commit)
            self._failed(batch_id, item.path, status, error)
            return
        committed: Committed = item.commit.result()
        _release(item.commit)
        if item.sink_failed:  # committed, but the detectors did not take it: the whole batch again
            return
        item.path.unlink(missing_ok=True)
        self._handed_on.discard(batch_id)
        self._failures.pop(batch_id, None)
        self.templates.merge_usage(committed.usage)
        self.batches_done += 1
        self.records_done += committed.records
        self.dead_lettered += committed.dead_lettered
        metrics.observe_batch(committed, item.output, item.submitted, item.spooled_at)
        retried = self.quarantine.take_retried(batch_id)
        if retried is not None:
            log.warning("batch %s, retried from quarantine, went through", batch_id)
            self._announce(retried)

    def _retry_after_outage(self, batch_id: str, reason: str) -> None:
        """A batch lost to an outage (not its own failure): again in ``OUTAGE_RETRY`` s, attempts unchanged."""
        attempts = self._failures.get(batch_id, (0, 0.0))[0]
        self._failures[batch_id] = (attempts, time.monotonic() + OUTAGE_RETRY)
        self.resubmitted += 1
        self.last_error = f"batch {batch_id}: {reason}"
        log.warning("batch %s: %s, an outage, not its own failure; submitting it again (no attempt counted)",
                    batch_id, reason)

    def _record_failure(self, batch_id: str, path: Path, error: BaseException) -> None:
        attempts = self._failures.get(batch_id, (0, 0.0))[0] + 1
        self.last_error = f"batch {batch_id}: {error!r}"
        if isinstance(error, CorruptBatch):
            self._quarantine(batch_id, path, UNREADABLE, "the spool file cannot be read as records", error,
                             attempts)
            return
        if attempts >= MAX_ATTEMPTS:
            self._quarantine(batch_id, path, FAILED, f"processing failed {attempts} times", error, attempts)
            return
        delay = min(60.0, 2.0 ** attempts)
        self._failures[batch_id] = (attempts, time.monotonic() + delay)
        log.error("batch %s failed (%r); retry %d in %.0fs", batch_id, error, attempts, delay)

    def _quarantine(self, batch_id: str, path: Path, kind: str, reason: str, error: BaseException,
                    attempts: int) -> None:
        """Move a batch into quarantine with its reason, count it, announce it."""
        self._failures.pop(batch_id, None)
        if not path.exists():  # moved away meanwhile (e.g. by hand)
            return
        entry = self.quarantine.add(path, kind, reason, f"{type(error).__name__}: {error}", attempts)
        metrics.QUARANTINE_EVENTS.labels(kind).inc()
        log.error("batch %s quarantined in %s: %s (%r)", batch_id, self.quarantine.folder, reason, error)
        self._announce(entry)

    def _announce(self, entry: QuarantinedBatch) -> None:
        if self.on_quarantine is None:
            return
        try:
            self.on_quarantine(entry)
        except Exception:  # noqa: BLE001 - the alert path must not stop processing
            log.exception("announcing quarantined batch %s failed", entry.batch_id)


def _mtime(path: Path) -> float | None:
    """When ``path`` was written (None when it is gone)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _release(future: Future) -> None:
    """Release a future; a client that lost its scheduler may have forgotten it already."""
    try:
        future.release()
    except Exception:  # noqa: BLE001 - nothing left to release
        log.debug("future %s already gone", future.key)


def _transform_after(_prepared, spool_path: str, snapshot: bytes, learned: list[str], masking: MaskingConfig | None,
                     inventory: Inventory | None, new_template_ids: frozenset[str],
                     columns: tuple[str, ...] | None) -> BatchOutput:
    """``transform_batch``, scheduled after (and next to) its phase-one result."""
    return transform_batch(spool_path, snapshot, learned, masking, inventory, new_template_ids, columns)


def _commit_after(_transformed, spool_path: str, lake_root: str, snapshot: bytes, learned: list[str],
                  masking: MaskingConfig | None, elasticsearch: "ElasticsearchConfig | None",
                  inventory: Inventory | None, new_template_ids: frozenset[str], deadletter_dir: str | None,
                  deadletter_max_bytes: int | None) -> Committed:
    """``commit_transformed``, scheduled after (and next to) its phase-two result."""
    return commit_transformed(spool_path, lake_root, snapshot, learned, masking, elasticsearch, inventory,
                              new_template_ids, deadletter_dir, deadletter_max_bytes)
