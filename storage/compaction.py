"""Background compaction of small files.

Every batch writes one file into each partition it touches, so a partition of a busy service
gains a file a second. Every ``interval``, a partition (records: ``logs/date=D/service=S``;
aggregates: ``aggregates/date=D``) with at least ``min_files`` files that have not changed for
``settle`` is merged: those files become one ``compacted-*.parquet``, sorted by event time. The
merge goes through the folder's journal (``storage.journal``): readers skip the replaced files as
soon as the merged one has landed, and the replaced files are deleted after ``grace``, so a query
that listed them just before still finds them. Rows keep their ``batch_id``, so a batch committed
again later (a retry, a backfill) replaces its rows inside merged files too (see ``storage.lake``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from logwarden.common.atomic import fsync_path
from logwarden.common.durations import format_duration
from logwarden.common.periodic import PeriodicJob
from logwarden.common.yamlconf import ConfigError, check_bool, check_duration, check_int, check_mapping
from logwarden.storage import journal
from logwarden.storage.lake import COMPACTED_PREFIX, Lake, parquet_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactionPolicy:
    """When small files are merged (``storage.compaction`` in the config)."""

    enabled: bool = True
    min_files: int = 16
    settle_seconds: float = 600.0
    grace_seconds: float = 300.0
    interval_seconds: float = 60.0
    compression_level: int = 3
    row_group_rows: int = 256 * 1024

    KEYS = ("enabled", "min_files", "settle", "grace", "interval", "compression_level")

    def __post_init__(self) -> None:
        if self.min_files < 2:
            raise ValueError("min_files must be at least 2")
        if self.settle_seconds < 0 or self.grace_seconds < 0 or self.interval_seconds <= 0:
            raise ValueError("settle and grace must not be negative, interval must be longer than 0s")
        if not 1 <= self.compression_level <= 22:
            raise ValueError("compression_level must be between 1 and 22 (zstd)")

    @classmethod
    def from_dict(cls, section: Any) -> "CompactionPolicy":
        """The policy from a ``storage.compaction`` mapping (None: the defaults); raises ConfigError with the
        key path (``storage.compaction.min_files``) on an unknown key or a bad value."""
        where = ("storage", "compaction")
        section = check_mapping(section, where, cls.KEYS)
        kwargs: dict[str, Any] = {}
        if "enabled" in section:
            kwargs["enabled"] = check_bool(section["enabled"], (*where, "enabled"))
        if "min_files" in section:
            kwargs["min_files"] = check_int(section["min_files"], (*where, "min_files"), minimum=2)
        if "compression_level" in section:
            kwargs["compression_level"] = check_int(section["compression_level"], (*where, "compression_level"),
                                                    1, 22)
        for key in ("settle", "grace", "interval"):
            if key in section:
                kwargs[f"{key}_seconds"] = check_duration(section[key], (*where, key), positive=key == "interval")
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise ConfigError.at(where, str(exc)) from None


def merged_name(sources: list[Path]) -> str:
    """The name of the file ``sources`` merge into (the same for the same sources)."""
    digest = hashlib.sha256("\n".join(sorted(p.name for p in sources)).encode()).hexdigest()[:20]
    return f"{COMPACTED_PREFIX}{digest}.parquet"


def merge_files(folder: Path, sources: list[Path], compression_level: int, row_group_rows: int) -> Path:
    """Merge ``sources`` into one file sorted by event time, through the journal; the sources stay on disk
    (replaced) until :func:`storage.journal.finish`. Returns the merged file."""
    merged = pa.concat_tables([pq.read_table(p) for p in sources], promote_options="permissive")
    order = "timestamp" if "timestamp" in merged.column_names else "bucket"
    if order in merged.column_names:
        merged = merged.sort_by([(order, "ascending")])
    target = folder / merged_name(sources)
    journal.write_journal(folder, target.name, [p.name for p in sources])
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(merged, tmp, compression="zstd", compression_level=compression_level,
                   row_group_size=row_group_rows)
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_path(folder)
    return target


def _settled_small_files(folder: Path, policy: CompactionPolicy, now: float) -> list[Path]:
    files = []
    for path in parquet_files(folder):
        if path.name.startswith(COMPACTED_PREFIX):
            continue
        try:
            if now - path.stat().st_mtime >= policy.settle_seconds:
                files.append(path)
        except FileNotFoundError:
            continue
    return files


def _partition_folders(lake: Lake) -> list[Path]:
    return [folder for _, _, folder in lake.service_folders()] + \
        [folder for _, folder in lake.date_folders(lake.aggregates)]


def compact_small_files(lake: Lake, policy: CompactionPolicy, now: float | None = None) -> list[Path]:
    """One pass over the lake: finish compactions whose grace is over, merge where enough small files
    have settled. Returns the merged files written. Skipped (returns []) while another job holds the lake."""
    now = time.time() if now is None else now
    written: list[Path] = []
    with journal.lake_lock(lake.root, wait=False) as acquired:
        if not acquired:
            return written
        for folder in _partition_folders(lake):
            pending = journal.read_journal(folder) if (folder / journal.JOURNAL).exists() else None
            if pending is not None or (folder / journal.JOURNAL).exists():
                landed = pending is not None and (folder / pending["target"]).exists()
                if landed and now - pending.get("started_at", 0.0) < policy.grace_seconds:
                    continue  # replaced files stay a while for queries that listed them
                journal.settle(folder)
            small = _settled_small_files(folder, policy, now)
            if len(small) >= policy.min_files:
                target = merge_files(folder, small, policy.compression_level, policy.row_group_rows)
                written.append(target)
                log.info("compacted %d small files of %s into %s", len(small), folder.relative_to(lake.root),
                         target.name)
    return written


class CompactionScheduler(PeriodicJob):
    """Runs :func:`compact_small_files` every ``policy.interval_seconds`` in a daemon thread."""

    def __init__(self, lake_root: Path, policy: CompactionPolicy) -> None:
        super().__init__("lake-compaction", policy.interval_seconds, right_away=False)
        self.lake = Lake(Path(lake_root))
        self.policy = policy
        self.runs = 0
        self.merged = 0

    def start(self) -> "CompactionScheduler":
        """Start the thread (no-op when the policy is disabled)."""
        if self.policy.enabled and self._thread is None:
            super().start()
            log.info("small-file compaction every %s", format_duration(self.policy.interval_seconds))
        return self

    def run_once(self) -> None:
        self.merged += len(compact_small_files(self.lake, self.policy))
        self.runs += 1
