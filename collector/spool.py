"""The spool: Parquet (zstd) batches of accepted records, each under a unique batch id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from logwarden.common.atomic import fsync_path
from logwarden.common.records import load_log_schema, record_schema

SPOOL_SUFFIX = ".parquet"
SHORT_STRING = 128  # declared strings at most this long are taken for identifiers (few distinct values)


def dictionary_columns(log_schema: dict[str, Any] | None = None) -> list[str]:
    """Columns worth dictionary encoding: enums, short declared strings, tenant and source.

    Dictionary-encoding high-cardinality columns (messages, ids) costs CPU for nothing: Parquet
    gives up on the dictionary once it grows, after building it.
    """
    log_schema = log_schema or load_log_schema()
    names = [
        name
        for name, spec in log_schema.get("properties", {}).items()
        if spec.get("type") == "string"
        and spec.get("format") is None
        and ("enum" in spec or spec.get("maxLength", SHORT_STRING + 1) <= SHORT_STRING)
    ]
    return names + ["tenant", "source"]


class Spool:
    """The folder of batches between the collector and processing."""

    def __init__(self, directory: Path, schema: pa.Schema | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema or record_schema()
        self._dictionary = [name for name in dictionary_columns() if name in self.schema.names]

    def path_of(self, batch_id: str) -> Path:
        """The file of batch ``batch_id``."""
        return self.directory / f"{batch_id}{SPOOL_SUFFIX}"

    def has(self, batch_id: str) -> bool:
        """Whether batch ``batch_id`` is in the spool."""
        return self.path_of(batch_id).exists()

    def write(self, batch_id: str, rows: Iterable[dict]) -> Path:
        """Write a batch of normalized rows atomically; returns its path."""
        return self.write_table(batch_id, pa.Table.from_pylist(list(rows), schema=self.schema))

    def write_table(self, batch_id: str, table: pa.Table) -> Path:
        """Write a batch given as a table of the record layout (zstd Parquet) atomically: under a hidden
        temporary name, fsync'ed, then renamed into place; returns its path."""
        table = table.select(self.schema.names).cast(self.schema)
        path = self.path_of(batch_id)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as handle:
                pq.write_table(table, handle, compression="zstd", use_dictionary=self._dictionary)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk: give the partial file's space back
            raise
        os.replace(tmp, path)
        fsync_path(path.parent)
        return path

    def batches(self) -> list[Path]:
        """The batches waiting, oldest first (batch ids sort by creation time)."""
        return sorted(self.directory.glob(f"*{SPOOL_SUFFIX}"))

    def depth(self) -> int:
        """How many batches are waiting."""
        with os.scandir(self.directory) as entries:
            return sum(
                1 for entry in entries if entry.name.endswith(SPOOL_SUFFIX) and not entry.name.startswith(".")
            )
