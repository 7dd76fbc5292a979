"""The layout of a logwarden data directory (``--data-dir``)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: What a collector instance may be called (it names a folder).
INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True)
class DataDir:
    """Where each layer keeps its files below one root folder.

    ``instance`` names one of several collectors sharing the data dir: each has a write-ahead log of its
    own (``wal/<instance>``), which only it writes and recovers; everything else is shared."""

    root: Path
    instance: str | None = None

    @classmethod
    def at(cls, root: str | Path, instance: str | None = None) -> "DataDir":
        """The layout below ``root`` (made absolute, not created); ValueError for a bad instance name."""
        if instance is not None and not INSTANCE_NAME.fullmatch(instance):
            raise ValueError(f"collector instance name {instance!r}: use letters, digits, '.', '_' or '-' "
                             "(at most 63, starting with a letter or digit)")
        return cls(Path(root).expanduser().resolve(), instance)

    @property
    def wal(self) -> Path:
        """Collector write-ahead segments: acknowledged records not yet in a spool batch (of this
        collector instance, when there are several)."""
        return self.root / "wal" / self.instance if self.instance else self.root / "wal"

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
