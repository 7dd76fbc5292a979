"""Atomic, durable file writes: temporary name, fsync, rename, fsync of the folder."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(table: pa.Table, path: Path, compression_level: int | None = None) -> None:
    """Write ``table`` (zstd) under a hidden temporary name, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=compression_level)
    _fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write ``data`` under a hidden temporary name, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
