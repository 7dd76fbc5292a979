"""The JSON Schema of ``schemas/anomaly_schema.yaml`` itself: what a rules file may say.

The common keys of every rule are declared here; each kind adds its own (see ``registry``), and a
rule may only use the keys of its kind.
"""
from __future__ import annotations

import logging
from typing import Any

from logwarden.monitoring.rules.registry import full_schema, kinds, registry_version

log = logging.getLogger(__name__)

SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
OPERATORS = [">", ">=", "<", "<=", "==", "!="]
LEAF_OPS = ["equals", "not_equals", "in", "not_in", "regex", "contains", "gt", "gte", "lt", "lte", "range", "exists"]
DURATION = {"type": ["string", "number"], "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$", "minimum": 0}

FILTER = {
    "oneOf": [
        {"type": "array", "items": {"$ref": "#/$defs/filter"}},
        {"type": "object", "required": ["all"], "additionalProperties": False,
         "properties": {"all": {"type": "array", "items": {"$ref": "#/$defs/filter"}}}},
        {"type": "object", "required": ["any"], "additionalProperties": False,
         "properties": {"any": {"type": "array", "items": {"$ref": "#/$defs/filter"}}}},
        {"type": "object", "required": ["not"], "additionalProperties": False,
         "properties": {"not": {"$ref": "#/$defs/filter"}}},
        {"type": "object", "required": ["template"], "additionalProperties": False,
         "properties": {"template": {"type": "string", "minLength": 1}}},
        {"type": "object", "required": ["field"], "additionalProperties": False, "minProperties": 2,
         "maxProperties": 2,
         "properties": {"field": {"type": "string", "minLength": 1},
                        "equals": {}, "not_equals": {},
                        "in": {"type": "array"}, "not_in": {"type": "array"},
                        "regex": {"type": "string"}, "contains": {"type": "string"},
                        "gt": {"type": "number"}, "gte": {"type": "number"},
                        "lt": {"type": "number"}, "lte": {"type": "number"},
                        "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                        "exists": {"type": "boolean"}}},
    ]
}


def threshold(ops: list[str]) -> dict[str, Any]:
    """The schema of a ``threshold: {op, value}`` whose operator is one of ``ops``."""
    return {"type": "object", "required": ["op", "value"], "additionalProperties": False,
            "properties": {"op": {"enum": ops}, "value": {"type": "number"}}}


COMMON = {
    "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"},
    "description": {"type": "string"},
    "kind": {"type": "string"},
    "enabled": {"type": "boolean"},
    "filter": {"$ref": "#/$defs/filter"},
    "group_by": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "severity": {"enum": SEVERITIES},
    "channels": {"type": "array", "items": {"type": "string"}},
    "action": {"type": "string"},
    "realert": DURATION,
    "allowed_lateness": DURATION,
    "shards": {"type": "integer", "minimum": 1, "maximum": 64},
}

_CACHE: dict[str, Any] = {}


def rules_file_schema() -> dict[str, Any]:
    """The schema of a whole rules file with the kinds registered now."""
    if _CACHE.get("version") == registry_version():
        return _CACHE["schema"]
    branches, names = [], []
    for name, entry in sorted(kinds().items()):
        try:
            own = full_schema(entry)
        except ImportError as exc:  # an optional kind whose dependencies are missing
            log.warning("rule kind %r is unavailable: %s", name, exc)
            continue
        names.append(name)
        if own is None:
            own = {"required": list(entry.required), "additionalProperties": False,
                   "properties": {**COMMON, **entry.properties}}
            if entry.dependent_required:
                own["dependentRequired"] = entry.dependent_required
        branches.append({"if": {"required": ["kind"], "properties": {"kind": {"const": name}}}, "then": own})
    rule = {"type": "object", "required": ["name", "kind", "severity"],
            "properties": {**COMMON, "kind": {"enum": names}}, "allOf": branches}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["rules"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1},
            "defaults": {"type": "object", "additionalProperties": False,
                         "properties": {"allowed_lateness": DURATION, "realert": DURATION}},
            "routing": {"type": "object", "additionalProperties": False,
                        "properties": {s: {"type": "array", "items": {"type": "string"}} for s in SEVERITIES}},
            "rules": {"type": "array", "items": rule},
        },
        "$defs": {"filter": FILTER},
    }
    _CACHE.update(version=registry_version(), schema=schema)
    return schema
