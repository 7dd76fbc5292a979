"""The spool: Parquet (zstd) batches of accepted records, each under a unique batch id."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pyarrow as pa

from logwarden.common.atomic import write_parquet_atomic
from logwarden.common.records import record_schema

SPOOL_SUFFIX = ".parquet"


class Spool:
    """The folder of batches between the collector and processing."""

    def __init__(self, directory: Path, schema: pa.Schema | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema or record_schema()

    def path_of(self, batch_id: str) -> Path:
        """The file of batch ``batch_id``."""
        return self.directory / f"{batch_id}{SPOOL_SUFFIX}"

    def has(self, batch_id: str) -> bool:
        """Whether batch ``batch_id`` is in the spool."""
        return self.path_of(batch_id).exists()

    def write(self, batch_id: str, rows: Iterable[dict]) -> Path:
        """Write a batch of normalized rows atomically; returns its path."""
        table = pa.Table.from_pylist(list(rows), schema=self.schema)
        path = self.path_of(batch_id)
        write_parquet_atomic(table, path)
        return path

    def batches(self) -> list[Path]:
        """The batches waiting, oldest first (batch ids sort by creation time)."""
        return sorted(self.directory.glob(f"*{SPOOL_SUFFIX}"))

    def depth(self) -> int:
        """How many batches are waiting."""
        return sum(1 for _ in self.directory.glob(f"*{SPOOL_SUFFIX}"))
