"""A small tmpfs to run out of space on, for the disk-full tests (needs root, or skips saying why)."""
from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def small_disk(path: Path, size: str = "20m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``path`` for the block; skips the test when mounting is impossible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("the disk-full tests mount a small tmpfs (mount -t tmpfs), which needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the disk-full tests: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def free_bytes(path: Path) -> int:
    """Bytes available on the file system of ``path``."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(path: Path, leave: int = 0) -> Path:
    """Fill the file system of ``path`` with the file ``path`` until it is full, then give ``leave``
    bytes (rounded to pages) back. Returns ``path``; delete it to free the space."""
    chunk = memoryview(b"\0" * (1 << 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, chunk[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    if leave:
        os.truncate(path, max(0, path.stat().st_size - leave))
    return path
