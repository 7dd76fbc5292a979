"""Load YAML configuration while remembering where each value stands, for errors that point at the line."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

PathKey = tuple  # a JSON path: keys and list indexes from the document root


class ConfigError(ValueError):
    """A configuration file was refused; the message names the file, the line and the problem."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.problem = message
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")


def check_section(section: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    """``section`` when it is a mapping of only ``keys``; otherwise ConfigError naming ``where``."""
    if not isinstance(section, dict):
        raise ConfigError(where, None, "must be a mapping")
    unknown = sorted(set(section) - set(keys))
    if unknown:
        raise ConfigError(where, None, f"unknown key(s) {', '.join(unknown)} (expected: {', '.join(keys)})")
    return section


@dataclass
class YamlDocument:
    """A parsed YAML document plus the line of every key and list item in it."""

    data: Any
    source: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[Any]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, path: Iterable[Any], message: str) -> ConfigError:
        """A ConfigError located at ``path``."""
        return ConfigError(self.source, self.line_of(path), message)


def _record_lines(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = path + (key_node.value,)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, path + (index,), lines)


def parse_yaml(text: str, source: str = "<string>") -> YamlDocument:
    """Parse YAML text; a syntax error becomes a ConfigError with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(source, line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, None, f"invalid YAML: {exc}") from None
    lines: dict[PathKey, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return YamlDocument(data=data, source=source, lines=lines)


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse a YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror}") from None
    return parse_yaml(text, str(path))
