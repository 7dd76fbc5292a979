"""The JSON Schema of ``schemas/anomaly_schema.yaml`` itself: what a rules file may say."""
from __future__ import annotations

SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
OPERATORS = [">", ">=", "<", "<=", "==", "!="]
KINDS = ["frequency", "flatline", "threshold"]
LEAF_OPS = ["equals", "not_equals", "in", "not_in", "regex", "contains", "gt", "gte", "lt", "lte", "exists"]
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
        {"type": "object", "required": ["field"], "additionalProperties": False, "minProperties": 2,
         "maxProperties": 2,
         "properties": {"field": {"type": "string", "minLength": 1},
                        "equals": {}, "not_equals": {},
                        "in": {"type": "array"}, "not_in": {"type": "array"},
                        "regex": {"type": "string"}, "contains": {"type": "string"},
                        "gt": {"type": "number"}, "gte": {"type": "number"},
                        "lt": {"type": "number"}, "lte": {"type": "number"},
                        "exists": {"type": "boolean"}}},
    ]
}

RULE = {
    "type": "object",
    "required": ["name", "kind", "severity"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"},
        "description": {"type": "string"},
        "kind": {"enum": KINDS},
        "enabled": {"type": "boolean"},
        "filter": {"$ref": "#/$defs/filter"},
        "group_by": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "window": DURATION,
        "field": {"type": "string"},
        "threshold": {"type": "object", "required": ["op", "value"], "additionalProperties": False,
                      "properties": {"op": {"enum": OPERATORS}, "value": {"type": "number"}}},
        "forget_after": DURATION,
        "realert": DURATION,
        "allowed_lateness": DURATION,
        "severity": {"enum": SEVERITIES},
        "channels": {"type": "array", "items": {"type": "string"}},
        "action": {"type": "string"},
    },
    "allOf": [
        {"if": {"properties": {"kind": {"enum": ["frequency", "flatline"]}}},
         "then": {"required": ["window", "threshold"]}},
        {"if": {"properties": {"kind": {"const": "threshold"}}},
         "then": {"required": ["field", "threshold"]}},
    ],
}

RULES_FILE = {
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
        "rules": {"type": "array", "items": RULE},
    },
    "$defs": {"filter": FILTER},
}
