"""The logwarden configuration file (``--config FILE``): one section per layer, validated on load."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logwarden.alerting.config import AlertingConfigError, parse_alerting
from logwarden.collector.config import CollectorConfig
from logwarden.common.yamlconf import ConfigError, load_yaml
from logwarden.processing.config import ProcessingConfig
from logwarden.storage.config import StorageConfig

SECTIONS = ("collector", "processing", "monitoring", "alerting", "storage")


@dataclass
class Settings:
    """Everything a config file can set; absent sections take the embedded defaults."""

    collector: CollectorConfig = field(default_factory=CollectorConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    processing: ProcessingConfig = field(default_factory=lambda: ProcessingConfig.from_dict(None))
    raw: dict[str, Any] = field(default_factory=dict)
    source: str | None = None


def load_settings(path: str | Path | None) -> Settings:
    """Read ``path`` (or the embedded defaults when None); errors name the file and line."""
    if path is None:
        return Settings()
    doc = load_yaml(path)
    data = doc.data or {}
    if not isinstance(data, dict):
        raise doc.error([], "a config file must be a mapping of sections")
    for key in data:
        if key not in SECTIONS:
            raise doc.error([key], f"unknown section '{key}' (expected one of: {', '.join(SECTIONS)})")
    try:
        collector = CollectorConfig.from_dict(data.get("collector"))
    except (TypeError, ValueError) as exc:
        raise doc.error(["collector"], f"section 'collector': {exc}") from None
    try:
        parse_alerting(data.get("alerting"), source=str(path))
    except AlertingConfigError as exc:
        raise doc.error(["alerting", *exc.path], exc.problem) from None
    try:
        storage = StorageConfig.from_dict(data.get("storage"))
    except ConfigError as exc:
        raise doc.error(["storage"], exc.problem) from None
    try:
        processing = ProcessingConfig.from_dict(data.get("processing"))
    except ConfigError as exc:
        raise doc.error(["processing"], exc.problem) from None
    return Settings(collector=collector, storage=storage, processing=processing, raw=data, source=str(path))


__all__ = ["ConfigError", "Settings", "load_settings"]
