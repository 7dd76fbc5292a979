"""Stream input: newline-delimited JSON over TCP, syslog over TCP (RFC 6587) and UDP.

TCP has no acknowledgement, so durability shows as flow control: a connection's next chunk
is read only once the previous one is durable, and only when the in-memory budget has room,
so a fast sender is slowed down by TCP rather than buffered. Connections idle longer than the
idle timeout are closed. UDP cannot be slowed down: datagrams arriving while the budget is
spent are dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from concurrent.futures import Executor
from datetime import datetime, timezone

from logwarden.common.auth import Authenticator
from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import KEPT_BYTES_OF_LONG_LINE, RawRecord
from logwarden.collector.ingest import Ingestor
from logwarden.collector.syslog import Frame, SyslogFramer, syslog_line, syslog_record
from logwarden.collector.validation import Rejection
from logwarden.collector.wal import WalFailure

log = logging.getLogger(__name__)
READ_SIZE = 256 * 1024
MEMORY_PER_CHUNK_BYTE = 3  # the chunk, its decoded table, the write-ahead copy
UDP_FLUSH_SECONDS = 0.05
UDP_MAX_PENDING = 2000
MAX_UDP_DATAGRAM = 65535


class NdjsonSession:
    """The framing state of one NDJSON connection."""

    def __init__(self, decoder: BatchDecoder) -> None:
        self.decoder = decoder
        self.max_line = decoder.max_line_bytes
        self._pending = b""
        self._index = 0
        self._discarding = False

    def feed(self, chunk: bytes) -> DecodedBatch | None:
        """The records completed by ``chunk``."""
        if self._discarding:
            newline = chunk.find(b"\n")
            if newline < 0:
                return None
            chunk, self._discarding = chunk[newline + 1 :], False
        complete, newline, self._pending = (self._pending + chunk).rpartition(b"\n")
        batch = self._decode(complete + newline) if newline else None
        if len(self._pending) > self.max_line:
            too_long = RawRecord(self._index, self._pending[:KEPT_BYTES_OF_LONG_LINE])
            self._index += 1
            self._pending, self._discarding = b"", True
            rejection = Rejection(
                "",
                f"line exceeds the {self.max_line}-byte limit "
                f"(first {KEPT_BYTES_OF_LONG_LINE} bytes kept)",
                "malformed",
            )
            if batch is None:
                batch = self.decoder.records([])
            batch.rejected.append((too_long, rejection))
        return batch

    def finish(self) -> DecodedBatch | None:
        """At end of stream: a last line without its newline."""
        rest, self._pending = self._pending, b""
        return self._decode(rest) if rest.strip() and not self._discarding else None

    def _decode(self, data: bytes) -> DecodedBatch:
        batch = self.decoder.ndjson(data, offset=self._index)
        self._index += batch.accepted + len(batch.rejected)
        return batch


class SyslogSession:
    """The framing state of one syslog TCP connection."""

    def __init__(self, decoder: BatchDecoder) -> None:
        self.decoder = decoder
        self.framer = SyslogFramer(decoder.max_line_bytes)
        self._index = 0

    def feed(self, chunk: bytes) -> DecodedBatch | None:
        """The records completed by ``chunk``."""
        return self.decode_frames(self.framer.feed(chunk))

    def finish(self) -> DecodedBatch | None:
        """At end of stream: a last message without its newline."""
        return self.decode_frames(self.framer.finish())

    def decode_frames(self, frames: list[Frame]) -> DecodedBatch | None:
        """Map framed messages to records and check them."""
        if not frames:
            return None
        received = datetime.now(timezone.utc)
        records = []
        for frame in frames:
            if frame.error is not None:
                records.append(RawRecord(self._index, frame.data, error=frame.error))
            else:
                value, error = syslog_record(frame.data, received)
                records.append(
                    RawRecord(
                        self._index,
                        frame.data,
                        value,
                        error,
                        syslog_line(value) if value is not None else None,
                    )
                )
            self._index += 1
        return self.decoder.mapped(records)


class StreamListener:
    """A TCP listener feeding one kind of session into the ingestor."""

    def __init__(
        self, protocol: str, ingestor: Ingestor, auth: Authenticator, executor: Executor, idle_timeout: float
    ) -> None:
        self.protocol = protocol
        self.ingestor = ingestor
        self.auth = auth
        self.executor = executor
        self.idle_timeout = idle_timeout
        self.metrics = ingestor.metrics
        self._handlers: set[asyncio.Task] = set()
        self._reading: set[asyncio.Task] = set()  # handlers waiting for bytes (safe to cancel)
        self._closing = False

    def session(self) -> NdjsonSession | SyslogSession:
        """A fresh framing state for one connection."""
        if self.protocol == "syslog-tcp":
            return SyslogSession(self.ingestor.decoder)
        return NdjsonSession(self.ingestor.decoder)

    async def start(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None, reuse_port: bool = False
    ) -> asyncio.base_events.Server:
        """Listen on ``host:port`` (``reuse_port``: beside other collectors on the same port)."""
        return await asyncio.start_server(
            self.handle, host, port, ssl=ssl_context, limit=READ_SIZE, backlog=1024, reuse_port=reuse_port or None
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until the peer closes, idles out, or the collector stops."""
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else None
        if not self.auth.stream_allowed(address):
            log.warning("%s connection from %s refused: not in stream_networks", self.protocol, address)
            writer.close()
            return
        task = asyncio.current_task()
        self._handlers.add(task)
        self.metrics.connections.labels(self.protocol).inc()
        source = f"{self.protocol}:{address}"
        session = self.session()
        loop = asyncio.get_running_loop()
        budget = self.ingestor.budget
        refused = False
        try:
            while not self._closing:
                self._reading.add(task)
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_SIZE), self.idle_timeout)
                finally:
                    self._reading.discard(task)
                if not chunk:
                    break
                self.metrics.bytes.labels(self.protocol).inc(len(chunk))
                # Nothing more is read from this peer until the chunk fits the budget (the kernel's and
                # the stream's buffers then fill up and TCP flow control slows the sender down).
                size = MEMORY_PER_CHUNK_BYTE * len(chunk)
                if budget.exhausted:
                    self.metrics.throttled.labels(self.protocol).inc()
                await budget.acquire(size)
                try:
                    batch = await loop.run_in_executor(self.executor, session.feed, chunk)
                    if batch is not None:
                        await self._submit(batch, source)
                finally:
                    budget.release(size)
            batch = session.finish()
            if batch is not None:
                await self._submit(batch, source)
        except asyncio.TimeoutError:
            log.info(
                "%s connection from %s idle for %.0fs: closed", self.protocol, address, self.idle_timeout
            )
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("%s connection from %s ended: %s", self.protocol, address, exc)
        except WalFailure as exc:
            # Reset, not a clean close: to a stream client, a clean close means "everything you sent is
            # durable"; a reset tells it that (part of) what it sent was not kept.
            log.error("%s connection from %s reset: %s", self.protocol, address, exc)
            refused = True
        except asyncio.CancelledError:
            log.info("%s connection from %s closed: the collector is stopping", self.protocol, address)
        finally:
            self.metrics.connections.labels(self.protocol).dec()
            self._handlers.discard(task)
            if refused:
                _reset(writer)
            else:
                writer.close()

    async def _submit(self, batch: DecodedBatch, source: str) -> None:
        result = await self.ingestor.submit(batch, self.protocol, source, self.auth.stream_tenant)
        for error in result.errors[:10]:
            log.info(
                "rejected %s record %s from %s: %s %s",
                self.protocol,
                error["index"],
                source,
                error["field"],
                error["error"],
            )

    async def close_connections(self) -> None:
        """Stop serving open connections: those waiting for bytes at once, the others once the chunk
        they are processing is durable."""
        self._closing = True
        for task in list(self._reading):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)


class SyslogUdpProtocol(asyncio.DatagramProtocol):
    """One syslog message per datagram, checked and ingested in small groups."""

    def __init__(self, ingestor: Ingestor, auth: Authenticator) -> None:
        self.ingestor = ingestor
        self.auth = auth
        self.metrics = ingestor.metrics
        self.session = SyslogSession(ingestor.decoder)
        self._pending: dict[str, list[Frame]] = {}
        self._count = 0
        self._flusher: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        """Queue one datagram (dropped when the sender is not allowed or the budget is spent)."""
        address = addr[0] if addr else None
        self.metrics.bytes.labels("syslog-udp").inc(len(data))
        if not self.auth.stream_allowed(address):
            self.metrics.rejected.labels("syslog-udp", "forbidden").inc()
            return
        if self._count >= UDP_MAX_PENDING or not self.ingestor.budget.try_acquire(len(data)):
            self.metrics.rejected.labels("syslog-udp", "overload").inc()
            self.metrics.throttled.labels("syslog-udp").inc()
            return
        self._pending.setdefault(address, []).append(Frame(data))
        self._count += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(UDP_FLUSH_SECONDS)
        pending, self._pending, self._count = self._pending, {}, 0
        for address, frames in pending.items():
            task = asyncio.get_running_loop().create_task(self._ingest(address, frames))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ingest(self, address: str, frames: list[Frame]) -> None:
        size = sum(len(frame.data) for frame in frames)
        try:
            batch = self.session.decode_frames(frames)
            if batch is not None:
                await self.ingestor.submit(
                    batch, "syslog-udp", f"syslog-udp:{address}", self.auth.stream_tenant
                )
        except Exception:  # noqa: BLE001 - one bad group must not stop the listener
            log.exception("syslog-udp: ingesting %d datagrams from %s failed", len(frames), address)
        finally:
            self.ingestor.budget.release(size)

    async def drain(self) -> None:
        """Ingest what is queued (on stop)."""
        if self._flusher is not None and not self._flusher.done():
            await self._flusher
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), which the peer sees as an error, not as an orderly end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
