"""``logwarden up``: the whole system in one command.

collector (child process) → spool → SpoolProcessor (Dask task per batch) → lake
                                     └→ DetectorPool (Ray actors) → AlertService → outbox, console, channels
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil

from logwarden import dashboard
from logwarden.alerting import AlertService, build_alerting
from logwarden.api import ApiServer
from logwarden.clusters import ClusterLost, DaskConnection, RayConnection
from logwarden.common.atomic import write_bytes_atomic
from logwarden.common.auth import INGEST, READ
from logwarden.common.paths import DataDir
from logwarden.common.tls import client_context, server_context
from logwarden.common.yamlconf import ConfigError
from logwarden.alerting.digest import flush_digests
from logwarden.dashboard.rayauth import ray_dashboard_hint
from logwarden.demo import DemoTraffic, demo_alerting, demo_processing
from logwarden.forwarding import build_forwarder
from logwarden.ml_jobs import RetrainScheduler, VerdictTrainer, place_ml_rules
from logwarden.rules_watch import RulesWatcher
from logwarden.security import stack_auth, stack_authenticator, stack_tls
from logwarden.settings import Settings
from logwarden.supervisor import CollectorProcess
from logwarden.monitoring import RulesFile, load_rules
from logwarden.monitoring.handoff import detector_columns
from logwarden.processing.batch import BatchOutput
from logwarden.processing.pipeline import SpoolProcessor
from logwarden.processing.quarantine import QuarantinedBatch
from logwarden.driver_metrics import driver_registry
from logwarden.selfrules import SelfRules, StackProbe
from logwarden.storage.api import install_search
from logwarden.storage.compaction import CompactionScheduler
from logwarden.storage.retention import RetentionScheduler

log = logging.getLogger(__name__)
US = 1_000_000
STACK_FILE = "stack.json"


def running_stack(paths: DataDir) -> dict | None:
    """The running stack's pid and URLs, if a live ``logwarden up`` uses this data dir."""
    path = paths.run / STACK_FILE
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return info if psutil.pid_exists(info.get("pid", -1)) else None


@dataclass
class StackOptions:
    """What ``logwarden up`` was asked for. The options marked below override a setting; left None,
    they take the value of ``settings`` (the config file, or the embedded defaults)."""

    data_dir: Path
    settings: Settings
    config_path: str | None = None
    rules_path: Path | None = None  # None: settings.monitoring.rules
    host: str | None = None  # None: settings.collector.host
    http_port: int | None = None  # None: settings.collector.http_port
    tcp_port: int | None = None  # None: settings.collector.tcp_port
    api_port: int = 8081
    syslog_port: int | None = None  # None: the collector takes settings.collector.syslog_port
    forward_port: int | None = None  # None: the collector takes settings.collector.forward_port
    dashboard_port: int | None = 5006
    dask_scheduler: str | None = None
    dask_workers: int = 2
    adaptive_max: int | None = None
    dask_dashboard_port: int | None = 8787
    ray_address: str | None = None
    ray_dashboard_port: int | None = 8265
    collector: bool = True
    collectors: int = 1  # collector processes on the same ports (SO_REUSEPORT)
    collector_admin_port: int = 8090  # with several collectors: the first one's /health and /metrics port (+1 each)
    demo: bool = False
    demo_speed: float = 10.0
    demo_incidents: bool = True
    idle_advance_after: float | None = None  # None: settings.monitoring.idle_advance_after
    dashboard_url: str | None = None

    def __post_init__(self) -> None:
        collector, monitoring = self.settings.collector, self.settings.monitoring
        self.rules_path = monitoring.rules if self.rules_path is None else self.rules_path
        self.host = collector.host if self.host is None else self.host
        self.http_port = collector.http_port if self.http_port is None else self.http_port
        self.tcp_port = collector.tcp_port if self.tcp_port is None else self.tcp_port
        if self.idle_advance_after is None:
            self.idle_advance_after = monitoring.idle_advance_after
        if self.collectors < 1:
            raise ValueError(f"--collectors {self.collectors}: at least one")
        if self.collectors > 1 and 0 in (self.http_port, self.tcp_port, self.collector_syslog_port,
                                         self.collector_forward_port):
            raise ValueError("several collectors share their ports: give fixed port numbers, not 0")

    @property
    def collector_syslog_port(self) -> int | None:
        """The syslog port the collector listens on (None: no syslog)."""
        return self.settings.collector.syslog_port if self.syslog_port is None else self.syslog_port

    @property
    def collector_forward_port(self) -> int | None:
        """The Fluent forward port the collector listens on (None: none)."""
        return self.settings.collector.forward_port if self.forward_port is None else self.forward_port


class Stack:
    """Starts, runs and stops every part of logwarden."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.paths = DataDir.at(options.data_dir).create()
        # One authenticator and one certificate for every listener: collector, API, dashboard.
        self.auth_config = stack_auth(options.settings)
        self.authenticator = stack_authenticator(options.settings)
        self.tls = stack_tls(options.settings)
        self.scheme = "https" if self.tls is not None else "http"
        self.server_ssl = self.client_ssl = None
        self.rules: RulesFile = place_ml_rules(load_rules(options.rules_path), self.paths)
        self.collectors: list[CollectorProcess] = []
        self.dask: DaskConnection | None = None
        self.ray: RayConnection | None = None
        self.pool = None
        self.alerts: AlertService | None = None
        self.api: ApiServer | None = None
        self.dashboard = None
        self.retention: RetentionScheduler | None = None
        self.compaction: CompactionScheduler | None = None
        self.retrain: RetrainScheduler | None = None
        self.verdict_trainer: VerdictTrainer | None = None
        self.processor: SpoolProcessor | None = None
        self.forwarder = None  # the SIEM sinks of storage.forward (logwarden.storage.forward.Forwarder)
        self.watcher: RulesWatcher | None = None
        self.demo: DemoTraffic | None = None
        self._max_event_us: int | None = None
        self._last_batch_at = time.monotonic()
        self._event_lock = threading.Lock()
        self._owns_stack_file = False
        self.cluster_lost: str | None = None  # why the stack must start over (its Ray head died)
        self.self_rules = SelfRules(options.settings.monitoring.self_rules)  # the monitor monitors itself
        self.probe = StackProbe(self)

    # start --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every part; on failure, stop what was started and re-raise."""
        other = running_stack(self.paths)
        if other is not None:
            raise RuntimeError(f"another logwarden (pid {other['pid']}) is running on {self.paths.root}")
        self._owns_stack_file = True
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise

    def _start_parts(self) -> None:
        opts = self.options
        try:
            self.server_ssl, self.client_ssl = server_context(self.tls), client_context(self.tls)
        except ValueError as exc:  # a certificate or key that cannot be loaded
            raise RuntimeError(str(exc)) from None
        demo_token = self.auth_config.token_for(INGEST)  # the demo sends with the first ingest-capable token
        if opts.demo and self.auth_config.tokens and demo_token is None:
            raise RuntimeError("the demo needs a token with role ingest or admin in the configuration")
        if opts.collector:
            self._start_collectors()
        self.dask = DaskConnection.open(opts.dask_scheduler, opts.dask_workers, opts.dask_dashboard_port, opts.host,
                                        adaptive_max=opts.adaptive_max, spool_dir=self.paths.spool)
        self.ray = RayConnection.open(opts.ray_address, opts.ray_dashboard_port, opts.host, num_cpus=2)
        self._start_monitoring_and_alerting()
        self._start_processing()
        self.pool.wait_ready()
        write_bytes_atomic(orjson.dumps({"pid": os.getpid(), "urls": self.urls(), "config": opts.config_path and str(Path(opts.config_path).resolve()),
                                         "metrics": self.metrics_urls(),
                                         "dask_scheduler": self.dask.client.scheduler.address}),
                           self.paths.run / STACK_FILE)
        if opts.dashboard_port is not None:
            self.dashboard = dashboard.serve(opts.dashboard_port, self.paths.root, self.urls(), host=opts.host,
                                             auth=self.authenticator, ssl_context=self.server_ssl,
                                             client_ssl=self.client_ssl, metrics_token=self.auth_config.token_for(READ),
                                             api_url=self.api.base_url if self.api else None)
        if opts.demo:
            self.demo = DemoTraffic(f"{self.scheme}://{opts.host}:{opts.http_port}/v1/logs",
                                    (opts.host, opts.tcp_port), speed=opts.demo_speed, incidents=opts.demo_incidents,
                                    token=demo_token, ssl_context=self.client_ssl)
            self.demo.start()

    def _start_collectors(self) -> None:
        """One collector, or ``collectors`` of them on the same ports: the first with the plain write-ahead
        log, the others as instances c2, c3 ... each probed on its own admin port."""
        opts = self.options
        several = opts.collectors > 1
        for number in range(1, opts.collectors + 1):
            instance = f"c{number}" if number > 1 else None
            log_name = f"collector-{instance}.log" if instance else "collector.log"
            collector = CollectorProcess(
                self.paths.root, opts.host, opts.http_port, opts.tcp_port, opts.config_path, self.paths.run / log_name,
                opts.syslog_port, ssl_context=self.client_ssl, forward_port=opts.forward_port, instance=instance,
                admin_port=opts.collector_admin_port + number - 1 if several else None, reuse_port=several)
            collector.start()
            self.collectors.append(collector)

    def _start_monitoring_and_alerting(self) -> None:
        """Detectors (Ray actors), the alert service, the API, rule reloads and ML retraining."""
        from logwarden.monitoring.actors import DetectorPool

        opts = self.options
        self.pool = DetectorPool(self.rules, checkpoint_dir=self.paths.monitoring / "checkpoints",
                                 grouped=opts.settings.monitoring.rule_actors == "grouped")
        dashboard_url = opts.dashboard_url or (f"{self.scheme}://{opts.host}:{opts.dashboard_port}"
                                               if opts.dashboard_port is not None else None)
        alerting = demo_alerting(opts.settings.alerting) if opts.demo else opts.settings.alerting  # digests in-demo
        self.alerts = build_alerting(alerting, self.rules.routing, self.paths.alerts,
                                     dashboard_url=dashboard_url, source=opts.config_path,
                                     inventory=opts.settings.processing.inventory)
        self._learn_from_verdicts()
        self.alerts.start()
        self.api = ApiServer([self._install_alert_routes, self._install_search, self._install_feedback],
                             opts.host, opts.api_port, auth=self.authenticator, ssl_context=self.server_ssl,
                             registries=[driver_registry(self, self.probe, self.self_rules)])
        self.api.start()
        self.watcher = RulesWatcher(Path(opts.rules_path), self._reload_rules)
        self.watcher.start()
        self.retrain = RetrainScheduler(self.paths, self.rules).start()

    def _learn_from_verdicts(self) -> None:
        """Verdicts on alerts go to ``<data-dir>/ml/verdicts.sqlite``; the actionable model learns from them on
        Ray and gives every alert its ``actionable`` confidence (``monitoring.ml.actionable``)."""
        from logwarden.monitoring.ml.actionable import ActionableScorer
        from logwarden.monitoring.ml.registry import ModelRegistry
        from logwarden.monitoring.ml.verdicts import VerdictStore

        self.alerts.verdicts = VerdictStore.for_data_dir(self.paths.root)
        self.alerts.scorer = ActionableScorer(ModelRegistry.for_lake(self.paths.lake))
        self.verdict_trainer = VerdictTrainer(self.paths).start()

    def _start_processing(self) -> None:
        """The spool processor on Dask, and the lake's retention job."""
        opts = self.options
        workers = opts.adaptive_max or max(1, len(self.dask.client.nthreads()))
        processing = opts.settings.processing
        if opts.demo:  # the demo's threat list, for its threat_indicator_seen incident
            processing = demo_processing(processing, self.paths.root)
        self.forwarder = build_forwarder(opts.settings.storage.forward, self.paths.root)
        self.processor = SpoolProcessor(self.dask.client, self.paths, self._on_batch, max_in_flight=2 * workers,
                                        masking=processing.masking, inventory=processing.inventory,
                                        elasticsearch=opts.settings.storage.elasticsearch,
                                        on_quarantine=self._on_quarantine,
                                        reconnect=self.dask.reconnect if opts.dask_scheduler else None,
                                        deadletter_max_bytes=opts.settings.collector.max_deadletter_bytes,
                                        columns=self._sink_columns(self.rules), sink_many=self._on_batches)
        self.processor.start()
        self.retention = RetentionScheduler(self.paths.lake, opts.settings.storage.retention).start()
        self.compaction = CompactionScheduler(self.paths.lake, opts.settings.storage.compaction).start()

    def _sink_columns(self, rules: RulesFile, earlier: tuple[str, ...] | None = ()) -> tuple[str, ...] | None:
        """The columns of each batch that reach the driver: those the detectors read (plus ``earlier``,
        for the batches already in flight when rules change), or every column when records are forwarded."""
        if self.forwarder is not None or earlier is None:
            return None
        return detector_columns(rules, also=earlier)

    def _install_alert_routes(self, app) -> None:
        from logwarden.alerting.http import aiohttp_routes

        app.add_routes(aiohttp_routes(self.alerts))

    def _install_feedback(self, app) -> None:
        from logwarden.monitoring.ml import feedback_routes

        app.add_routes(feedback_routes(self.paths.root))

    def _install_search(self, app) -> None:
        install_search(app, self.paths.lake)

    def urls(self) -> dict[str, str]:
        """Where to look: collector endpoints, dashboards, the outbox."""
        opts = self.options
        tls = " (TLS)" if self.tls is not None else ""
        collector = {
            "collector (HTTP)": f"{self.scheme}://{opts.host}:{opts.http_port}/v1/logs",
            "collector (TCP NDJSON)": f"{opts.host}:{opts.tcp_port}{tls}",
            "collector (syslog TCP/UDP)": f"{opts.host}:{opts.collector_syslog_port}{' (TCP over TLS)' if tls else ''}",
            "collector (Fluent forward)": f"{opts.host}:{opts.collector_forward_port}{tls}",
            "collector (OTLP, Loki, ES bulk, HEC)": f"{self.scheme}://{opts.host}:{opts.http_port}",
            "collector metrics": f"{self.scheme}://{opts.host}:{opts.http_port}/metrics" if opts.collectors == 1 else
            ", ".join(f"{self.scheme}://{opts.host}:{opts.collector_admin_port + n}/metrics"
                      for n in range(opts.collectors)),
        } if opts.collector else {}
        return {
            **collector,
            "Dask dashboard": (self.dask.dashboard_link if self.dask else None) or "(none)",
            "Ray dashboard": (self.ray.dashboard_url if self.ray and self.ray.dashboard_url else
                              f"(cluster at {opts.ray_address})" if opts.ray_address else "(none)"),
            **({"Ray dashboard token": hint} if self.ray and (self.ray.dashboard_url or opts.ray_address)
               and (hint := ray_dashboard_hint()) else {}),
            "alerts": f"console, {self.paths.alerts / 'outbox.jsonl'} and the configured channels",
            "dashboard": (self.dashboard.url.rstrip("/") if self.dashboard else
                          f"{self.scheme}://{opts.host}:{opts.dashboard_port}") if opts.dashboard_port is not None
            else "(none)",
            "API (search, alerts)": f"{self.api.base_url}/v1/search, {self.api.base_url}/alerts" if self.api
            else "(none)",
            "processing metrics": f"{self.api.base_url}/metrics" if self.api else "(none)",
            "data": str(self.paths.root),
        }

    # the running system -------------------------------------------------------------------
    def _on_batch(self, output: BatchOutput) -> None:
        self._on_batches([output])

    def _on_batches(self, outputs: list[BatchOutput]) -> None:
        """Batches in spool order to the detectors (one call per actor for all of them), their alerts to
        alerting, their records to the SIEM sinks."""
        self.pool.process_many([(output.batch_id, output.records) for output in outputs],
                               on_anomalies=self.alerts.dispatch)  # each rule's alerts as soon as it answers
        for output in outputs:
            if self.forwarder is not None:  # last: a batch handed on again is seen once by the detectors
                self.forwarder.forward(output.batch_id, output.records)
            if output.num_records:
                newest = output.records["timestamp"][-1].value  # sorted by event time in processing
                with self._event_lock:
                    self._max_event_us = max(self._max_event_us or newest, newest)
                    self._last_batch_at = time.monotonic()

    def _on_quarantine(self, entry: QuarantinedBatch) -> None:
        """A spool batch quarantined (or, retried, gone through): a CRITICAL self-alert through the router."""
        if self.alerts is not None:
            self.alerts.dispatch(self.self_rules.quarantined(entry))

    def _check_self_rules(self) -> None:
        """The periodic self-rules, their alerts through the router (a failed check waits for the next tick)."""
        if self.alerts is None:
            return
        try:
            self.alerts.dispatch(self.self_rules.check(self.probe.state()))
        except Exception:  # noqa: BLE001 - checking the stack must not stop it
            log.exception("self-rules check failed")

    def metrics_urls(self) -> dict[str, str]:
        """The Prometheus endpoint of each process: the collectors' (each on its admin port when there are
        several: ``collector``, ``collector-c2`` ...) and the driver's (the API's)."""
        opts = self.options
        urls = {"driver": f"{self.api.base_url}/metrics"} if self.api else {}
        if opts.collector and opts.collectors == 1:
            urls["collector"] = f"{self.scheme}://{opts.host}:{opts.http_port}/metrics"
        elif opts.collector:
            for number in range(1, opts.collectors + 1):
                name = "collector" if number == 1 else f"collector-c{number}"
                urls[name] = f"{self.scheme}://{opts.host}:{opts.collector_admin_port + number - 1}/metrics"
        return urls

    def _flush_digests(self) -> None:
        """Send the e-mail digests waiting for their time before stopping; say so for any that cannot go."""
        try:
            sent, left = flush_digests(self.alerts, timeout=self.options.settings.alerting.flush_timeout)
        except Exception:  # noqa: BLE001 - stopping goes on; the digests stay queued in the alert store
            log.exception("sending the pending digests failed")
            return
        if sent:
            print(f"logwarden: sent {sent} pending digest(s) before stopping", flush=True)
        for digest in left:
            print(f"logwarden: {digest.describe()}", flush=True)

    def _reload_rules(self) -> None:
        try:
            rules = place_ml_rules(load_rules(self.options.rules_path), self.paths)
        except ConfigError as exc:
            log.error("rules file refused, the running rules go on: %s", exc)
            print(f"rules file refused, the running rules go on: {exc}", flush=True)
            return
        if self.processor is not None:  # before the detectors change: batches in flight have both rules' columns
            self.processor.columns = self._sink_columns(rules, earlier=self.processor.columns)
        changes = self.pool.reload(rules)
        self.rules = rules
        if self.retrain:
            self.retrain.rules = rules
        self.alerts.update_routing(rules.routing)
        log.info("rules reloaded: %s", {k: v for k, v in changes.items() if v})
        print(f"rules reloaded: {', '.join(f'{k} {v}' for k, v in changes.items() if v and k != 'kept')}",
              flush=True)

    def tick(self) -> None:
        """Once a second: check the self-rules, keep the collector up, and move event time on when sources
        are idle."""
        self._check_lost_cluster()
        self._check_self_rules()
        for collector in self.collectors:
            collector.ensure_running()
        with self._event_lock:
            idle = time.monotonic() - self._last_batch_at
            newest = self._max_event_us
        # Batches still waiting in the spool mean the sources are not idle, only processing is behind.
        if newest is not None and idle >= self.options.idle_advance_after and \
                not (self.processor and self.processor.pending()):
            self.alerts.dispatch(self.pool.advance(newest + int(idle * US)))

    def _check_lost_cluster(self) -> None:
        """Raise ``ClusterLost`` when the Ray head is gone, with the actors: the stack must start over."""
        reason = (self.ray.lost() if self.ray else None) or (self.pool.unavailable if self.pool else None)
        if reason:
            self.cluster_lost = reason
            if self.pool:
                self.pool.shutdown(cluster_lost=True)  # a batch call waiting for an actor gives up now
            raise ClusterLost(reason)

    def run(self, duration: float | None, stop: threading.Event) -> None:
        """Tick until ``stop`` is set or ``duration`` seconds have passed."""
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.wait(1.0):
            if deadline is not None and time.monotonic() >= deadline:
                return
            try:
                self.tick()
            except ClusterLost:
                raise
            except Exception:  # noqa: BLE001 - one failed tick (e.g. a full disk) must not end the stack
                log.exception("stack tick failed; the next one comes in a second")

    # stop ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop sources first, drain the spool, then the clusters; safe to call twice."""
        if self.demo:
            self.demo.stop()
        if self.dashboard:
            self.dashboard.stop()
        if self.retention:
            self.retention.stop()
        if self.compaction:
            self.compaction.stop()
        if self.retrain:
            self.retrain.stop()
        if self.verdict_trainer:
            self.verdict_trainer.stop()
        for collector in self.collectors:
            collector.stop()
        if self.watcher:
            self.watcher.stop()
        if self.processor:
            self.processor.stop(drain_timeout=0.0 if self.cluster_lost else 30.0)  # the rest waits in the spool
        if self.forwarder:
            self.forwarder.stop(drain_timeout=5.0)  # what is left stays in the forward buffers
        if self.pool:
            self.pool.shutdown(cluster_lost=self.cluster_lost is not None)
        if self.api:
            self.api.stop()
        if self.alerts:
            self._flush_digests()
            self.alerts.close()
        if self.ray:
            self.ray.close()
        if self.dask:
            self.dask.close()
        if self._owns_stack_file:
            (self.paths.run / STACK_FILE).unlink(missing_ok=True)
        self.demo = self.watcher = self.processor = self.pool = self.alerts = self.api = None
        self.forwarder = None
        self.collectors = []
        self.dashboard = self.retention = self.retrain = self.verdict_trainer = None
        self.ray = self.dask = None
