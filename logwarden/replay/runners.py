"""Where chunks are parsed: on the Dask workers, or in this process."""
from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Iterator, Protocol

from logwarden.processing.chunk_records import ChunkOptions, ParsedChunk, parse_chunk
from logwarden.processing.chunks import Chunk


class ChunkRunner(Protocol):
    """Parses chunks, returning their outcomes in the order the chunks came."""

    where: str  # for the summary: where the chunks are parsed

    def run(self, chunks: Iterable[tuple[Chunk, ChunkOptions]]) -> Iterator[ParsedChunk]:
        """The parsed chunks, in order."""


class InlineRunner:
    """Parses each chunk in this process, one after the other."""

    where = "this process"

    def run(self, chunks: Iterable[tuple[Chunk, ChunkOptions]]) -> Iterator[ParsedChunk]:
        """The parsed chunks, in order."""
        for chunk, options in chunks:
            yield parse_chunk(chunk, options)


class DaskRunner:
    """Parses chunks as Dask tasks, a few per worker in flight; results come back in chunk order."""

    def __init__(self, client: Any, per_worker: int = 2) -> None:
        self.client = client
        self.window = max(1, len(client.nthreads())) * per_worker + 1
        self.where = f"Dask workers of {client.scheduler.address}"

    def run(self, chunks: Iterable[tuple[Chunk, ChunkOptions]]) -> Iterator[ParsedChunk]:
        """The parsed chunks, in order."""
        in_flight: deque = deque()
        for chunk, options in chunks:
            in_flight.append(self._submit(chunk, options))
            if len(in_flight) >= self.window:
                yield self._take(in_flight)
        while in_flight:
            yield self._take(in_flight)

    def _submit(self, chunk: Chunk, options: ChunkOptions) -> Any:
        # the chunk's bytes travel to a worker directly, not inside the task graph
        data = self.client.scatter(chunk, hash=False)
        return self.client.submit(parse_chunk, data, options, pure=False)

    @staticmethod
    def _take(in_flight: deque) -> ParsedChunk:
        future = in_flight.popleft()
        try:
            return future.result()
        finally:
            future.release()
