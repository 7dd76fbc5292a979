"""The ``sources:`` section of the configuration: log files to follow.

``logwarden collector`` (and so ``logwarden up``) follows them and writes their records ahead like
any other input; ``logwarden agent`` follows them on a node and ships them to a central collector.
The section is a list; each item is one source::

    sources:
      - type: file                              # the one source type
        name: app                               # default: the paths joined (names the checkpoints)
        paths: [/var/log/app/*.log]             # globs (``**`` descends); a string is one glob
        exclude: ["*.tmp"]                      # globs on the path or the file name
        format: auto                            # or a parser of logwarden.formats: json, logfmt, cri, ...
        service: billing                        # a name; or a template of the path's parts:
                                                #   "{container}", "{namespace}-{pod}", "{file}", "{dir}";
                                                #   or a regex with a group ``service`` searched in the path:
                                                #   "/var/log/(?P<service>[^/]+)/"
        multiline: java                         # java, python, go (stack traces), or a start regex,
                                                # or {rule: python, timeout: 1s, max_lines: 1000}
        start_at: beginning                     # or end: where to start in files found at the first run
        max_line_bytes: 256KiB                  # longer lines are cut; the rest is dead-lettered
        line_timeout: 5s                        # a last line without newline is taken after this long
        rotate_wait: 5s                         # a rotated or deleted file is read this long after its end
        tenant: team-a                          # the records' tenant (collector only; an agent's tenant
                                                # is its token's)

Without ``service``, a record takes the service its line names, else the container of a Kubernetes
log file, else the file's name without extension. Files whose name ends in ``.gz``, ``.zst``,
``.xz``, ``.bz2`` or ``.zip`` are never followed as such: a compressed file is read only as the
rotated continuation of a file being followed.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

from logwarden.common.yamlconf import (ConfigError, check_choice, check_duration, check_int, check_mapping,
                                       check_str, describe)
from logwarden.formats import FORMATS

SECTION = "sources"
AUTO = "auto"
MULTILINE_RULES = ("java", "python", "go")
#: Placeholders a ``service`` template may use (filled from the path; see ``kubernetes.py``).
TEMPLATE_FIELDS = ("namespace", "pod", "pod_uid", "container", "container_id", "file", "dir")
_KEYS = ("type", "name", "paths", "exclude", "format", "service", "multiline", "start_at", "max_line_bytes",
         "line_timeout", "rotate_wait", "tenant")
_MULTILINE_KEYS = ("rule", "start", "timeout", "max_lines")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


@dataclass(frozen=True)
class Multiline:
    """How lines group into records: a built-in rule (``java``, ``python``, ``go``) or a start pattern."""

    rule: str  # one of MULTILINE_RULES, or "start" (a line matching ``start`` begins a record)
    start: str | None = None
    timeout: float = 1.0  # a pending record is emitted after this long without a new line
    max_lines: int = 1000


@dataclass(frozen=True)
class FileSource:
    """One ``type: file`` source."""

    name: str
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    format: str = AUTO
    service: str | None = None
    multiline: Multiline | None = None
    start_at: str = "beginning"
    max_line_bytes: int = 256 * 1024
    line_timeout: float = 5.0
    rotate_wait: float = 5.0
    tenant: str | None = None


@dataclass(frozen=True)
class SourcesConfig:
    """The ``sources:`` section: the file sources, in the order written."""

    files: tuple[FileSource, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.files)

    @classmethod
    def from_dict(cls, section: Any) -> "SourcesConfig":
        """Parse the section (None: no sources); refusals are ConfigError at ``sources.N.key``."""
        return parse_sources(section)


def parse_sources(section: Any) -> SourcesConfig:
    """The ``sources:`` list (see the module docstring); None is no sources."""
    if section is None:
        return SourcesConfig()
    if not isinstance(section, list):
        raise ConfigError.at((SECTION,), f"expected a list of sources (- type: file ...), got {describe(section)}")
    files = [_file_source(item, (SECTION, index)) for index, item in enumerate(section)]
    names: dict[str, int] = {}
    for index, source in enumerate(files):
        if source.name in names:
            raise ConfigError.at((SECTION, index, "name"),
                                 f"{source.name!r} names source {names[source.name]} already")
        names[source.name] = index
    return SourcesConfig(tuple(files))


def _file_source(item: Any, where: tuple) -> FileSource:
    item = check_mapping(item, where, _KEYS)
    if "type" not in item:
        raise ConfigError.at(where + ("type",), "missing (the only type is file)")
    check_choice(item["type"], where + ("type",), ("file",))
    if "paths" not in item:
        raise ConfigError.at(where + ("paths",), "missing: the globs of the files to follow")
    paths = _globs(item["paths"], where + ("paths",), empty=False)
    values: dict[str, Any] = {"paths": paths, "name": ",".join(paths)}
    if "name" in item:
        values["name"] = check_str(item["name"], where + ("name",))
    if "exclude" in item:
        values["exclude"] = _globs(item["exclude"], where + ("exclude",), empty=True)
    if "format" in item:
        values["format"] = check_choice(item["format"], where + ("format",), (AUTO, *FORMATS))
    if "service" in item:
        values["service"] = _service(item["service"], where + ("service",))
    if "multiline" in item and item["multiline"] is not None:
        values["multiline"] = _multiline(item["multiline"], where + ("multiline",))
    if "start_at" in item:
        values["start_at"] = check_choice(item["start_at"], where + ("start_at",), ("beginning", "end"))
    if "max_line_bytes" in item:
        values["max_line_bytes"] = parse_size(item["max_line_bytes"], where + ("max_line_bytes",), minimum=256)
    for name in ("line_timeout", "rotate_wait"):
        if name in item:
            values[name] = check_duration(item[name], where + (name,))
    if "tenant" in item:
        values["tenant"] = check_str(item["tenant"], where + ("tenant",))
    return FileSource(**values)


def _globs(value: Any, where: tuple, empty: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (not empty and not value):
        raise ConfigError.at(where, f"expected a glob or a {'' if empty else 'non-empty '}list of globs, "
                                    f"got {describe(value)}")
    return tuple(check_str(glob, where + (index,)) for index, glob in enumerate(value))


def _service(value: Any, where: tuple) -> str:
    """A name, a template of the path's parts, or a regex with a ``service`` group."""
    value = check_str(value, where)
    if "(?P<service>" in value:
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError.at(where, f"not a regular expression: {exc}") from None
        return value
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ConfigError.at(where, f"not a template: {exc}") from None
    for name in names:
        if name not in TEMPLATE_FIELDS:
            raise ConfigError.at(where, f"unknown placeholder {{{name}}} (known: "
                                        f"{', '.join('{' + known + '}' for known in TEMPLATE_FIELDS)})")
    return value


def _multiline(value: Any, where: tuple) -> Multiline:
    if isinstance(value, str):
        return Multiline(value) if value in MULTILINE_RULES else Multiline("start", _pattern(value, where))
    value = check_mapping(value, where, _MULTILINE_KEYS)
    if ("rule" in value) == ("start" in value):
        raise ConfigError.at(where, "give either rule (java, python, go) or start (a regex)")
    values: dict[str, Any] = {}
    if "rule" in value:
        values["rule"] = check_choice(value["rule"], where + ("rule",), MULTILINE_RULES)
    else:
        values["rule"] = "start"
        values["start"] = _pattern(value["start"], where + ("start",))
    if "timeout" in value:
        values["timeout"] = check_duration(value["timeout"], where + ("timeout",), positive=True)
    if "max_lines" in value:
        values["max_lines"] = check_int(value["max_lines"], where + ("max_lines",), minimum=1)
    return Multiline(**values)


def _pattern(value: Any, where: tuple) -> str:
    value = check_str(value, where)
    try:
        re.compile(value.encode())
    except re.error as exc:
        raise ConfigError.at(where, f"expected java, python, go or a regular expression ({exc})") from None
    return value


def parse_size(value: Any, where: tuple, minimum: int) -> int:
    """Bytes: an integer, or ``64KiB``, ``1MiB``... (as ``collector.max_line_bytes``)."""
    size = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    if size is None:
        raise ConfigError.at(where, f"expected a size (e.g. 65536, 64KiB, 1MiB), got {describe(value)}")
    if size < minimum:
        raise ConfigError.at(where, f"expected a size of at least {minimum} bytes, got {describe(value)}")
    return size


__all__ = ["AUTO", "FileSource", "MULTILINE_RULES", "Multiline", "SECTION", "SourcesConfig", "TEMPLATE_FIELDS",
           "parse_size", "parse_sources"]
