"""Persistence of the miner state so templates (and their ids) survive restarts."""
from __future__ import annotations

import abc
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from logwarden.processing.templates.miner import TemplateMiner
from logwarden.processing.templates.model import TemplateInfo
from logwarden.processing.templates.snapshot import decode_state, encode_state, from_state, to_state

logger = logging.getLogger(__name__)

STATE_FILE = "templates_state.json"
TABLE_FILE = "templates.parquet"


class TemplateStore(abc.ABC):
    """Where a :class:`TemplateMiner` keeps its state between runs."""

    @abc.abstractmethod
    def save(self, miner: TemplateMiner) -> None:
        """Persist the complete state of ``miner``."""

    @abc.abstractmethod
    def load(self, on_new_template: Callable[[TemplateInfo], None] | None = None) -> TemplateMiner | None:
        """Return the persisted miner, or ``None`` when nothing was saved yet."""

    def load_or_create(
        self,
        factory: Callable[[], TemplateMiner],
        on_new_template: Callable[[TemplateInfo], None] | None = None,
    ) -> TemplateMiner:
        """The persisted miner, or a fresh one from ``factory`` when nothing was saved."""
        miner = self.load(on_new_template)
        return miner if miner is not None else factory()


class FileTemplateStore(TemplateStore):
    """State as JSON in a directory (atomically replaced), plus a Parquet table of the templates.

    ``templates_state.json`` is authoritative (config, templates, tree paths,
    usage); ``templates.parquet`` is a read-only convenience export with one
    row per template for analytics, written when pyarrow is installed.
    """

    def __init__(self, directory: str | os.PathLike[str], write_table: bool = True) -> None:
        self.directory = Path(directory)
        self.write_table = write_table

    @property
    def state_path(self) -> Path:
        """Path of the JSON state file."""
        return self.directory / STATE_FILE

    def save(self, miner: TemplateMiner) -> None:
        """Write the state atomically (temp file + rename), then the Parquet table."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.state_path, encode_state(to_state(miner)))
        if self.write_table:
            self._write_table(miner)
        logger.info("saved %d templates to %s", len(miner), self.directory)

    def load(self, on_new_template: Callable[[TemplateInfo], None] | None = None) -> TemplateMiner | None:
        """Read the JSON state; ``None`` when the directory holds none."""
        if not self.state_path.is_file():
            return None
        state = decode_state(self.state_path.read_bytes())
        miner = from_state(state, TemplateMiner, on_new_template)
        logger.info("loaded %d templates from %s", len(miner), self.directory)
        return miner

    def _write_table(self, miner: TemplateMiner) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - pyarrow is a project dependency
            logger.debug("pyarrow not installed; skipping %s", TABLE_FILE)
            return
        infos = miner.templates()
        table = pa.table({
            "template_id": pa.array([i.template_id for i in infos], pa.string()),
            "template": pa.array([_utf8(i.template) for i in infos], pa.string()),
            "count": pa.array([i.count for i in infos], pa.int64()),
            "first_seen": pa.array([i.first_seen for i in infos], pa.float64()),
            "last_seen": pa.array([i.last_seen for i in infos], pa.float64()),
        })
        target = self.directory / TABLE_FILE
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _utf8(text: str) -> str:
    """``text`` with lone surrogates (undecodable input bytes) written as escapes, as Parquet needs UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
