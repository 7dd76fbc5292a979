"""Container runtime log files: CRI (containerd, CRI-O) and Docker's json-file driver.

A **CRI** line is ``TIMESTAMP STREAM TAG CONTENT``::

    2024-01-01T00:00:00.123456789Z stdout F the message as the container wrote it

``TAG`` is ``F`` for a full line, or ``P`` for a part of a line the runtime split (its buffer is
16 KiB); the parts of one line follow each other until the ``F`` line, and are joined by the file
source (``logwarden.collector.sources``) before parsing.

A **docker json-file** line is one JSON object per line written by the container::

    {"log":"level=error msg=\\"db down\\"\\n","stream":"stderr","time":"2024-01-01T00:00:00.1Z"}

``log`` ends with the newline of a complete line; a line longer than 16 KiB is split over
several objects, only the last ending with ``\\n`` (joined by the file source too).

Either way the content is what the application wrote, so it is parsed by the normal parsers:
its own timestamp, level and service win; without a timestamp the runtime's time is the
record's. ``stream`` is kept as an attribute, and the runtime's time under ``runtime_time`` when
the content carried its own. The parse of the content is injected (``inner``): the registry
wires the full detection in, and the default here knows JSON, logfmt and text.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from logwarden.formats import json_app, logfmt, text, timestamps
from logwarden.formats.common import MAX_RECORD_BYTES, error_record
from logwarden.formats.record import ParsedRecord

CRI = "cri"
DOCKER = "docker-json"

_CRI = re.compile(
    rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([A-Z](?::[A-Z])*)(?: |$)"
)
_DOCKER_KEYS = frozenset(("log", "stream", "time", "attrs"))

Inner = Callable[[bytes], ParsedRecord]


class CriLine(NamedTuple):
    """The parts of one CRI line."""

    time: str
    stream: str
    partial: bool
    content: bytes


def split_cri(data: bytes) -> CriLine | None:
    """The parts of a CRI line, or None when ``data`` is not one."""
    m = _CRI.match(data)
    if m is None:
        return None
    content = data[m.end():]
    if content.endswith(b"\n"):
        content = content[:-1]
    if content.endswith(b"\r"):
        content = content[:-1]
    tags = m.group(3).split(b":")
    return CriLine(m.group(1).decode(), m.group(2).decode(), b"P" in tags, content)


def sniff_cri(data: bytes) -> float:
    """A CRI line: RFC 3339 time, ``stdout``/``stderr``, a ``P``/``F`` tag."""
    return 0.97 if _CRI.match(data) else 0.0


def is_docker_json(obj: Any) -> bool:
    """Whether a decoded object is a docker json-file entry (``log``, ``stream``, ``time``, ``attrs`` only)."""
    return (isinstance(obj, dict) and isinstance(obj.get("log"), str) and isinstance(obj.get("time"), str)
            and obj.keys() <= _DOCKER_KEYS)


def sniff_docker(data: bytes) -> float:
    """A docker json-file line."""
    if data[:1] != b"{" or b'"log"' not in data[:MAX_RECORD_BYTES]:
        return 0.0
    try:
        return 0.97 if is_docker_json(orjson.loads(data)) else 0.0
    except orjson.JSONDecodeError:
        return 0.0


def _default_inner(data: bytes) -> ParsedRecord:
    """The content's record without the full detection: JSON, logfmt, else text."""
    stripped = data.lstrip()
    if stripped[:1] == b"{" and json_app.sniff(stripped) >= 0.9:
        return json_app.parse(stripped)
    if logfmt.sniff(data) > 0.5:
        return logfmt.parse(data)
    return text.parse(data)


def content_record(content: bytes, runtime_time: str, stream: str, fmt: str,
                   inner: Inner | None = None) -> ParsedRecord:
    """The record of one container line's ``content``, parsed by ``inner`` (see the module docstring)."""
    record = (inner or _default_inner)(content) if content.strip() else ParsedRecord(format=fmt, message="")
    stamp = timestamps.parse_iso(runtime_time)
    attributes = dict(record.attributes)
    attributes["stream"] = stream
    if record.timestamp is None:
        record.timestamp = stamp
    elif stamp is not None and record.timestamp != stamp:
        attributes["runtime_time"] = runtime_time
    record.attributes = attributes
    record.format = fmt
    return record


def parse_cri(data: bytes | str, inner: Inner | None = None) -> ParsedRecord:
    """Parse one (joined) CRI line; a line that is not CRI becomes a ``text`` record with parse_error."""
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    line = split_cri(raw)
    if line is None:
        return error_record(data, "cri: not TIMESTAMP STREAM TAG CONTENT")
    record = content_record(line.content, line.time, line.stream, CRI, inner)
    if line.partial:  # a part that was never completed (the file ended within a split line)
        record.attributes["partial"] = True
    return record


def parse_docker(data: bytes | str | dict[str, Any], inner: Inner | None = None) -> ParsedRecord:
    """Parse one (joined) docker json-file entry: ``log`` unwrapped, its trailing newline dropped."""
    if not isinstance(data, dict) and len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    obj = data if isinstance(data, dict) else json_app.loads(data)
    if isinstance(obj, str) or not is_docker_json(obj):
        return error_record(data, obj if isinstance(obj, str) else "docker-json: no log and time fields")
    line = split_docker(obj)
    record = content_record(line.log.encode("utf-8", "surrogatepass"), line.time, line.stream, DOCKER, inner)
    if line.attrs is not None:
        record.attributes["attrs"] = line.attrs
    return record


def sniff(data: bytes) -> float:
    """Either container format."""
    return max(sniff_cri(data), sniff_docker(data))


def parse(data: bytes | str | dict[str, Any]) -> ParsedRecord:
    """Parse a CRI or docker json-file line (whichever it is)."""
    if isinstance(data, dict) or (data[:1] in (b"{", "{")):
        return parse_docker(data)
    return parse_cri(data)


class DockerLine(NamedTuple):
    """The parts of one docker json-file entry."""

    time: str
    stream: str
    log: str  # without its trailing newline
    complete: bool  # whether ``log`` ended with a newline (else the daemon split the line)
    attrs: dict[str, Any] | None


def split_docker(data: bytes | dict[str, Any]) -> DockerLine | None:
    """The parts of a docker json-file entry, or None when ``data`` is not one."""
    if isinstance(data, dict):
        obj = data
    else:
        if data[:1] != b"{":
            return None
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
    if not is_docker_json(obj):
        return None
    log = obj["log"]
    complete = log.endswith("\n")
    if complete:
        log = log[:-2] if log.endswith("\r\n") else log[:-1]
    attrs = obj.get("attrs")
    return DockerLine(obj["time"], str(obj.get("stream") or ""), log, complete,
                      attrs if isinstance(attrs, dict) else None)


__all__ = ["CRI", "DOCKER", "CriLine", "DockerLine", "content_record", "is_docker_json", "parse", "parse_cri",
           "parse_docker", "sniff", "sniff_cri", "sniff_docker", "split_cri", "split_docker"]
