"""Stream mode: watch the spool, run one Dask task per batch, hand each result on, then delete the batch."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from distributed import Client, Future

from collector.spool import Spool
from logwarden.common.paths import DataDir
from processing.batch import BatchOutput, batch_id_of, process_spool_batch

log = logging.getLogger(__name__)

BatchSink = Callable[[BatchOutput], None]
MAX_ATTEMPTS = 5


class SpoolProcessor:
    """Submits spool batches to Dask and delivers their outputs, in a background thread.

    A spool file is deleted only after its batch is committed to the lake and the sink
    (monitoring) has taken its output; a failure leaves the file for the next attempt.
    """

    def __init__(self, client: Client, paths: DataDir, sink: BatchSink, max_in_flight: int = 4,
                 poll_interval: float = 0.05) -> None:
        self.client = client
        self.spool = Spool(paths.spool)
        self.lake_root = str(paths.lake)
        self.sink = sink
        self.max_in_flight = max_in_flight
        self.poll_interval = poll_interval
        self._in_flight: dict[str, tuple[Path, Future]] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # batch id -> (attempts, retry not before)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches_done = 0
        self.records_done = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="spool-processor", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop; first wait up to ``drain_timeout`` seconds for the spool to empty."""
        deadline = time.monotonic() + drain_timeout
        while drain_timeout and time.monotonic() < deadline and (self.spool.depth() or self._in_flight):
            time.sleep(0.1)
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def pending(self) -> int:
        """Batches in the spool or in flight."""
        return self.spool.depth()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._submit_new()
                if not self._collect_done():
                    time.sleep(self.poll_interval)
            except Exception as exc:  # keep the loop alive; the batch stays in the spool for a retry
                self.last_error = repr(exc)
                log.exception("spool processing failed; retrying")
                time.sleep(1.0)

    def _submit_new(self) -> None:
        for path in self.spool.batches():
            if len(self._in_flight) >= self.max_in_flight:
                return
            batch_id = batch_id_of(path)
            if batch_id in self._in_flight or self._failures.get(batch_id, (0, 0.0))[1] > time.monotonic():
                continue
            future = self.client.submit(process_spool_batch, str(path), self.lake_root, key=f"batch-{batch_id}",
                                        retries=3, pure=False)
            self._in_flight[batch_id] = (path, future)

    def _collect_done(self) -> bool:
        done = [(bid, path, fut) for bid, (path, fut) in self._in_flight.items() if fut.done()]
        for batch_id, path, future in sorted(done):
            del self._in_flight[batch_id]
            if future.status != "finished":
                self._record_failure(batch_id, path, future.exception())
                future.release()
                continue
            self._failures.pop(batch_id, None)
            output = future.result()
            future.release()
            self.sink(output)
            path.unlink(missing_ok=True)
            self.batches_done += 1
            self.records_done += output.num_records
        return bool(done)

    def _record_failure(self, batch_id: str, path: Path, error: BaseException) -> None:
        attempts = self._failures.get(batch_id, (0, 0.0))[0] + 1
        self.last_error = f"batch {batch_id}: {error!r}"
        if attempts >= MAX_ATTEMPTS:
            quarantine = path.parent / "failed"
            quarantine.mkdir(exist_ok=True)
            path.replace(quarantine / path.name)
            self._failures.pop(batch_id, None)
            log.error("batch %s failed %d times (%r); moved to %s", batch_id, attempts, error, quarantine)
            return
        delay = min(60.0, 2.0 ** attempts)
        self._failures[batch_id] = (attempts, time.monotonic() + delay)
        log.error("batch %s failed (%r); retry %d in %.0fs", batch_id, error, attempts, delay)
