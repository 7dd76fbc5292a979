"""The logwarden configuration file (``--config FILE``): one section per layer, read once, typed.

:func:`load_settings` reads the file with the one YAML loader (:mod:`logwarden.common.yamlconf`:
duplicate keys and alias bombs refused, ``${ENV}`` expanded in every section) and hands each
section to its parser in :data:`SECTIONS`; the result is a :class:`Settings` with one typed
value per section. Every command that takes ``--config`` works from that object. An absent
section (or no file) gives the defaults, which are written once, in each section's dataclass.

Every refusal reads ``FILE:LINE: section.key: problem``, e.g.
``logwarden.yaml:7: collector.http_port: expected a port number from 0 to 65535, got 'abc'``.
A section parser raises ``ConfigError.at(key_path, problem)``; the file and line are added here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from logwarden.alerting.config import AlertingConfig, parse_alerting
from logwarden.collector.config import CollectorConfig
from logwarden.collector.sources.config import SourcesConfig
from logwarden.common.auth import AuthConfig
from logwarden.common.tls import TlsConfig
from logwarden.common.yamlconf import ConfigError, YamlDocument, describe, load_yaml, parse_yaml
from logwarden.forwarding import parse_storage
from logwarden.monitoring.config import MonitoringConfig
from logwarden.processing.config import ProcessingConfig
from logwarden.storage.config import StorageConfig


def _alerting(section: Any) -> AlertingConfig:
    return parse_alerting(section)


#: Section name -> parser: the section's value (None when absent) -> its typed config.
#: A parser raises ConfigError with the key path from the file's root (``ConfigError.at``).
SECTIONS: dict[str, Callable[[Any], Any]] = {
    "collector": CollectorConfig.from_dict,
    "processing": ProcessingConfig.from_dict,
    "storage": parse_storage,  # StorageConfig.from_dict, and the forwarding filters checked
    "monitoring": MonitoringConfig.from_dict,
    "alerting": _alerting,
    "auth": AuthConfig.from_dict,
    "tls": TlsConfig.from_dict,
    "sources": SourcesConfig.from_dict,
}


@dataclass
class Settings:
    """Everything a config file can set, one typed value per section of :data:`SECTIONS`."""

    collector: CollectorConfig = field(default_factory=CollectorConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    alerting: AlertingConfig = field(default_factory=lambda: parse_alerting(None))
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig | None = None
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    source: str | None = None  # the config file, None for the embedded defaults


def load_settings(path: str | Path | None) -> Settings:
    """Read ``path`` (None: the embedded defaults); a refusal is a ConfigError ``FILE:LINE: key: problem``."""
    if path is None:
        return Settings(**{name: parser(None) for name, parser in SECTIONS.items()})
    return settings_from_document(load_yaml(path))


def parse_settings(text: str, source: str = "<config>") -> Settings:
    """Settings from YAML text (as :func:`load_settings` reads a file)."""
    return settings_from_document(parse_yaml(text, source))


def settings_from_document(doc: YamlDocument) -> Settings:
    """Settings from a parsed config document: every section through its parser, errors located."""
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise doc.error([], f"expected a mapping of sections ({', '.join(SECTIONS)}), got {describe(data)}")
    for name in data:
        if name not in SECTIONS:
            raise doc.error([name], f"unknown section (known sections: {', '.join(sorted(SECTIONS))})")
    values = {}
    for name, parser in SECTIONS.items():
        try:
            values[name] = parser(data.get(name))
        except ConfigError as exc:
            raise _locate(doc, name, exc) from None
        except (TypeError, ValueError) as exc:  # a parser that does not speak ConfigError (yet)
            raise doc.error([name], str(exc)) from None
    return Settings(**values, source=doc.source)


_KEY_PREFIX = re.compile(r"^([A-Za-z_][\w-]*(?:\.[\w<>-]+)*): ")


def _locate(doc: YamlDocument, section: str, exc: ConfigError) -> ConfigError:
    """``exc`` with the file and the line of its key."""
    if exc.source and exc.line:  # located in another file (e.g. an inventory the section names)
        return doc.error([section], str(exc))
    if exc.keys:  # the key path from the file's root
        return doc.locate(exc)
    path = getattr(exc, "path", None)
    if path is not None:  # a section error with ``path`` below the section, its message led by the key
        return ConfigError(doc.source, doc.line_of([section, *path]), exc.problem)
    match = _KEY_PREFIX.match(exc.problem)  # "section.key: problem" in the message, or no key at all
    if match and match.group(1).split(".")[0] == section:
        return ConfigError(doc.source, doc.line_of(match.group(1).split(".")), exc.problem)
    return doc.error([section], exc.problem)


__all__ = ["SECTIONS", "ConfigError", "Settings", "load_settings", "parse_settings", "settings_from_document"]
