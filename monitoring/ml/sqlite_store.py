"""A small SQLite database of the data directory's ``ml/`` folder, opened for one short connection per call
(safe across processes, and picklable: Ray tasks and Dask workers can take the store itself)."""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class SqliteStore:
    """Subclasses set ``schema`` (run at every open: ``CREATE … IF NOT EXISTS``) and ``file_name``."""

    schema = ""
    file_name = ""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(self.schema)

    @classmethod
    def path_in(cls, data_dir: str | Path) -> Path:
        """The store's file in ``<data-dir>/ml/``."""
        return Path(data_dir).expanduser().resolve() / "ml" / cls.file_name

    @classmethod
    def for_data_dir(cls, data_dir: str | Path):
        """The store of ``<data-dir>/ml/<file_name>``."""
        return cls(cls.path_in(data_dir))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            with con:
                yield con
        finally:
            con.close()
