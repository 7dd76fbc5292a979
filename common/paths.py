"""The layout of a logwarden data directory (``--data-dir``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
    """Where each layer keeps its files below one root folder."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "DataDir":
        """The layout below ``root`` (made absolute, not created)."""
        return cls(Path(root).expanduser().resolve())

    @property
    def wal(self) -> Path:
        """Collector write-ahead segments: acknowledged records not yet in a spool batch."""
        return self.root / "wal"

    @property
    def spool(self) -> Path:
        """Parquet batches waiting for processing."""
        return self.root / "spool"

    @property
    def lake(self) -> Path:
        """The Parquet lake (records, aggregates, commit log, template store)."""
        return self.root / "lake"

    @property
    def deadletter(self) -> Path:
        """Rejected records with their original bytes and the reason."""
        return self.root / "deadletter"

    @property
    def alerts(self) -> Path:
        """Alert outbox and alerting state."""
        return self.root / "alerts"

    @property
    def monitoring(self) -> Path:
        """Detector checkpoints."""
        return self.root / "monitoring"

    @property
    def run(self) -> Path:
        """Runtime files of a running stack (pids, ports, logs)."""
        return self.root / "run"

    def create(self) -> "DataDir":
        """Create every folder of the layout."""
        for path in (self.wal, self.spool, self.lake, self.deadletter, self.alerts, self.monitoring, self.run):
            path.mkdir(parents=True, exist_ok=True)
        return self
