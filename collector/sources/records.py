"""Lines of a followed file -> records of the native shape (timestamp, level, service, message, attributes).

Each line is parsed by ``logwarden.formats`` with the file's format (configured, or detected from
its first lines; a line the format cannot read is detected on its own). A multi-line record is
parsed from its first line, and the lines after it are appended to its message. Container lines
are unwrapped first (``logwarden.formats.containers``). A line without a timestamp takes the time
it was read. Every other field the parser found becomes an attribute, with ``kubernetes`` (the pod
metadata of the file's name) and, for the node agent, ``file`` and ``host``.

The service is the configured one (a name, a template of the path's parts, or the ``service`` group
of a regex searched in the path), else the service the line names, else the container of a
Kubernetes log file, else the file's name without extensions.
"""
from __future__ import annotations

import re
import string
from datetime import datetime, timezone
from typing import Any, Iterator

import orjson

from logwarden.collector.sources.config import AUTO, FileSource
from logwarden.collector.sources.framing import Entry
from logwarden.collector.sources.kubernetes import path_fields, pod_metadata
from logwarden.formats import detect_stream, jsonable, parse
from logwarden.formats.common import clip, decode
from logwarden.formats.containers import content_record
from logwarden.formats.record import ParsedRecord
from logwarden.formats.registry import level_read_as_host, parse_content

DECLARED = ("timestamp", "level", "service", "message", "user_id", "request_id", "error_code", "duration_ms")
_OPTIONAL = ("user_id", "request_id", "error_code", "duration_ms")


def now_iso() -> str:
    """The current time, RFC 3339 UTC (the timestamp of lines without one)."""
    return datetime.now(timezone.utc).isoformat()


class RecordMaker:
    """Builds the records of one file."""

    def __init__(self, source: FileSource, path: str, extra: dict[str, Any] | None = None) -> None:
        self.source = source
        self.path = path
        self.kubernetes = pod_metadata(path)
        fields = path_fields(path, self.kubernetes)
        self.fixed_service = _configured_service(source.service, path, fields)
        self.default_service = str(self.kubernetes.get("container") or fields["file"] or "unknown")[:128]
        self.extra: dict[str, Any] = {}
        if self.kubernetes:
            self.extra["kubernetes"] = self.kubernetes
        if extra:
            self.extra.update(extra)

    @property
    def plain(self) -> bool:
        """Whether a record is its line as it is (no service to set, nothing to add): the columnar fast path
        of native JSON lines may then take a whole block."""
        return self.fixed_service is None and not self.extra

    # one record --------------------------------------------------------------------------------
    def parse_line(self, line: bytes, fmt: str, detected: bool) -> ParsedRecord:
        """``line`` parsed with ``fmt``; a line a detected format cannot read is detected on its own (and
        ``TIME LEVEL message`` is not syslog with the level for host)."""
        record = parse(line, fmt)
        if detected and ((record.parse_error and fmt != "text") or level_read_as_host(record, line)):
            return parse_content(line)
        return record

    def entry(self, entry: Entry, fmt: str, detected: bool, read_time: str) -> dict[str, Any]:
        """The record of a framed entry (one or more lines)."""
        container = entry.container
        if container is not None:
            record = content_record(entry.lines[0], container.time, container.stream, container.format,
                                    parse_content)
            if container.attrs is not None:
                record.attributes["attrs"] = container.attrs
            if container.partial:
                record.attributes["partial"] = True
        else:
            record = self.parse_line(entry.lines[0], fmt, detected)
        if len(entry.lines) > 1:
            rest = b"\n".join(entry.lines[1:])
            record.message = clip(record.message + "\n" + decode(rest)[0])
        value = self.value(record, read_time)
        if entry.truncated:
            value["truncated"] = True
        return value

    def value(self, record: ParsedRecord, read_time: str) -> dict[str, Any]:
        """The native record of a parsed one."""
        value: dict[str, Any] = {
            "timestamp": record.timestamp.isoformat() if record.timestamp is not None else read_time,
            "level": record.level,
            "service": self.fixed_service or record.service or self.default_service,
            "message": record.message,
        }
        for name in _OPTIONAL:
            item = getattr(record, name)
            if item is not None:
                value[name] = item
        for key, item in record.attributes.items():
            value[f"{key}_original" if key in DECLARED else key] = item
        if record.parse_error:
            value["parse_error"] = record.parse_error
        if self.extra:
            value.update(self.extra)
        return value

    # blocks ------------------------------------------------------------------------------------
    def block(self, data: bytes, fmt: str, detected: bool, read_time: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """(line, record) of each non-blank line of a block of complete lines, one at a time."""
        for line in data.split(b"\n"):
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                yield line, self.value(self.parse_line(line, fmt, detected), read_time)


def _configured_service(service: str | None, path: str, fields: dict[str, str]) -> str | None:
    """The ``service`` setting for this file: a regex's ``service`` group, a filled template, a name; None
    when not configured or not applicable to this path (a regex that does not match, a template naming a
    part this path lacks)."""
    if service is None:
        return None
    if "(?P<service>" in service:
        match = re.search(service, path)
        return match.group("service")[:128] if match and match.group("service") else None
    names = [name for _, name, _, _ in string.Formatter().parse(service) if name is not None]
    if not names:
        return service
    if any(name not in fields for name in names):
        return None
    return service.format_map(fields)[:128] or None


def detect_format(head: bytes, configured: str) -> tuple[str, bool]:
    """(the format of a file whose first bytes are ``head``, whether it was detected)."""
    if configured != AUTO:
        return configured, False
    lines = head.split(b"\n")[:51]
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines.pop()  # cut within its line
    lines = [line for line in lines if line.strip()]
    if not lines:
        return "text", True
    found = detect_stream(lines).format
    if any(level_read_as_host(parse(line, found), line) for line in lines[:3]):
        found = "text"  # TIME LEVEL message
    return found, True


def json_line(value: dict[str, Any], newline: bool = True) -> bytes:
    """A record as one JSON line (a value JSON cannot hold, such as an integer beyond 64 bits, as a string).

    Copied to a bytes object of its own size: orjson's result keeps a 4 KiB allocation however short it
    is, and a chunk keeps thousands of them (40 MB per 10,000 records otherwise).
    """
    option = orjson.OPT_APPEND_NEWLINE if newline else 0
    try:
        data = orjson.dumps(value, option=option)
    except TypeError:
        data = orjson.dumps(jsonable(value), option=option)
    return bytes(memoryview(data))


__all__ = ["DECLARED", "RecordMaker", "detect_format", "json_line", "now_iso"]
