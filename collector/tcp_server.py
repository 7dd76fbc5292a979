"""Newline-delimited JSON over TCP. Reading waits for each chunk to be durable (natural backpressure)."""
from __future__ import annotations

import asyncio
import logging

from collector.config import CollectorConfig
from collector.decoding import RawRecord, split_ndjson
from collector.ingest import Ingestor

log = logging.getLogger(__name__)
READ_SIZE = 256 * 1024


class NdjsonTcpServer:
    """One asyncio server; each connection's records are ingested chunk by chunk."""

    def __init__(self, ingestor: Ingestor, config: CollectorConfig) -> None:
        self.ingestor = ingestor
        self.config = config

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read lines until the peer closes; a partial last line is ingested at EOF."""
        peer = writer.get_extra_info("peername")
        source = f"tcp:{peer[0]}" if peer else "tcp"
        tenant = self.config.default_tenant
        pending = b""
        index = 0
        discarding = False  # inside an over-long line: skip to its end
        try:
            while True:
                chunk = await reader.read(READ_SIZE)
                if not chunk:
                    break
                self.ingestor.metrics.bytes.labels("tcp").inc(len(chunk))
                if discarding:
                    newline = chunk.find(b"\n")
                    if newline < 0:
                        continue
                    chunk, discarding = chunk[newline + 1:], False
                complete, _, pending = (pending + chunk).rpartition(b"\n")
                if len(pending) > self.config.max_line_bytes:
                    index = await self._ingest([RawRecord(0, pending[:1024], error=(
                        f"line exceeds the {self.config.max_line_bytes}-byte limit"))], source, tenant, index)
                    pending, discarding = b"", True
                if complete:
                    index = await self._ingest(list(split_ndjson(complete, self.config.max_line_bytes)),
                                               source, tenant, index)
            if pending.strip():
                await self._ingest(list(split_ndjson(pending, self.config.max_line_bytes)), source, tenant, index)
        except ConnectionError as exc:
            log.info("tcp connection from %s ended: %s", source, exc)
        finally:
            writer.close()

    async def _ingest(self, records: list[RawRecord], source: str, tenant: str, offset: int) -> int:
        for record in records:
            record.index += offset
        result = await self.ingestor.ingest(records, "tcp", source, tenant)
        for error in result.errors:
            log.warning("rejected tcp record %s from %s: %s %s", error["index"], source, error["field"], error["error"])
        return offset + len(records)

    async def start(self) -> asyncio.base_events.Server:
        """Listen on the configured host and port."""
        return await asyncio.start_server(self.handle, self.config.host, self.config.tcp_port)
