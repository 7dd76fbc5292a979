"""The soak from start to end: receivers, Ray head, Dask cluster, ``logwarden up``, load with incidents and faults,
drain, clean stop, verdicts. :func:`run_soak` returns the report (a JSON-able dict)."""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.soak import verify
from bench.soak.channels import FIRING, FakeChannels
from bench.soak.faults import FaultInjector
from bench.soak.ledger import ACKNOWLEDGED, Ledger
from bench.soak.load import SHARES, Epoch, HttpSender, IncidentSender, PacedSender, StreamSender, send_ghost
from bench.soak.plan import GHOST_AGE_SECONDS, GHOST_RECORDS, Plan, SoakConfig
from bench.soak.stack import MB, DaskCluster, DataDisk, MemorySampler, RayHead, StackProcess, free_port
from bench.soak.workload import RecordFactory
from logwarden.schemas import ANOMALY_SCHEMA_PATH

log = logging.getLogger(__name__)
STABLE_POLLS = 4
PROMISES = ("lake_exactly_once", "dead_letter", "alerts_exactly_once", "faults_recovered", "clean_stop",
            "throughput", "memory")


def _wait(predicate, timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class Soak:
    """One soak run; ``run`` returns the report."""

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.plan = Plan.build(config)
        self.workdir = Path(config.workdir or tempfile.mkdtemp(prefix="lw-soak-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.factory = RecordFactory(config.seed)
        self.ledger = Ledger()
        self.epoch = Epoch()
        self.stop_load = threading.Event()
        self.channels: FakeChannels | None = None
        self.ray: RayHead | None = None
        self.dask: DaskCluster | None = None
        self.stack: StackProcess | None = None
        self.sampler: MemorySampler | None = None
        self.disk: DataDisk | None = None
        self.timings: dict[str, float] = {}
        self.syslog_port = 0

    # the run ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Start everything, drive the load, stop, verify; always cleans up what it started."""
        try:
            self._start()
            senders, incidents, injector, load_seconds = self._load()
            drained = self._drain()
            alerts_in = self._wait_for_alerts()
            exit_status = self._stop_stack()
            return self._report(senders, incidents, injector, load_seconds, drained, alerts_in, exit_status)
        finally:
            self._cleanup()

    def _start(self) -> None:
        started = time.monotonic()
        self.channels = FakeChannels(self.workdir).start()
        self.syslog_port = free_port()
        config_path = self.channels.write_config(self.workdir / "soak.yaml", syslog_port=self.syslog_port)
        ray_dir = Path(tempfile.mkdtemp(prefix="lwsoakray-", dir="/tmp"))  # short: Ray's socket paths are limited
        self.ray = RayHead(ray_dir)  # assigned before it starts, so that a failed start is cleaned up too
        self.ray.start()
        self.dask = DaskCluster(self.workdir / "dask", self.config.dask_workers)
        self.dask.start()
        if "disk_full" in self.config.faults:
            # room for the run's data (about 600 bytes per record in lake, WAL, spool) plus 2 GiB
            size = 2048 * MB + int(600 * self.config.rate * self.config.duration)
            self.disk = DataDisk(self.data_dir, size).mount()
            if not self.disk.mounted:
                log.warning("disk_full will be skipped: %s", self.disk.reason)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The seed rules, copied: an edit of the repository's file during the run does not change the soak.
        rules = self.workdir / "anomaly_schema.yaml"
        shutil.copyfile(ANOMALY_SCHEMA_PATH, rules)
        self.stack = StackProcess(self.data_dir, config_path, rules, self.ray, self.dask,
                                  free_port(), free_port())
        self.stack.start()
        self.sampler = MemorySampler(self.stack, self.ray)
        self.sampler.start()
        self.timings["startup_s"] = round(time.monotonic() - started, 1)
        log.info("stack up in %.0fs (data in %s)", self.timings["startup_s"], self.data_dir)

    def _load(self) -> tuple[list[PacedSender], IncidentSender, FaultInjector, float]:
        url = f"{self.stack.url}/v1/logs"
        send_ghost(url, self.factory, self.ledger, GHOST_RECORDS, GHOST_AGE_SECONDS)
        if not _wait(lambda: self._spool_empty(), 120, 0.5):
            raise RuntimeError("the ghost service's records did not leave the spool within 120s")
        rate = self.config.rate
        http_threads = 2 if rate <= 10_000 else 4
        t0 = time.time()
        self.ledger.start(t0)
        senders: list[PacedSender] = [
            HttpSender(f"http-{i}", url, rate * SHARES["http"] / http_threads, self.plan, self.factory, self.ledger,
                       self.stop_load, t0, self.config.seed * 100 + i) for i in range(http_threads)]
        senders += [
            StreamSender("tcp-ndjson", "tcp", ("127.0.0.1", self.stack.tcp_port), rate * SHARES["tcp"], self.plan,
                         self.factory, self.ledger, self.stop_load, t0, self.epoch, self.config.seed * 100 + 50),
            StreamSender("syslog-5424", "syslog", ("127.0.0.1", self.syslog_port), rate * SHARES["syslog"],
                         self.plan, self.factory, self.ledger, self.stop_load, t0, self.epoch,
                         self.config.seed * 100 + 51),
            StreamSender("text-3164", "text", ("127.0.0.1", self.syslog_port), rate * SHARES["text"], self.plan,
                         self.factory, self.ledger, self.stop_load, t0, self.epoch, self.config.seed * 100 + 52),
        ]
        incidents = IncidentSender(url, self.plan, self.factory, self.ledger, self.stop_load, t0)
        injector = FaultInjector(self.plan, self.stack, self.ray, self.channels, self.epoch, self.stop_load, t0,
                                 factory=self.factory, ledger=self.ledger, disk=self.disk)
        for thread in (*senders, incidents, injector):
            thread.start()
        log.info("load: %d records/s for %.0fs, %d round(s)", rate, self.config.duration, self.plan.rounds)
        self.stop_load.wait(self.config.duration)
        self.stop_load.set()
        load_seconds = time.time() - t0
        for thread in (*senders, incidents):
            thread.join(90)
        injector.join_all(360)  # a recovery still under way (a restart on a loaded machine) is waited for
        return senders, incidents, injector, load_seconds

    def _spool_empty(self) -> bool:
        """Whether the collector reports an empty spool and no batch file is left in it."""
        ready = self.stack.ready()
        return ready.get("spool_depth") == 0 and not any((self.data_dir / "spool").glob("*.parquet"))

    def _drain(self) -> bool:
        """Wait until the spool is empty and the lake holds as many rows of this run as were acknowledged
        or possibly written (the verdicts say which rows)."""
        started = time.monotonic()
        lake_dir = self.data_dir / "lake"
        acked = self.ledger.total("acked")

        seen: list[int] = []

        def settled() -> bool:
            if not self._spool_empty():
                seen.clear()
                return False
            seen.append(verify.lake_distinct_ids(lake_dir, self.factory.id_pattern))
            # done when the lake has them all, or when nothing is left to process and the lake stopped growing
            return seen[-1] >= acked or (len(seen) >= STABLE_POLLS and len(set(seen[-STABLE_POLLS:])) == 1)

        drained = _wait(settled, self.config.drain_timeout, 3.0)
        self.timings["drain_s"] = round(time.monotonic() - started, 1)
        log.info("drain: %s after %.0fs (%d acknowledged, %s of this run's ids in the lake)",
                 "done" if drained else "timed out", self.timings["drain_s"], acked, seen[-1] if seen else "?")
        return drained

    def _wait_for_alerts(self) -> bool:
        """Wait until every expected alert reached its channel, then ``settle_seconds`` more (time for a
        duplicate or an unexpected alert to show)."""
        expected = {(i.rule, i.key, i.channel) for i in self.plan.incidents}
        started = time.monotonic()

        def all_in() -> bool:
            got = {(d.rule, d.key, d.channel) for d in self.channels.deliveries() if d.status == FIRING}
            return expected <= got

        arrived = _wait(all_in, self.config.alert_timeout, 1.0)
        log.info("alerts: %s", "every expected alert arrived" if arrived else "some expected alerts never arrived")
        time.sleep(self.config.settle_seconds)
        self.timings["alert_wait_s"] = round(time.monotonic() - started, 1)
        return arrived

    def _stop_stack(self) -> int | None:
        started = time.monotonic()
        self.sampler.stop()
        status = self.stack.stop()
        self.timings["stop_s"] = round(time.monotonic() - started, 1)
        time.sleep(1.0)
        return status

    def _cleanup(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.stack is not None:
            self.stack.kill()
        if self.ray is not None:
            self.ray.stop()
        if self.dask is not None:
            self.dask.stop()
        if self.channels is not None:
            self.channels.stop()
        if not self.config.keep:
            if self.disk is not None and self.disk.mounted:
                shutil.rmtree(self.data_dir, ignore_errors=True)  # the tmpfs's pages back, then unmount
                self.disk.unmount()
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.disk is not None and self.disk.mounted:
            log.warning("the data dir %s stays mounted (tmpfs, --keep): `umount %s` when done",
                        self.data_dir, self.data_dir)

    # the report ------------------------------------------------------------------------------
    def _report(self, senders: list[PacedSender], incidents: IncidentSender, injector: FaultInjector,
                load_seconds: float, drained: bool, alerts_in: bool, exit_status: int | None) -> dict[str, Any]:
        pattern = self.factory.id_pattern
        lake_rows, without_id = verify.lake_ids(self.data_dir / "lake", pattern)
        quarantined = verify.quarantined(self.data_dir / "spool" / "failed", pattern, self.ledger)
        letters, reasons, anonymous = verify.dead_letter_ids(self.data_dir / "deadletter", pattern)
        outbox = verify.read_outbox(self.data_dir / "alerts")
        deliveries = self.channels.deliveries()
        history = verify.alert_history(self.data_dir / "alerts")
        promises = {
            "lake_exactly_once": verify.check_lake(self.ledger, lake_rows, without_id),
            "dead_letter": verify.check_dead_letter(self.ledger, letters, reasons, anonymous, lake_rows),
            "alerts_exactly_once": verify.check_alerts(self.plan, deliveries, outbox, history),
            "faults_recovered": verify.faults_recovered(injector.events, self.plan),
            "clean_stop": {"ok": exit_status == 0 and not self.stack.strays(), "exit_status": exit_status,
                           "strays": self.stack.strays()},
            "throughput": verify.throughput(self.config, self.plan, self.ledger, load_seconds,
                                            sum(s.dropped for s in senders), verify.pauses(injector.events)),
            "memory": verify.memory(self.config, dict(self.sampler.peak), dict(self.sampler.peak_pid),
                                    dict(self.sampler.first), dict(self.sampler.last)),
        }
        promises["lake_exactly_once"]["drained_in_time"] = drained
        promises["lake_exactly_once"]["quarantined_spool_batches"] = quarantined
        if quarantined["corrupted_records_not_in_failed"]:
            promises["lake_exactly_once"]["ok"] = False
        promises["alerts_exactly_once"]["all_arrived_in_time"] = alerts_in
        promises["alerts_exactly_once"]["incidents_given_up"] = incidents.gave_up
        if incidents.gave_up:
            promises["alerts_exactly_once"]["ok"] = False
        broken = [name for name in PROMISES if not promises[name]["ok"]]
        return {
            "verdict": "pass" if not broken else "fail",
            "broken_promises": broken,
            "config": {"minutes": self.config.minutes, "rate": self.config.rate, "seed": self.config.seed,
                       "rounds": self.plan.rounds, "round_seconds": round(self.plan.round_length, 1),
                       "burst_factor": self.config.burst_factor, "burst_seconds": self.config.burst_seconds,
                       "outage_seconds": self.config.outage_seconds, "dask_workers": self.config.dask_workers,
                       "faults": list(self.config.faults),
                       "shares": SHARES, "run_tag": self.factory.run_tag},
            "figures": {
                "records_per_s": {k: promises["throughput"][k] for k in
                                  ("target_per_s", "sustained_per_s", "steady_per_s", "burst_per_s")},
                "ack_to_alert_latency": verify.latency(self.plan, self.ledger, deliveries, outbox),
                "peak_rss_mb": promises["memory"]["peak_rss_mb"],
                "timings_s": self.timings,
            },
            "promises": promises,
            "records": {"per_protocol": self.ledger.snapshot_counts(), "answers": dict(self.ledger.statuses),
                        "acknowledged_means": ACKNOWLEDGED,
                        "sender_errors": {s.name: s.errors for s in senders if s.errors}},
            "faults": sorted(injector.events, key=lambda e: e["at_s"]),
            "channels": self.channels.stats(),
            "data_dir": str(self.data_dir) if self.config.keep else None,
        }


def run_soak(config: SoakConfig) -> dict[str, Any]:
    """Run one soak; the report."""
    return Soak(config).run()
