"""Versioned model persistence beside the lake: ``<lake>/models/<name>/<version>/``.

Each version folder holds ``model.joblib`` (the fitted object) and ``manifest.json``
(name, version, kind, creation time, training summary, metrics). Versions are
``v000001``, ``v000002``…; ``LATEST`` names the newest complete one and is written
last, so a reader never sees a half-written version.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import orjson

from logwarden.common.atomic import fsync_path, write_bytes_atomic

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^v(\d{6})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ModelVersion:
    """One persisted version of a model."""

    name: str
    version: str
    path: Path
    manifest: dict[str, Any]

    @property
    def created_at(self) -> float:
        """Wall-clock creation time, epoch seconds."""
        return float(self.manifest.get("created_at", 0.0))


class ModelRegistry:
    """The models of one lake (``root`` is ``<lake>/models``)."""

    def __init__(self, root: str | Path, keep: int = 5) -> None:
        self.root = Path(root)
        self.keep = keep

    @classmethod
    def for_lake(cls, lake: str | Path, keep: int = 5) -> "ModelRegistry":
        """The registry below ``<lake>/models``."""
        return cls(Path(lake) / "models", keep=keep)

    def _folder(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"invalid model name {name!r}")
        return self.root / name

    def versions(self, name: str) -> list[str]:
        """Complete versions of ``name``, oldest first."""
        folder = self._folder(name)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if _VERSION.match(p.name) and (p / "manifest.json").is_file())

    def latest_version(self, name: str) -> str | None:
        """The version ``LATEST`` points to, or None when nothing was saved."""
        marker = self._folder(name) / "LATEST"
        try:
            version = marker.read_text().strip()
        except FileNotFoundError:
            return None
        return version if (self._folder(name) / version / "manifest.json").is_file() else None

    def save(self, name: str, model: Any, kind: str, summary: dict[str, Any] | None = None) -> ModelVersion:
        """Persist ``model`` as the next version of ``name`` and make it the latest."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        existing = [int(_VERSION.match(p.name).group(1)) for p in folder.iterdir() if _VERSION.match(p.name)]
        version = f"v{(max(existing) + 1 if existing else 1):06d}"
        target = folder / version
        staging = folder / f".{version}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        joblib.dump(model, staging / "model.joblib", compress=3)
        manifest = {"name": name, "version": version, "kind": kind, "created_at": time.time(),
                    "summary": summary or {}}
        write_bytes_atomic(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY),
                           staging / "manifest.json")
        staging.rename(target)
        fsync_path(folder)
        write_bytes_atomic(version.encode(), folder / "LATEST")
        log.info("saved model %s %s (%s)", name, version, kind)
        self._prune(name)
        return ModelVersion(name, version, target, manifest)

    def manifest(self, name: str, version: str | None = None) -> ModelVersion | None:
        """The manifest of a version (default: the latest), without loading the model."""
        version = version or self.latest_version(name)
        if version is None:
            return None
        path = self._folder(name) / version
        return ModelVersion(name, version, path, orjson.loads((path / "manifest.json").read_bytes()))

    def load(self, name: str, version: str | None = None) -> tuple[Any, ModelVersion] | None:
        """The model and its manifest (default: the latest version), or None when there is none."""
        info = self.manifest(name, version)
        if info is None:
            return None
        return joblib.load(info.path / "model.joblib"), info

    def due(self, name: str, every_s: float, now: float | None = None) -> bool:
        """Whether ``name`` has no version or its latest is older than ``every_s`` (the retraining
        schedule)."""
        info = self.manifest(name)
        now = time.time() if now is None else now
        return info is None or now - info.created_at >= every_s

    def _prune(self, name: str) -> None:
        versions = self.versions(name)
        for old in versions[: max(0, len(versions) - self.keep)]:
            shutil.rmtree(self._folder(name) / old, ignore_errors=True)
