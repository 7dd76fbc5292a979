"""Which columns of a processed batch the detectors read, so that only those travel to them.

Every rule kind reads event time, tenant, level, service, message, the template and the attributes
(a field that is not a column is looked up there), and the ML features read the fields the log schema
declares. Beyond those, a rule reads only columns it names: in its filter, ``group_by``, ``field`` or
options. Every text of a rule's definition is taken as a possible column name, so a name can only be
kept too often, never missed; the lake-only columns (record id, reception time, source, the
enrichment of inventory, GeoIP, threat intelligence and user directory) travel only when a rule
names them.
"""
from __future__ import annotations

from typing import Any, Iterable

from logwarden.common.records import schema_field_names
from logwarden.monitoring.rules import RulesFile

ALWAYS = ("timestamp", "tenant", "level", "service", "message", "template_id", "template", "attributes")


def detector_columns(rules: RulesFile, also: Iterable[str] = ()) -> tuple[str, ...]:
    """The columns the rules of ``rules`` may read (plus ``also``), sorted; names that a batch does not
    have are skipped where the batch is cut."""
    names = {*ALWAYS, *schema_field_names(), *also}
    for spec in rules.rules:
        names.update(_texts(spec.source))
        names.update(_texts(spec.options))
    return tuple(sorted({name.split(".", 1)[0] for name in names if name}))


def _texts(value: Any) -> set[str]:
    """Every string in a nested definition (mapping keys included)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_texts(k) | _texts(v) for k, v in value.items())) if value else set()
    if isinstance(value, (list, tuple, set, frozenset)):
        return set().union(*(_texts(v) for v in value)) if value else set()
    return set()
