"""Inhibition rules (``alerting.inhibit_rules``), as Alertmanager has them.

A firing alert that matches a rule's ``source_matchers`` mutes every alert that matches its
``target_matchers`` and has the same values of the ``equal`` labels (a label both lack counts as
equal), e.g. a ``service_down`` of a service mutes the ``error_spike`` of that service. An alert does
not inhibit itself. Muted alerts are still stored and shown, marked with what inhibited them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from logwarden.alerting.dispatch.matchers import Matcher, from_labels, matches_all, parse_matchers
from logwarden.alerting.notify.registry import SectionError

STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
LABEL_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
INHIBIT_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "source_matchers": STRINGS,
            "target_matchers": STRINGS,
            "source_match": LABEL_MAP,
            "source_match_re": LABEL_MAP,
            "target_match": LABEL_MAP,
            "target_match_re": LABEL_MAP,
            "equal": STRINGS,
        },
    },
}


@dataclass(frozen=True)
class InhibitRule:
    """One rule: sources mute targets that agree on the ``equal`` labels."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def mutes(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        """Whether an alert with labels ``source`` mutes one with labels ``target`` under this rule."""
        return (
            matches_all(self.target, target)
            and matches_all(self.source, source)
            and all(str(source.get(n, "") or "") == str(target.get(n, "") or "") for n in self.equal)
        )

    def describe(self) -> str:
        """The rule as text: ``{sources} mutes {targets} with equal (labels)``."""
        sources = ",".join(str(m) for m in self.source)
        targets = ",".join(str(m) for m in self.target)
        return f"{{{sources}}} mutes {{{targets}}} with equal ({', '.join(self.equal)})"


def _side(raw: Mapping[str, Any], side: str, path: list) -> tuple[Matcher, ...]:
    try:
        legacy = from_labels(raw.get(f"{side}_match"), raw.get(f"{side}_match_re"))
    except ValueError as exc:
        raise SectionError([*path, f"{side}_match"], str(exc)) from None
    parsed: list[Matcher] = list(legacy)
    for i, text in enumerate(raw.get(f"{side}_matchers") or ()):
        try:
            parsed.extend(parse_matchers([text]))
        except ValueError as exc:
            raise SectionError([*path, f"{side}_matchers", i], str(exc)) from None
    if not parsed:
        raise SectionError(path, f"an inhibition rule needs {side}_matchers")
    return tuple(parsed)


def parse_inhibit_rules(raw: Iterable[Mapping[str, Any]], path: list) -> tuple[InhibitRule, ...]:
    """The rules of a schema-validated ``inhibit_rules:`` list; SectionError at the key path."""
    return tuple(
        InhibitRule(
            source=_side(item, "source", [*path, i]),
            target=_side(item, "target", [*path, i]),
            equal=tuple(item.get("equal") or ()),
        )
        for i, item in enumerate(raw)
    )


def inhibitor(
    rules: Iterable[InhibitRule], labels: Mapping[str, str], firing: Iterable[tuple[Any, Mapping[str, str]]]
) -> tuple[Any, InhibitRule] | None:
    """The first firing alert (``(ref, labels)`` pairs, the alert itself left out by the caller) that
    mutes an alert with ``labels``, with the rule; None when nothing does."""
    firing = list(firing)
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        for ref, source in firing:
            if rule.mutes(source, labels):
                return ref, rule
    return None


__all__ = ["INHIBIT_SCHEMA", "InhibitRule", "inhibitor", "parse_inhibit_rules"]
