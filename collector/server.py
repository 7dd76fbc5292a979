"""Run the collector: HTTP, TCP NDJSON and syslog listeners over one ingestor, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.budget import MemoryBudget
from logwarden.collector.config import CollectorConfig
from logwarden.collector.forward import ForwardListener
from logwarden.collector.guard import ConnectionGuard, refusal_counter
from logwarden.collector.http_server import HttpApi
from logwarden.collector.ingest import Ingestor
from logwarden.collector.instances import adopt_orphans, hold_wal
from logwarden.collector.metrics import CollectorMetrics
from logwarden.collector.sources import SourcesConfig
from logwarden.collector.sources.local import FileSources
from logwarden.collector.streams import StreamListener, SyslogUdpProtocol
from logwarden.collector.validation import RecordValidator
from logwarden.common.auth import AuthConfig, Authenticator, is_loopback
from logwarden.common.paths import DataDir
from logwarden.common.tls import server_context
from logwarden.storage import Lake

log = logging.getLogger(__name__)
DECODE_THREADS = 2


class CollectorServer:
    """The collector process: listeners, ingestor, graceful stop.

    ``auth`` holds the tokens of the ``auth:`` section; the collector's own ``config.tokens`` are added
    to them as ingest tokens."""

    def __init__(self, paths: DataDir, config: CollectorConfig, auth: AuthConfig | None = None,
                 sources: SourcesConfig | None = None) -> None:
        self.paths = paths.create()
        self._wal_lock = hold_wal(paths)  # WalTaken when another collector runs on this write-ahead log
        adopt_orphans(paths)  # segments of a collector instance that no longer runs (first collector only)
        self.config = config
        self.ssl_context = server_context(config.tls)
        validator = RecordValidator(skew=config.skew, limits=config.limits)
        decoder = BatchDecoder(
            validator, config.max_line_bytes, config.max_body_bytes, columnar=config.columnar
        )
        self.ingestor = Ingestor(
            paths,
            validator,
            config.batch,
            CollectorMetrics(),
            Lake(paths.lake).is_committed,
            MemoryBudget(config.memory_budget_bytes),
            decoder,
            min_free_disk_bytes=config.min_free_disk_bytes,
            max_deadletter_bytes=config.max_deadletter_bytes,
        )
        self.auth = Authenticator.from_config(
            auth, config.tokens, default_tenant=config.default_tenant, stream_tenant=config.stream_tenant,
            stream_networks=config.stream_networks,
        )
        self.executor = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="decode")
        # log files of the ``sources:`` section; built before the write-ahead log recovers (see sources/local.py);
        # read by the first collector only, so that several collectors on one data dir do not all tail them
        if paths.instance is not None and sources:
            log.info("collector instance %s leaves the sources: section to the first collector", paths.instance)
            sources = None
        self.sources = FileSources.for_collector(sources, self.ingestor, paths, config.default_tenant,
                                                 config.spool_high_water)
        closed = refusal_counter(self.ingestor.metrics.registry)
        self.guard = ConnectionGuard(config.header_timeout, config.max_connections_per_client,
                                     on_refused=lambda reason: closed.labels(reason).inc())
        self._runner: web.AppRunner | None = None
        self._admin: web.AppRunner | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._listeners: list[StreamListener] = []
        self._udp: tuple[asyncio.DatagramTransport, SyslogUdpProtocol] | None = None
        self.http_port = config.http_port
        self.tcp_port = config.tcp_port
        self.syslog_port = config.syslog_port
        self.forward_port = config.forward_port
        self.admin_port: int | None = None
        self._forward: ForwardListener | None = None

    async def start(self) -> None:
        """Recover, then listen."""
        await self.ingestor.start()
        host = self.config.host
        if self.auth.open_to_loopback_only and not is_loopback(host) and host not in ("localhost",):
            log.warning("no tokens configured: HTTP clients other than loopback will be refused (403)")
        api = HttpApi(self.ingestor, self.config, self.auth, self.executor)
        self._runner = web.AppRunner(self.guard.install(api.app()), access_log=None, handle_signals=False,
                                     auto_decompress=False)
        await self._runner.setup()
        self.guard.attach(self._runner.server)  # header timeout, per-client connection limit
        site = web.TCPSite(self._runner, host, self.config.http_port, backlog=1024, ssl_context=self.ssl_context,
                           reuse_port=self.config.reuse_port or None)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]
        if self.config.admin_port is not None:
            self.admin_port = await self._start_admin(api, host)
        if self.config.tcp_port is not None:
            self.tcp_port = await self._listen("ndjson-tcp", self.config.tcp_port)
        if self.config.syslog_port is not None:
            try:
                await self._start_syslog(host)
            except OSError as exc:
                if self.config.syslog_port_required:
                    raise
                log.error(
                    "syslog disabled: cannot listen on the default port %d: %s (set syslog_port to choose "
                    "another)",
                    self.config.syslog_port,
                    exc,
                )
                self.syslog_port = None
        if self.config.forward_port is not None:
            await self._start_forward(host)
        if self.sources is not None:
            await self.sources.start()
        scheme = "https" if self.ssl_context else "http"
        log.info(
            "collector listening: %s://%s:%d/v1/logs, tcp %s, syslog %s, forward %s",
            scheme,
            host,
            self.http_port,
            self.tcp_port,
            self.syslog_port,
            self.forward_port,
        )

    async def _start_admin(self, api: HttpApi, host: str) -> int:
        """This collector's own /health, /ready and /metrics port; the port bound."""
        self._admin = web.AppRunner(api.admin_app(), access_log=None, handle_signals=False)
        await self._admin.setup()
        site = web.TCPSite(self._admin, host, self.config.admin_port, ssl_context=self.ssl_context)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def _start_forward(self, host: str) -> None:
        """Fluent forward; a default port that is taken is skipped with a message (as syslog's)."""
        listener = ForwardListener(self.ingestor, self.auth, self.executor, self.config.idle_timeout,
                                   self.config.forward)
        try:
            server = await listener.start(host, self.config.forward_port, self.ssl_context, self.config.reuse_port)
        except OSError as exc:
            if self.config.forward_port_required:
                raise
            log.error("forward disabled: cannot listen on the default port %d: %s (set forward_port to choose "
                      "another)", self.config.forward_port, exc)
            self.forward_port = None
            return
        self._forward = listener
        self._servers.append(server)
        self.forward_port = server.sockets[0].getsockname()[1]

    async def _start_syslog(self, host: str) -> None:
        port = await self._listen("syslog-tcp", self.config.syslog_port)
        if self.config.udp_syslog:
            protocol = SyslogUdpProtocol(self.ingestor, self.auth)
            try:
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: protocol, local_addr=(host, port), reuse_port=self.config.reuse_port or None
                )
            except OSError:
                server = self._servers.pop()
                self._listeners.pop()
                server.close()
                raise
            self._udp = (transport, protocol)
        self.syslog_port = port

    async def _listen(self, protocol: str, port: int) -> int:
        listener = StreamListener(protocol, self.ingestor, self.auth, self.executor, self.config.idle_timeout)
        server = await listener.start(self.config.host, port, self.ssl_context, self.config.reuse_port)
        self._listeners.append(listener)
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, finish what was received, then flush the open batch into the spool."""
        for server in self._servers:
            server.close()
        if self._udp is not None:
            self._udp[0].close()
            await self._udp[1].drain()
        for listener in self._listeners:
            await listener.close_connections()
        if self._forward is not None:
            await self._forward.close_connections()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._admin is not None:
            await self._admin.cleanup()
        if self.sources is not None:
            await self.sources.stop()
        await self.ingestor.stop()
        self.executor.shutdown(wait=True)
        self._wal_lock.close()  # the write-ahead log is flushed: another collector may take the folder
        log.info("collector stopped")

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        await self.stop()


def run_collector(paths: DataDir, config: CollectorConfig, auth: AuthConfig | None = None,
                  sources: SourcesConfig | None = None) -> None:
    """Block running the collector until it is told to stop."""
    asyncio.run(CollectorServer(paths, config, auth, sources).serve())
