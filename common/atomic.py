"""Atomic, durable file writes: temporary name, fsync, rename, fsync of the folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Arrow is imported where Parquet is written, so that plain writes stay light (the agent)
    import pyarrow as pa


def fsync_path(path: Path) -> None:
    """fsync a file, or a folder (which makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(table: pa.Table, path: Path, compression_level: int | None = None,
                         use_dictionary: bool | list[str] = True) -> None:
    """Write ``table`` (zstd) under a hidden temporary name, fsync it, then rename it into place."""
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=compression_level,
                   use_dictionary=use_dictionary)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write ``data`` under a hidden temporary name, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)
