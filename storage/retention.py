"""Retention tiers of the lake: compact and recompress, then archive or delete; aggregates kept longer.

- Raw record partitions (``logs/date=D/service=S``) older than ``compact_after`` days are
  compacted: every file of the partition is merged into one, sorted by event time and
  recompressed with zstd at a higher level.
- Raw partitions older than ``raw_after`` days are deleted, or moved below ``archive_dir``
  in the same layout.
- Aggregate partitions (``aggregates/date=D``) older than ``aggregates_after`` days are deleted,
  and so are commit markers older than that.

A run first plans (what ``--dry-run`` prints), then applies; a second run with the same
clock finds nothing to do. Compaction is crash-safe: a journal names the sources and the
target; a run that finds a journal finishes (or restarts) that compaction. Runs take a
lock file, so the scheduled job and a manual run never overlap.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any


from logwarden.common.durations import format_duration
from logwarden.common.periodic import PeriodicJob
from logwarden.common.yamlconf import (
    ConfigError, check_bool, check_choice, check_duration, check_int, check_mapping, check_str, describe,
)
from logwarden.storage.compaction import merge_files
from logwarden.storage.journal import JOURNAL, finish, lake_lock, read_journal
from logwarden.storage.lake import COMPACTED_PREFIX, Lake, parquet_files

__all__ = ["JOURNAL", "RetentionPolicy", "RetentionScheduler", "apply", "plan", "run_retention"]

log = logging.getLogger(__name__)

DAY = 86400.0
RAW_ACTIONS = ("delete", "archive")


@dataclass(frozen=True)
class RetentionPolicy:
    """The tiers; ages are whole days before today (UTC)."""

    enabled: bool = True
    compact_after_days: int = 7
    compression_level: int = 9
    raw_after_days: int = 30
    raw_action: str = "delete"
    archive_dir: Path | None = None
    aggregates_after_days: int = 365
    interval_seconds: float = 3600.0
    row_group_rows: int = 256 * 1024

    KEYS = ("enabled", "compact_after", "compression_level", "raw_after", "raw_action", "archive_dir",
            "aggregates_after", "interval")

    def __post_init__(self) -> None:
        if self.raw_action not in RAW_ACTIONS:
            raise ValueError(f"raw_action must be one of {', '.join(RAW_ACTIONS)}, not {self.raw_action!r}")
        if not 1 <= self.compression_level <= 22:
            raise ValueError("compression_level must be between 1 and 22 (zstd)")
        if not 0 < self.compact_after_days < self.raw_after_days:
            raise ValueError("compact_after must be shorter than raw_after (and longer than 0d)")
        if self.aggregates_after_days < 1:
            raise ValueError("aggregates_after must be at least 1d")
        if self.interval_seconds <= 0:
            raise ValueError("interval must be longer than 0s")

    @classmethod
    def from_dict(cls, section: Any) -> "RetentionPolicy":
        """The policy from a ``storage.retention`` mapping (None: the defaults); raises ConfigError with the
        key path (``storage.retention.raw_after``) on an unknown key or a bad value."""
        where = ("storage", "retention")
        section = check_mapping(section, where, cls.KEYS)
        kwargs: dict[str, Any] = {}
        for key, attr in (("compact_after", "compact_after_days"), ("raw_after", "raw_after_days"),
                          ("aggregates_after", "aggregates_after_days")):
            if key in section:
                kwargs[attr] = _days(section[key], (*where, key))
        if "interval" in section:
            kwargs["interval_seconds"] = check_duration(section["interval"], (*where, "interval"), positive=True)
        if "enabled" in section:
            kwargs["enabled"] = check_bool(section["enabled"], (*where, "enabled"))
        if "compression_level" in section:
            kwargs["compression_level"] = check_int(section["compression_level"], (*where, "compression_level"),
                                                    1, 22)
        if "raw_action" in section:
            kwargs["raw_action"] = check_choice(section["raw_action"], (*where, "raw_action"), RAW_ACTIONS)
        if section.get("archive_dir") is not None:
            kwargs["archive_dir"] = Path(check_str(section["archive_dir"], (*where, "archive_dir"))).expanduser()
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise ConfigError.at(where, str(exc)) from None

    def archive_root(self, lake: Lake) -> Path:
        """Where archived partitions go: ``archive_dir``, or ``archive`` beside the lake."""
        return self.archive_dir or lake.root.parent / "archive"


def _days(value: Any, keys: tuple) -> int:
    seconds = check_duration(value, keys)
    if seconds % DAY:
        raise ConfigError.at(keys, f"expected a whole number of days (e.g. 7d), got {describe(value)}")
    return int(seconds // DAY)


@dataclass(frozen=True)
class Action:
    """One step of a retention run."""

    kind: str  # compact | resume-compaction | archive | delete | delete-aggregates | delete-markers
    target: Path
    files: tuple[Path, ...]
    size: int
    age_days: int | None = None

    def describe(self, root: Path) -> str:
        """One line for ``--dry-run`` and the log."""
        where = self.target.relative_to(root) if self.target.is_relative_to(root) else self.target
        age = f", {self.age_days} days old" if self.age_days is not None else ""
        return f"{self.kind:<18} {where}  ({len(self.files)} file(s), {_size(self.size)}{age})"

    def as_dict(self, root: Path) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {"action": self.kind, "target": str(self.target.relative_to(root) if self.target.is_relative_to(root)
                                                   else self.target),
                "files": len(self.files), "bytes": self.size, "age_days": self.age_days}


@dataclass
class RetentionReport:
    """What a run did."""

    actions: list[Action] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    skipped: str | None = None


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _sizes(files: list[Path]) -> int:
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except FileNotFoundError:
            continue
    return total


def is_compacted(files: list[Path]) -> bool:
    """Whether a partition already is one compacted file."""
    return len(files) == 1 and files[0].name.startswith(COMPACTED_PREFIX)


def plan(lake: Lake, policy: RetentionPolicy, now: datetime | None = None) -> list[Action]:
    """The actions a run would take now (nothing is changed)."""
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    actions: list[Action] = []
    for day, _service, folder in lake.service_folders():
        age = (today - day).days
        files = parquet_files(folder)
        journal = folder / JOURNAL
        if age >= policy.raw_after_days:
            if files or journal.exists():
                actions.append(Action(policy.raw_action, folder, tuple(files), _sizes(files), age))
        elif journal.exists():
            actions.append(Action("resume-compaction", folder, tuple(files), _sizes(files), age))
        elif age >= policy.compact_after_days and files and not is_compacted(files):
            actions.append(Action("compact", folder, tuple(files), _sizes(files), age))
    for day, folder in lake.date_folders(lake.aggregates):
        age = (today - day).days
        if age >= policy.aggregates_after_days:
            files = parquet_files(folder)
            actions.append(Action("delete-aggregates", folder, tuple(files), _sizes(files), age))
    markers = _old_markers(lake, today, policy.aggregates_after_days)
    if markers:
        actions.append(Action("delete-markers", lake.commits, tuple(markers), _sizes(markers)))
    return actions


def _old_markers(lake: Lake, today: date, days: int) -> list[Path]:
    if not lake.commits.is_dir():
        return []
    cutoff = datetime.combine(today - timedelta(days=days), datetime.min.time(), timezone.utc).timestamp()
    return sorted(p for p in lake.commits.glob("*.json") if p.stat().st_mtime < cutoff)


# applying -------------------------------------------------------------------------------------
def compact_partition(folder: Path, policy: RetentionPolicy) -> Path | None:
    """Merge every file of one partition into one sorted, recompressed file; returns it (None: empty)."""
    if (folder / JOURNAL).exists():
        journal = read_journal(folder)
        if journal is not None and (folder / journal["target"]).exists():
            finish(folder, journal)
            return folder / journal["target"]
        (folder / JOURNAL).unlink()  # the merged file never landed: the sources are intact, start again
    sources = parquet_files(folder)
    if not sources or is_compacted(sources):
        return sources[0] if sources else None
    target = merge_files(folder, sources, policy.compression_level, policy.row_group_rows)
    finish(folder, {"target": target.name, "sources": [p.name for p in sources]})
    log.info("compacted %s: %d files", folder, len(sources))
    return target


def _archive(lake: Lake, policy: RetentionPolicy, folder: Path) -> None:
    destination = policy.archive_root(lake) / folder.relative_to(lake.root)
    destination.mkdir(parents=True, exist_ok=True)
    journal = folder / JOURNAL
    if journal.exists():
        compact_partition(folder, policy)  # finish a half-done compaction so no duplicate is archived
    for path in parquet_files(folder):
        shutil.move(str(path), str(destination / path.name))
    _remove_tree(folder)


def _remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _prune_empty(top: Path) -> None:
    if not top.is_dir():
        return
    for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            continue


def apply(lake: Lake, policy: RetentionPolicy, actions: list[Action]) -> RetentionReport:
    """Carry out planned actions; each is idempotent, so a crash mid-way is fixed by the next run."""
    report = RetentionReport(actions=list(actions))
    for action in actions:
        report.bytes_before += action.size
        if action.kind in ("compact", "resume-compaction"):
            merged = compact_partition(action.target, policy)
            report.bytes_after += _sizes([merged]) if merged else 0
        elif action.kind == "archive":
            _archive(lake, policy, action.target)
            report.bytes_after += action.size
        elif action.kind in ("delete", "delete-aggregates"):
            _remove_tree(action.target)
        elif action.kind == "delete-markers":
            for marker in action.files:
                marker.unlink(missing_ok=True)
        log.info("retention: %s", action.describe(lake.root))
    _prune_empty(lake.logs)
    _prune_empty(lake.aggregates)
    return report


def run_retention(lake: Lake, policy: RetentionPolicy, now: datetime | None = None,
                  dry_run: bool = False) -> RetentionReport:
    """Plan and (unless ``dry_run``) apply the tiers; skipped when another run holds the lock."""
    if dry_run:
        return RetentionReport(actions=plan(lake, policy, now))
    with lake_lock(lake.root, wait=False) as acquired:
        if not acquired:
            return RetentionReport(skipped="another retention run is in progress")
        return apply(lake, policy, plan(lake, policy, now))


class RetentionScheduler(PeriodicJob):
    """Runs retention every ``policy.interval_seconds`` in a daemon thread, first right after start."""

    def __init__(self, lake_root: Path, policy: RetentionPolicy) -> None:
        super().__init__("lake-retention", policy.interval_seconds)
        self.lake = Lake(Path(lake_root))
        self.policy = policy
        self.runs = 0
        self.last_report: RetentionReport | None = None

    def start(self) -> "RetentionScheduler":
        """Start the thread (no-op when the policy is disabled)."""
        if self.policy.enabled and self._thread is None:
            super().start()
            log.info("lake retention every %s", format_duration(self.policy.interval_seconds))
        return self

    def run_once(self) -> None:
        self.last_report = run_retention(self.lake, self.policy)
        self.runs += 1
