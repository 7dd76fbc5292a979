"""Load and validate a rules file (``schemas/anomaly_schema.yaml``) into rule specifications.

The file is read with the one YAML loader (:mod:`logwarden.common.yamlconf`: duplicate keys and alias
bombs refused, ``${ENV}`` expanded). A bad file is refused as a whole with a ConfigError naming the
line, the rule and the key: ``rules.yaml:32: rules.error_spike.severity: 'URGENT' is not one of [...]``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from logwarden.common.durations import parse_duration
from logwarden.common.yamlconf import ConfigError, YamlDocument, load_yaml, parse_yaml
from logwarden.monitoring.rules.filters import check_regex
from logwarden.monitoring.rules.registry import kinds
from logwarden.monitoring.rules.spec_schema import COMMON, DURATION, SEVERITIES, rules_file_schema

DEFAULT_ROUTING = {"CRITICAL": ["pagerduty"], "HIGH": ["slack"], "MEDIUM": ["email"], "LOW": ["dashboard"]}


@dataclass(frozen=True)
class Threshold:
    """A comparison such as ``> 100``."""

    op: str
    value: float

    def __str__(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.op} {value}"


@dataclass(frozen=True)
class RuleSpec:
    """One detector, as declared in the rules file (durations in seconds)."""

    name: str
    kind: str
    severity: str
    threshold: Threshold
    filter: Any = None
    group_by: tuple[str, ...] = ()
    window: float = 0.0
    field: str | None = None
    forget_after: float = 86400.0
    realert: float = 300.0
    allowed_lateness: float = 60.0
    channels: tuple[str, ...] = ()
    action: str = ""
    description: str = ""
    enabled: bool = True
    source: dict = dc_field(default_factory=dict, compare=False, hash=False)
    options: dict = dc_field(default_factory=dict, compare=False, hash=False)
    shards: int = 1

    def option(self, name: str, default: Any = None) -> Any:
        """A kind-specific key of the declaration (durations in seconds), or ``default``."""
        value = self.options.get(name)
        return default if value is None else value

    @property
    def fingerprint(self) -> str:
        """A hash of the declaration: equal fingerprints mean the rule did not change."""
        return hashlib.sha256(orjson.dumps(self.source, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(frozen=True)
class RulesFile:
    """The rules and the routing of a rules file."""

    rules: tuple[RuleSpec, ...]
    routing: dict[str, list[str]]
    source: str

    def by_name(self) -> dict[str, RuleSpec]:
        """The enabled rules by name."""
        return {rule.name: rule for rule in self.rules if rule.enabled}


def _key(doc: YamlDocument, path: list) -> str:
    """The dotted key of ``path`` as messages show it: a rule by its name (``rules.error_spike.severity``),
    or by its index when it has none."""
    shown = [str(p) for p in path]
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
        raw = rules[path[1]] if isinstance(rules, list) and path[1] < len(rules) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str) and name:
            shown[1] = name
    return ".".join(shown)


def _error(doc: YamlDocument, path: list, message: str) -> ConfigError:
    """``FILE:LINE: rules.NAME.key: message``, located at ``path``."""
    return doc.error(path, message, key=_key(doc, path))


def _schema_error(doc: YamlDocument, error: jsonschema.ValidationError) -> ConfigError:
    return _error(doc, list(error.absolute_path), error.message)


def _check_regexes(doc: YamlDocument, node: Any, path: list) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_regexes(doc, item, path + [i])
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "regex":
                try:
                    re.compile(value)
                    check_regex(value)
                except (re.error, ValueError) as exc:
                    raise _error(doc, path + [key], f"invalid regular expression: {exc}") from None
            else:
                _check_regexes(doc, value, path + [key])


def _duration(doc: YamlDocument, value: Any, path: list, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _error(doc, path, str(exc)) from None


def _options(doc: YamlDocument, index: int, raw: dict) -> dict[str, Any]:
    entry = kinds().get(raw["kind"])
    properties = entry.properties if entry is not None else {}
    options = {}
    for key, value in raw.items():
        if key in COMMON:
            continue
        if properties.get(key) == DURATION:
            value = _duration(doc, value, ["rules", index, key], 0.0)
        options[key] = value
    return options


def _rule(doc: YamlDocument, index: int, raw: dict, defaults: dict) -> RuleSpec:
    path = ["rules", index]
    group_by = raw.get("group_by", ())
    group_by = (group_by,) if isinstance(group_by, str) else tuple(group_by)
    threshold = raw.get("threshold") or {"op": ">=", "value": 1}
    field = raw.get("field")
    return RuleSpec(
        name=raw["name"], kind=raw["kind"], severity=raw["severity"],
        threshold=Threshold(threshold["op"], float(threshold["value"])),
        filter=raw.get("filter"), group_by=group_by,
        window=_duration(doc, raw.get("window"), path + ["window"], 0.0),
        field=field if isinstance(field, str) else None,
        forget_after=_duration(doc, raw.get("forget_after"), path + ["forget_after"], 86400.0),
        realert=_duration(doc, raw.get("realert", defaults.get("realert")), path + ["realert"], 300.0),
        allowed_lateness=_duration(doc, raw.get("allowed_lateness", defaults.get("allowed_lateness")),
                                   path + ["allowed_lateness"], 60.0),
        channels=tuple(raw.get("channels", ())), action=raw.get("action", ""),
        description=raw.get("description", ""), enabled=raw.get("enabled", True),
        source={**raw, "_defaults": defaults}, options=_options(doc, index, raw), shards=int(raw.get("shards", 1)),
    )


def _check_kind(doc: YamlDocument, index: int, raw: dict) -> None:
    """Checks a kind makes beyond the schema (e.g. step filters' regexes); raises a located ConfigError."""
    from logwarden.monitoring.rules.registry import rule_class

    try:
        cls = rule_class(raw["kind"])
    except (ImportError, KeyError):
        return
    check = getattr(cls, "check_declaration", None)
    if check is None:
        return
    problem = check(raw)
    if problem:
        key, message = problem
        raise _error(doc, ["rules", index, key], message)


def rules_from_document(doc: YamlDocument) -> RulesFile:
    """Validate a parsed rules document and build its specifications."""
    if not isinstance(doc.data, dict):
        raise doc.error([], "a rules file must be a mapping with a 'rules' list")
    errors = sorted(jsonschema.Draft202012Validator(rules_file_schema()).iter_errors(doc.data),
                    key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))), reverse=True)
    if errors:
        raise _schema_error(doc, errors[0])
    _check_regexes(doc, doc.data.get("rules"), ["rules"])
    defaults = doc.data.get("defaults") or {}
    for i, raw in enumerate(doc.data["rules"]):
        _check_kind(doc, i, raw)
    rules = tuple(_rule(doc, i, raw, defaults) for i, raw in enumerate(doc.data["rules"]))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            first = next(j for j, other in enumerate(rules) if other.name == rule.name)
            raise _error(doc, ["rules", i, "name"],
                         f"duplicate rule name (first at line {doc.line_of(['rules', first, 'name'])})")
        seen.add(rule.name)
    routing = {s: list(doc.data.get("routing", {}).get(s, DEFAULT_ROUTING[s])) for s in SEVERITIES}
    return RulesFile(rules=rules, routing=routing, source=doc.source)


def load_rules(path: str | Path) -> RulesFile:
    """Load and validate the rules file at ``path``."""
    return rules_from_document(load_yaml(path))


def parse_rules(text: str, source: str = "<rules>") -> RulesFile:
    """Load and validate rules from YAML text."""
    return rules_from_document(parse_yaml(text, source))
