"""The registry of format parsers: name -> (sniff, parse)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from logwarden.formats import (access_log, cef, cloudtrail, containers, detect, json_app, leef, levels, logfmt,
               panos, syslog3164, syslog5424, text, windows_event)
from logwarden.formats.record import ParsedRecord


class Parser(NamedTuple):
    """A registered format: ``sniff(bytes) -> confidence`` and ``parse(record) -> ParsedRecord``."""

    name: str
    sniff: Callable[[bytes], float]
    parse: Callable[..., ParsedRecord]


_PARSERS: dict[str, Parser] = {}


def register(parser: Parser) -> None:
    """Add or replace a parser (e.g. a :class:`~.text.TextParser` with custom header patterns)."""
    _PARSERS[parser.name] = parser


def get(name: str) -> Parser:
    """The parser registered under ``name``; ValueError names the known formats otherwise."""
    try:
        return _PARSERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(_PARSERS)}") from None


def names() -> list[str]:
    """Registered format names, in registration order."""
    return list(_PARSERS)


def _module_parser(module: Any) -> Parser:
    """Wrap a format module exposing NAME, sniff and parse."""
    return Parser(module.NAME, module.sniff, module.parse)


for _module in (json_app, logfmt, syslog3164, syslog5424, windows_event, cloudtrail, panos, cef,
                leef, access_log, text):
    register(_module_parser(_module))


def parse_content(data: bytes) -> ParsedRecord:
    """The record of a container line's content, by the full detection (a container line in a container
    line is text; so is ``TIME LEVEL message``, which the syslog sniffer takes for ``TIME HOST``)."""
    found = detect.detect_bytes(data).format
    if found in (containers.CRI, containers.DOCKER):
        return text.parse(data)
    record = get(found).parse(data)
    return text.parse(data) if level_read_as_host(record, data) else record


def level_read_as_host(record: ParsedRecord, data: bytes) -> bool:
    """Whether ``TIME LEVEL message`` was read as syslog without PRI, the level taken for the host."""
    if record.format != syslog3164.NAME or data[:1] == b"<":
        return False
    host = record.attributes.get("hostname")
    return isinstance(host, str) and host.isupper() and levels.from_name(host) is not None


register(Parser(containers.CRI, containers.sniff_cri, lambda data: containers.parse_cri(data, parse_content)))
register(Parser(containers.DOCKER, containers.sniff_docker,
                lambda data: containers.parse_docker(data, parse_content)))
