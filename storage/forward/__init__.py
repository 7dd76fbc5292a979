"""Forward committed records to a SIEM: Splunk HEC, syslog with CEF, HTTP NDJSON or OTLP JSON.

``storage.forward`` is a list of sinks, each with its ``type`` and settings (one module per type), a
rule-style ``filter`` choosing the records it gets, batching, retries and a bounded disk buffer
(:mod:`.base`). :class:`Forwarder` hands each committed batch to every sink.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Union

import pyarrow as pa

from logwarden.common.yamlconf import ConfigError, check_choice, check_mapping, describe
from logwarden.storage.forward.base import Predicate, Sink
from logwarden.storage.forward.http_ndjson import HttpConfig
from logwarden.storage.forward.splunk_hec import SplunkHecConfig
from logwarden.storage.forward.syslog_cef import SyslogCefConfig

SinkConfig = Union[SplunkHecConfig, SyslogCefConfig, HttpConfig]
TYPES: dict[str, Any] = {"splunk_hec": SplunkHecConfig, "syslog_cef": SyslogCefConfig, "http": HttpConfig}
WHERE = ("storage", "forward")


def parse_forward(value: Any) -> tuple[SinkConfig, ...]:
    """The sinks of a ``storage.forward`` list (None: none); ConfigError at ``storage.forward.<i>.<key>``."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError.at(WHERE, f"expected a list of sinks, got {describe(value)}")
    sinks: list[SinkConfig] = []
    names: set[str] = set()
    for index, section in enumerate(value):
        where = (*WHERE, index)
        section = check_mapping(section, where)
        if "type" not in section:
            raise ConfigError.at((*where, "type"), f"missing (one of {', '.join(TYPES)})")
        kind = check_choice(section["type"], (*where, "type"), TYPES)
        config = TYPES[kind].from_dict(section, where)
        if config.options.name in names:
            raise ConfigError.at((*where, "name") if "name" in section else (*where, "type"),
                                 f"another sink is named {config.options.name!r}: give each a distinct name")
        names.add(config.options.name)
        sinks.append(config)
    return tuple(sinks)


class Forwarder:
    """Every configured sink, started; :meth:`forward` hands a committed batch to each."""

    def __init__(self, configs: tuple[SinkConfig, ...], data_dir: Path,
                 compile_filter: Callable[[Any], Predicate] | None = None) -> None:
        self.sinks: list[Sink] = []
        for config in configs:
            spec = config.options.filter
            if spec is not None and compile_filter is None:
                raise ValueError(f"forward sink {config.options.name} has a filter but no filter compiler was given")
            predicate = compile_filter(spec) if spec is not None else None
            self.sinks.append(config.build(Path(data_dir), predicate))

    def start(self) -> "Forwarder":
        """Start every sink's worker."""
        for sink in self.sinks:
            sink.start()
        return self

    def forward(self, batch_id: str, records: pa.Table) -> None:
        """Buffer ``records`` (a committed batch) in every sink; durable on return."""
        for sink in self.sinks:
            sink.enqueue(batch_id, records)

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop every sink, first letting them drain for up to ``drain_timeout`` s in all (the rest stays
        buffered for the next start)."""
        deadline = time.monotonic() + drain_timeout
        for sink in self.sinks:
            sink.stop(max(0.0, deadline - time.monotonic()))


__all__ = ["Forwarder", "SinkConfig", "TYPES", "parse_forward"]
