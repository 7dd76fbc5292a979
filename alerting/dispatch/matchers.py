"""Label matchers as Alertmanager writes them: ``name="value"``, ``name!="value"``, ``name=~"regex"``,
``name!~"regex"``; and, beyond Alertmanager, numeric comparisons ``name>=0.8``, ``>``, ``<=``, ``<``
(for the ``actionable`` label: ``actionable>=0.8``).

A regular expression is anchored at both ends (``service=~"pay.*"`` does not match ``prepay``), and
a label that an alert does not have has the empty value (``team=""`` matches an alert without a
team, ``team!="x"`` too). Values may be double-quoted (with ``\\"`` and ``\\\\`` escapes) or bare.
A numeric comparison holds only for a label that is there and is a number: an alert without the label
matches neither ``actionable>=0.8`` nor ``actionable<0.8``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

EQUAL = "="
NOT_EQUAL = "!="
REGEX = "=~"
NOT_REGEX = "!~"
AT_LEAST = ">="
AT_MOST = "<="
ABOVE = ">"
BELOW = "<"
_COMPARE = {AT_LEAST: float.__ge__, AT_MOST: float.__le__, ABOVE: float.__gt__, BELOW: float.__lt__}
OPERATORS = (REGEX, NOT_REGEX, NOT_EQUAL, AT_LEAST, AT_MOST, EQUAL, ABOVE, BELOW)  # longest first, for parsing
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|>=|<=|=|>|<)\s*(.*?)\s*")


@dataclass(frozen=True)
class Matcher:
    """One condition on one label."""

    name: str
    op: str
    value: str
    pattern: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: str, value: str) -> "Matcher":
        """A matcher; ValueError for an unknown operator, a bad label name or regular expression."""
        if op not in OPERATORS:
            raise ValueError(f"unknown matcher operator {op!r} (use =, !=, =~, !~, >=, >, <= or <)")
        if not LABEL_NAME.fullmatch(name):
            raise ValueError(f"not a label name: {name!r}")
        pattern = None
        if op in _COMPARE and _number(value) is None:
            raise ValueError(f"{name}{op}{value}: a comparison needs a number, not {value!r}")
        if op in (REGEX, NOT_REGEX):
            try:
                pattern = re.compile(f"^(?:{value})$", re.DOTALL)
            except re.error as exc:
                raise ValueError(f"bad regular expression {value!r}: {exc}") from None
        return cls(name, op, value, pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string)."""
        actual = str(labels.get(self.name, "") or "")
        if self.op == EQUAL:
            return actual == self.value
        if self.op == NOT_EQUAL:
            return actual != self.value
        if self.op in _COMPARE:
            number = _number(actual)
            return number is not None and _COMPARE[self.op](number, float(self.value))
        assert self.pattern is not None
        found = self.pattern.match(actual) is not None
        return found if self.op == REGEX else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    def to_dict(self) -> dict[str, str]:
        """Plain data: ``{"name", "op", "value"}``."""
        return {"name": self.name, "op": self.op, "value": self.value}


def _number(text: str) -> float | None:
    """``text`` as a finite number, or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        body = text[1:-1]
        out, escaped = [], False
        for char in body:
            if escaped:
                out.append({"n": "\n", "t": "\t"}.get(char, char))
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        if escaped:
            raise ValueError(f"unterminated escape in {text!r}")
        return "".join(out)
    if '"' in text:
        raise ValueError(f"badly quoted value {text!r}")
    return text


def parse_matcher(text: str) -> Matcher:
    """A matcher from its text, e.g. ``severity="CRITICAL"`` or ``service=~pay.*``; ValueError if bad."""
    match = _MATCHER.fullmatch(text)
    if match is None:
        raise ValueError(f"not a matcher: {text!r} (expected name=\"value\", !=, =~, !~ or a comparison >=, >, <=, <)")
    name, op, value = match.groups()
    return Matcher.of(name, op, _unquote(value))


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Matchers from several texts; a text may hold several separated by commas, in braces or not
    (``{team="payments",severity=~"HIGH|CRITICAL"}``)."""
    out: list[Matcher] = []
    for text in texts:
        body = text.strip()
        if body.startswith("{") and body.endswith("}"):
            body = body[1:-1]
        out.extend(parse_matcher(part) for part in split_matchers(body))
    return tuple(out)


def split_matchers(text: str) -> list[str]:
    """The matcher texts of a comma-separated list (commas inside quotes kept)."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher is satisfied (True for none)."""
    return all(m.matches(labels) for m in matchers)


def from_labels(match: Mapping[str, str] | None, match_re: Mapping[str, str] | None) -> tuple[Matcher, ...]:
    """Matchers of the older ``match:`` (equality) and ``match_re:`` (regular expression) maps."""
    out = [Matcher.of(str(k), EQUAL, str(v)) for k, v in (match or {}).items()]
    out += [Matcher.of(str(k), REGEX, str(v)) for k, v in (match_re or {}).items()]
    return tuple(out)


__all__ = [
    "ABOVE",
    "AT_LEAST",
    "AT_MOST",
    "BELOW",
    "EQUAL",
    "NOT_EQUAL",
    "NOT_REGEX",
    "REGEX",
    "Matcher",
    "from_labels",
    "matches_all",
    "parse_matcher",
    "parse_matchers",
    "split_matchers",
]
