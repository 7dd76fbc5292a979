"""The one YAML loader of logwarden (configuration file, rules file, inventory, schemas).

It is PyYAML's SafeLoader with four additions, all applied before a single Python object
is built:

* **duplicate keys** are refused, naming the line of the second occurrence and its key path;
* **aliases are bounded**: the document is composed first (an alias is a shared reference
  to its anchor's node, so composing is cheap), its expanded size is measured, and a file
  that would expand past :data:`MAX_ALIASES` alias uses, :data:`MAX_NODES` values or
  :data:`MAX_DEPTH` levels of nesting (a YAML "billion laughs") is refused. Merge keys
  (``<<: *base``) are aliases too and count against the same budget;
* ``${NAME}`` in any string scalar, mapping keys included, is replaced by the environment
  variable ``NAME``; ``${NAME:-default}`` gives ``default`` when ``NAME`` is unset or empty,
  and ``$${`` is a literal ``${``. An unset variable without a default is an error;
* the line of every key and list item is recorded, so that every error names ``FILE:LINE``.

Every refusal is a :class:`ConfigError` whose message reads ``FILE:LINE: section.key: problem``.
Section parsers, which see plain Python values and not the file, raise ``ConfigError.at(keys,
problem)`` with the key path only; whoever holds the :class:`YamlDocument` adds the file and
the line with :meth:`YamlDocument.locate`. The ``check_*`` helpers below raise such errors.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from logwarden.common.durations import parse_duration

PathKey = tuple  # a JSON path: keys and list indexes from the document root

#: At most this many alias uses (``*name``, merge keys included) in one document.
MAX_ALIASES = 100
#: At most this many values (scalars, mappings, lists; keys count) once aliases are expanded.
MAX_NODES = 1_000_000
#: At most this many levels of nested mappings and lists.
MAX_DEPTH = 64

_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def dotted(keys: Iterable[Any]) -> str:
    """A key path as written in messages: ``collector.batch.max_age``, ``rules.3.window``."""
    return ".".join(str(k) for k in keys)


class ConfigError(ValueError):
    """A configuration file (or part of it) was refused.

    The message reads ``FILE:LINE: section.key: problem``; parts that are not known are left
    out. ``source``, ``line``, ``problem``, ``keys`` (the key path as a tuple, list indexes as
    integers) and ``key`` (its dotted form, as shown) are kept as attributes.
    """

    def __init__(self, source: str | None = None, line: int | None = None, message: str = "", *,
                 keys: Iterable[Any] = (), key: str | None = None) -> None:
        self.source = source
        self.line = line
        self.problem = message
        self.keys: tuple = tuple(keys)
        self.key = dotted(self.keys) if key is None else key
        super().__init__(self._text())

    def _text(self) -> str:
        parts = []
        if self.source:
            parts.append(f"{self.source}:{self.line}" if self.line else self.source)
        if self.key:
            parts.append(self.key)
        parts.append(self.problem)
        return ": ".join(parts)

    def __reduce__(self):  # survives pickling (Dask, Ray), subclasses with other signatures included
        return _restore_error, (type(self), self.args, self.__dict__.copy())

    @classmethod
    def at(cls, keys: Iterable[Any] | str, problem: str, *, key: str | None = None) -> "ConfigError":
        """An error at the key path ``keys`` (a tuple, or a dotted string), without file or line yet.

        ``key`` replaces the dotted path in the message (e.g. to keep a secret mapping key out of it).
        """
        if isinstance(keys, str):
            keys = tuple(keys.split(".")) if keys else ()
        return cls(None, None, problem, keys=keys, key=key)


def _restore_error(cls: type, args: tuple, state: dict) -> ConfigError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def describe(value: Any, secret: bool = False) -> str:
    """``value`` as shown after "got" in messages: ``'abc'``, ``12``, ``a list``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if secret:
        return "a string" if isinstance(value, str) else f"a value of type {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…" + text[0]


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

    def error(self, path: Iterable[Any], message: str, *, key: str | None = None) -> ConfigError:
        """A ConfigError located at ``path``: ``FILE:LINE: dotted.path: message`` (``key`` replaces
        the dotted path)."""
        path = tuple(path)
        return ConfigError(self.source, self.line_of(path), message, keys=path, key=key)

    def locate(self, error: ConfigError, prefix: Iterable[Any] = ()) -> ConfigError:
        """``error`` (raised with a key path by a section parser) with this file and the line of its key.

        ``prefix`` is prepended to the error's key path (for a parser that was given a sub-mapping).
        """
        prefix = tuple(prefix)
        keys = prefix + error.keys
        if error.key == dotted(error.keys):
            key = dotted(keys)
        else:
            key = ".".join(part for part in (dotted(prefix), error.key) if part)
        line = error.line if error.line and error.source == self.source else self.line_of(keys)
        return ConfigError(self.source, line, error.problem, keys=keys, key=key)


# loading ------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts alias uses and nesting depth while it composes (before any expansion)."""

    def __init__(self, stream: str, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self.alias_uses = 0
        self.depth = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self.alias_uses += 1
            if self.alias_uses > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise ConfigError(self.source, mark.line + 1,
                                  f"more than {MAX_ALIASES} aliases (*name) in one document; refused")
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(self.source, mark.line + 1,
                                  f"nested more than {MAX_DEPTH} levels deep; refused")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode] | None:
    """The mappings a merge key's value names (``<<: *a`` or ``<<: [*a, *b]``), or None if malformed."""
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode) and all(isinstance(n, yaml.MappingNode) for n in node.value):
        return list(node.value)
    return None


def _measure(root: yaml.Node, source: str) -> None:
    """Refuse a node graph whose expanded size (aliases followed) exceeds MAX_NODES, or that loops.

    Each distinct node is sized once (memoized), so this costs the size of the file, not of its expansion.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in open_nodes:
            raise ConfigError(source, _line(node), "an alias refers to a node that contains it (a loop); refused")
        open_nodes.add(ident)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                if total > MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > MAX_NODES:
                    break
        open_nodes.discard(ident)
        if total > MAX_NODES:
            raise ConfigError(source, _line(node),
                              f"aliases expand this to more than {MAX_NODES:,} values; refused "
                              f"(a YAML 'billion laughs'?)")
        sizes[ident] = total
        return total

    size(root)


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with ``${NAME}``/``${NAME:-default}`` replaced from ``env`` (default: ``os.environ``) and
    ``$${`` turned into ``${``. Raises ValueError naming an unset variable or a malformed reference."""
    if "${" not in text:
        return text
    env = os.environ if env is None else env

    def substitute(match: re.Match) -> str:
        whole, name, default = match.group(0), match.group(1), match.group(2)
        if whole == "$${":
            return "${"
        if name is None:
            raise ValueError("malformed ${...}: use ${NAME} or ${NAME:-default} (and $${ for a literal ${)")
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            raise ValueError(f"environment variable {name} is not set")
        return value

    return _ENV.sub(substitute, text)


class _Builder:
    """Builds Python objects from a measured node graph: env expansion, duplicate keys, lines."""

    def __init__(self, loader: _Loader, source: str, env: Mapping[str, str] | None) -> None:
        self.loader = loader
        self.source = source
        self.env = env
        self.lines: dict[PathKey, int] = {}

    def error(self, node: yaml.Node, keys: PathKey, problem: str) -> ConfigError:
        return ConfigError(self.source, _line(node), problem, keys=keys)

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.lines.setdefault(path, _line(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.error(node, path, f"unsupported tag {node.tag}")
            result = []
            for index, item in enumerate(node.value):
                self.lines[path + (index,)] = _line(item)
                result.append(self.build(item, path + (index,)))
            return result
        if node.tag != _MAP_TAG:
            raise self.error(node, path, f"unsupported tag {node.tag}")
        return self.mapping(node, path)

    def scalar(self, node: yaml.ScalarNode, path: PathKey, error_path: PathKey) -> Any:
        try:
            value = self.loader.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            raise self.error(node, error_path, f"invalid YAML: {exc.problem or exc}") from None
        if node.tag == _STR_TAG and isinstance(value, str):
            try:
                value = expand_env(value, self.env)
            except ValueError as exc:
                raise self.error(node, error_path, str(exc)) from None
        return value

    def key(self, node: yaml.Node, path: PathKey) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, path, "a key must be a plain value, not a mapping or a list")
        return self.scalar(node, path, path)  # a key's problem is reported at the mapping holding it

    def pairs(self, node: yaml.MappingNode, path: PathKey) -> list[tuple[Any, yaml.Node, yaml.Node]]:
        """The (key, key node, value node) of a mapping, merge keys flattened: explicit keys win over
        merged ones, earlier merged mappings over later ones; a key written twice is refused."""
        explicit: list[tuple[Any, yaml.Node, yaml.Node]] = []
        first_line: dict = {}
        merges: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = _merge_sources(value_node)
                if sources is None:
                    raise self.error(key_node, path, "a merge key (<<) takes a mapping or a list of mappings")
                merges.extend(sources)
                continue
            key = self.key(key_node, path)
            try:
                hash(key)
            except TypeError:
                raise self.error(key_node, path, "a key must be a plain value") from None
            if key in first_line:
                # named as written (``${TOKEN}``), never as expanded: keys may be secrets
                raise self.error(key_node, path + (key_node.value,), f"duplicate key (first at line {first_line[key]})")
            first_line[key] = _line(key_node)
            explicit.append((key, key_node, value_node))
        merged: list[tuple[Any, yaml.Node, yaml.Node]] = []
        seen = set(first_line)
        for source in merges:
            for entry in self.pairs(source, path):
                if entry[0] not in seen:
                    seen.add(entry[0])
                    merged.append(entry)
        return merged + explicit

    def mapping(self, node: yaml.MappingNode, path: PathKey) -> dict:
        result: dict = {}
        for key, key_node, value_node in self.pairs(node, path):
            self.lines[path + (key,)] = _line(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result


def parse_yaml(text: str, source: str = "<string>", env: Mapping[str, str] | None = None) -> YamlDocument:
    """Parse YAML text (see the module's docstring); every refusal is a ConfigError with its line.

    ``env`` replaces ``os.environ`` for ``${NAME}`` expansion.
    """
    loader = _Loader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(data=None, source=source, lines={})
        _measure(node, source)
        builder = _Builder(loader, source, env)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(source, line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(source, None, "nested too deeply; refused") from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, source=source, lines=builder.lines)


def load_yaml(path: str | Path, env: Mapping[str, str] | None = None) -> YamlDocument:
    """Read and parse a YAML file (see :func:`parse_yaml`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), None, f"not UTF-8 text: {exc.reason}") from None
    return parse_yaml(text, str(path), env)


# checks for section parsers -----------------------------------------------------------------------


def check_mapping(value: Any, keys: Sequence[Any], known: Iterable[str] | None = None) -> dict:
    """``value`` as a mapping (null: empty); with ``known``, an unknown key is refused naming the known ones."""
    keys = tuple(keys)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError.at(keys, f"expected a mapping, got {describe(value)}")
    if known is not None:
        known = tuple(known)
        for name in value:
            if name not in known:
                what = "section" if not keys else "key"
                raise ConfigError.at(keys + (name,), f"unknown {what} (known {what}s: {', '.join(sorted(known))})")
    return dict(value)


def check_section(section: Any, keys: Iterable[str], where: str | Sequence[Any]) -> dict[str, Any]:
    """``section`` (null: empty) when it is a mapping of only ``keys``; ``where`` is its key path."""
    path = tuple(where.split(".")) if isinstance(where, str) else tuple(where)
    return check_mapping(section, path, keys)


def check_int(value: Any, keys: Sequence[Any], minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (a string of digits too, as ``${ENV}`` gives) within ``minimum``..``maximum``."""
    number = value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or \
            (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        if minimum is not None and maximum is not None:
            wanted = f"an integer from {minimum} to {maximum}"
        elif minimum is not None:
            wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        else:
            wanted = "an integer" if maximum is None else f"an integer <= {maximum}"
        raise ConfigError.at(keys, f"expected {wanted}, got {describe(value)}")
    return number


def check_bool(value: Any, keys: Sequence[Any]) -> bool:
    """``true`` or ``false`` (the strings too, as ``${ENV}`` gives)."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise ConfigError.at(keys, f"expected true or false, got {describe(value)}")
    return value


def check_str(value: Any, keys: Sequence[Any], *, empty: bool = False, secret: bool = False) -> str:
    """A string (non-empty unless ``empty``); ``secret`` keeps the value out of the message."""
    if not isinstance(value, str) or (not empty and not value):
        wanted = "a string" if empty else "a non-empty string"
        raise ConfigError.at(keys, f"expected {wanted}, got {describe(value, secret)}")
    return value


def check_str_list(value: Any, keys: Sequence[Any], *, empty: bool = True) -> tuple[str, ...]:
    """A list of non-empty strings (non-empty itself unless ``empty``)."""
    if not isinstance(value, list) or (not empty and not value):
        raise ConfigError.at(keys, f"expected a {'' if empty else 'non-empty '}list of strings, got {describe(value)}")
    return tuple(check_str(item, (*keys, index)) for index, item in enumerate(value))


def check_choice(value: Any, keys: Sequence[Any], choices: Iterable[str]) -> str:
    """One of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError.at(keys, f"expected one of {', '.join(choices)}, got {describe(value)}")
    return value


def check_duration(value: Any, keys: Sequence[Any], *, positive: bool = False) -> float:
    """Seconds in a duration such as ``500ms``, ``30s``, ``5m``, ``2h``, ``7d`` (a bare number is seconds)."""
    try:
        seconds = parse_duration(value) if isinstance(value, (str, int, float)) else None
    except ValueError:
        seconds = None
    if seconds is None or (positive and seconds <= 0):
        wanted = "a duration longer than 0s" if positive and seconds is not None else "a duration"
        raise ConfigError.at(keys, f"expected {wanted} (e.g. 500ms, 30s, 5m, 2h, 7d), got {describe(value)}")
    return seconds


__all__ = [
    "MAX_ALIASES", "MAX_DEPTH", "MAX_NODES", "ConfigError", "YamlDocument", "check_bool", "check_choice",
    "check_duration", "check_int", "check_mapping", "check_section", "check_str", "check_str_list", "describe",
    "dotted", "expand_env", "load_yaml", "parse_yaml",
]
