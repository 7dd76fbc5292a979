"""Checkpoints of detector state: ``<dir>/<rule>/<shard>.ckpt``, written atomically (temporary file,
fsync, rename), so a reader sees the previous checkpoint or the new one, never a torn file."""
from __future__ import annotations

import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
#: 2: rule state is keyed by (tenant, key) (``monitoring.rules.keys``), and keys are routed to shards by
#: that. A checkpoint of format 1 (keys without a tenant) is discarded: the detector starts empty.
FORMAT = 2


@dataclass
class Checkpoint:
    """What a detector actor needs to resume: its rule's fingerprint, the pool session and call
    sequence it had applied, and the DetectorSet snapshot."""

    fingerprint: str
    session: str
    applied_seq: int | None
    snapshot: dict[str, Any]


class CheckpointStore:
    """The checkpoint file of one (rule, shard)."""

    def __init__(self, root: str | Path, rule: str, shard: int) -> None:
        self.folder = Path(root) / rule
        self.path = self.folder / f"{shard}.ckpt"

    def save(self, checkpoint: Checkpoint) -> None:
        """Write ``checkpoint`` atomically; on a failed write (a full disk) the previous checkpoint stays
        and the partial file is removed, then the error is raised."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as out:
                pickle.dump({"format": FORMAT, "checkpoint": checkpoint}, out, protocol=pickle.HIGHEST_PROTOCOL)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)  # give a full disk its space back
            raise
        os.replace(tmp, self.path)
        try:
            fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass

    def load(self, fingerprint: str) -> Checkpoint | None:
        """The checkpoint, if there is one for a rule of this ``fingerprint`` and it can be read."""
        if not self.path.exists():
            return None
        try:
            with open(self.path, "rb") as source:
                data = pickle.load(source)
            checkpoint = data["checkpoint"]
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint must not keep the detector down
            log.warning("checkpoint %s unreadable, starting empty: %r", self.path, exc)
            return None
        if data.get("format") != FORMAT:
            log.warning("checkpoint %s is of format %s, not %d (state keyed by tenant and key); discarded, "
                        "the detector starts empty", self.path, data.get("format"), FORMAT)
            return None
        if checkpoint.fingerprint != fingerprint:
            log.info("checkpoint %s is of another version of the rule; starting empty", self.path)
            return None
        return checkpoint

    @staticmethod
    def remove_rule(root: str | Path, rule: str) -> None:
        """Delete every checkpoint of ``rule``."""
        shutil.rmtree(Path(root) / rule, ignore_errors=True)
