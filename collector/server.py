"""Run the collector: HTTP and TCP listeners over one ingestor, until SIGTERM or SIGINT."""
from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from collector.config import CollectorConfig
from collector.http_server import HttpApi
from collector.ingest import Ingestor
from collector.metrics import CollectorMetrics
from collector.tcp_server import NdjsonTcpServer
from collector.validation import RecordValidator
from logwarden.common.paths import DataDir
from storage import Lake

log = logging.getLogger(__name__)


class CollectorServer:
    """The collector process: listeners, ingestor, graceful stop."""

    def __init__(self, paths: DataDir, config: CollectorConfig) -> None:
        self.paths = paths.create()
        self.config = config
        lake = Lake(paths.lake)
        self.ingestor = Ingestor(paths, RecordValidator(skew=config.skew), config.batch, CollectorMetrics(),
                                 lake.is_committed)
        self._runner: web.AppRunner | None = None
        self._tcp = None
        self.http_port = config.http_port
        self.tcp_port = config.tcp_port

    async def start(self) -> None:
        """Recover, then listen."""
        await self.ingestor.start()
        self._runner = web.AppRunner(HttpApi(self.ingestor, self.config).app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.http_port, backlog=1024)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]
        self._tcp = await NdjsonTcpServer(self.ingestor, self.config).start()
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        log.info("collector listening: http://%s:%d/v1/logs, tcp %s:%d", self.config.host, self.http_port,
                 self.config.host, self.tcp_port)

    async def stop(self) -> None:
        """Stop listening, then flush the open batch into the spool."""
        if self._tcp is not None:
            self._tcp.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.ingestor.stop()
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


def run_collector(paths: DataDir, config: CollectorConfig) -> None:
    """Block running the collector until it is told to stop."""
    asyncio.run(CollectorServer(paths, config).serve())
