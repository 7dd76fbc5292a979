"""The SIEM sinks of ``storage.forward``, wired: their rule-style filters checked and compiled with
monitoring's filter compiler (the sinks, in storage, take the compiled predicate), and built under the
data dir."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring.rules.filters import compile_filter
from logwarden.monitoring.rules.spec_schema import FILTER
from logwarden.storage.config import StorageConfig
from logwarden.storage.forward import Forwarder, SinkConfig

_VALIDATOR = jsonschema.Draft202012Validator({"$defs": {"filter": FILTER}, "$ref": "#/$defs/filter"})


def check_filter(spec: Any, where: tuple) -> None:
    """Raise ConfigError at ``where`` (the ``filter`` key) when ``spec`` is not a rule filter."""
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(spec))
    if error is not None:
        raise ConfigError.at((*where, *error.absolute_path), f"not a rule filter: {error.message}")
    try:
        compile_filter(spec)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError.at(where, f"not a rule filter: {exc}") from None


def check_storage(config: StorageConfig) -> StorageConfig:
    """``config`` once the filter of every ``storage.forward`` sink is checked."""
    for index, sink in enumerate(config.forward):
        if sink.options.filter is not None:
            check_filter(sink.options.filter, ("storage", "forward", index, "filter"))
    return config


def parse_storage(section: Any) -> StorageConfig:
    """The ``storage`` section, its forwarding filters checked (the parser of :data:`logwarden.settings.SECTIONS`)."""
    return check_storage(StorageConfig.from_dict(section))


def build_forwarder(sinks: tuple[SinkConfig, ...], data_dir: Path) -> Forwarder | None:
    """The started sinks (None when none is configured)."""
    if not sinks:
        return None
    return Forwarder(sinks, data_dir, compile_filter=compile_filter).start()

