"""Check a user's ``--where`` SQL condition before it goes into a lake query.

A condition is parsed by DuckDB itself (``json_serialize_sql``) and accepted only when it
is one boolean expression over the record columns built from an allow-list of node
kinds and functions: no subquery, no table function, no statement, no parameter, no
reference to anything but a record column. So a condition can narrow a tenant's rows
but never reach another tenant's rows or any file.

"One expression" is checked twice, so that a condition cannot close the parenthesis it is put in
(``1=1) OR (1=1`` would turn ``filters AND (condition)`` into ``filters AND (1=1) OR (1=1)``):
DuckDB's tokenizer must find its parentheses balanced, never closing one it did not open
(parentheses inside string literals and quoted names do not count), and DuckDB's parser must read
``first AND (condition) AND last`` as one conjunction that starts and ends with those two markers.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import duckdb
import orjson

ALLOWED_CLASSES = frozenset({
    "COLUMN_REF", "CONSTANT", "COMPARISON", "CONJUNCTION", "OPERATOR", "BETWEEN", "CAST", "CASE", "FUNCTION",
    "TYPE",  # the target type of a CAST
})
ALLOWED_FUNCTIONS = frozenset({
    # text
    "lower", "upper", "contains", "starts_with", "ends_with", "prefix", "suffix", "length", "strlen", "trim",
    "ltrim", "rtrim", "substr", "substring", "concat", "||", "replace", "left", "right", "regexp_matches",
    "regexp_full_match", "regexp_extract", "~~", "!~~", "~~*", "!~~*", "~~~", "like_escape", "ilike_escape",
    "json_extract", "json_extract_string", "json_exists", "json_valid",
    # numbers
    "+", "-", "*", "/", "//", "%", "abs", "round", "floor", "ceil", "trunc", "greatest", "least", "isnan", "isinf",
    # null handling
    "coalesce", "ifnull", "nullif",
    # time
    "now", "current_timestamp", "get_current_timestamp", "to_timestamp", "epoch", "epoch_ms", "date_trunc",
    "date_part", "datepart", "extract", "year", "month", "day", "hour", "minute", "second", "dayofweek",
    "strftime", "strptime", "make_timestamp", "age", "time_bucket", "to_microseconds", "to_milliseconds",
    "to_seconds", "to_minutes", "to_hours", "to_days", "to_weeks", "to_months", "to_years",
})
FORBIDDEN_TEXT = re.compile(r";|--|/\*|\*/")
MAX_LENGTH = 4000
FIRST, LAST = "__logwarden_first__", "__logwarden_last__"  # markers around the condition


class UnsafeCondition(ValueError):
    """A ``--where`` condition that is not a plain boolean expression over record columns."""


def _check_parentheses(condition: str) -> None:
    """Refuse a condition whose parentheses (outside literals and quoted names, as DuckDB's tokenizer
    sees them) close one they did not open, or are left open."""
    data = condition.encode()  # the tokenizer's positions are byte offsets
    tokens = duckdb.tokenize(condition)
    depth = 0
    for number, (start, kind) in enumerate(tokens):
        if kind != duckdb.token_type.operator:
            continue
        stop = tokens[number + 1][0] if number + 1 < len(tokens) else len(data)
        for char in data[start:stop]:
            depth += (char == ord("(")) - (char == ord(")"))
            if depth < 0:
                raise UnsafeCondition("a condition must be one expression: a ')' closes a parenthesis it did not open")
    if depth:
        raise UnsafeCondition("a condition must be one expression: a '(' is never closed")


def _parse(condition: str) -> dict[str, Any]:
    con = duckdb.connect()
    try:
        text = con.execute("SELECT json_serialize_sql(?)",
                           [f'SELECT * FROM src WHERE "{FIRST}" AND ({condition}) AND "{LAST}"']).fetchone()[0]
    finally:
        con.close()
    tree = orjson.loads(text)
    if tree.get("error"):
        raise UnsafeCondition(f"not a valid SQL condition: {tree.get('error_message', 'syntax error')}")
    return tree


def _only_where(tree: dict[str, Any]) -> dict[str, Any]:
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise UnsafeCondition("a condition must be one expression")
    node = statements[0].get("node", {})
    if node.get("type") != "SELECT_NODE":
        raise UnsafeCondition("a condition must be one expression, not a query")
    table = node.get("from_table") or {}
    if table.get("type") != "BASE_TABLE" or table.get("table_name") != "src":
        raise UnsafeCondition("a condition must be one expression")
    extra = (node.get("modifiers"), node.get("group_expressions"), node.get("having"), node.get("qualify"),
             node.get("sample"), (node.get("cte_map") or {}).get("map"))
    if any(extra):
        raise UnsafeCondition("a condition must be one expression, without clauses")
    where = node.get("where_clause")
    if not isinstance(where, dict):
        raise UnsafeCondition("empty condition")
    return where


def _marker(node: Any, name: str) -> bool:
    return isinstance(node, dict) and node.get("class") == "COLUMN_REF" and node.get("column_names") == [name]


def _between_markers(where: dict[str, Any]) -> list[dict[str, Any]]:
    """The condition's top-level expressions: ``first AND (condition) AND last`` must be one conjunction
    from marker to marker (DuckDB flattens the condition's own top-level ANDs into it)."""
    children = where.get("children") or []
    if (where.get("type") != "CONJUNCTION_AND" or len(children) < 3 or not _marker(children[0], FIRST)
            or not _marker(children[-1], LAST)):
        raise UnsafeCondition("a condition must be one expression")
    inner = children[1:-1]
    if any(_marker(child, FIRST) or _marker(child, LAST) for child in inner):
        raise UnsafeCondition("a condition must be one expression")
    return inner


def _children(node: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for key, value in node.items():
        if key in ("order_bys", "filter") and value:
            if key == "filter" or value.get("orders"):
                raise UnsafeCondition("FILTER and ORDER BY are not allowed in a condition")
            continue
        if isinstance(value, dict) and "class" in value:
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "class" in item:
                    found.append(item)
                elif isinstance(item, dict):  # CASE checks: {when_expr, then_expr}
                    found.extend(v for v in item.values() if isinstance(v, dict) and "class" in v)
    return found


def _check(node: dict[str, Any], columns: Collection[str]) -> None:
    kind = node.get("class")
    if kind not in ALLOWED_CLASSES:
        raise UnsafeCondition(f"{str(kind).lower()} expressions are not allowed in a condition")
    if kind == "COLUMN_REF":
        names = node.get("column_names") or []
        if len(names) != 1 or names[0].lower() not in {c.lower() for c in columns}:
            raise UnsafeCondition(f"unknown column {'.'.join(names)!r} (columns: {', '.join(columns)})")
    elif kind == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if node.get("schema") or node.get("catalog") or name not in ALLOWED_FUNCTIONS:
            raise UnsafeCondition(f"function {name!r} is not allowed in a condition")
        if node.get("distinct"):
            raise UnsafeCondition("DISTINCT is not allowed in a condition")
    for child in _children(node):
        _check(child, columns)


def validate_condition(condition: str, columns: Collection[str]) -> str:
    """``condition`` unchanged when it is safe to put in a WHERE clause; raises UnsafeCondition otherwise."""
    condition = condition.strip()
    if not condition:
        raise UnsafeCondition("empty condition")
    if len(condition) > MAX_LENGTH:
        raise UnsafeCondition(f"condition longer than {MAX_LENGTH} characters")
    if FORBIDDEN_TEXT.search(condition):
        raise UnsafeCondition("statements, ';' and comments are not allowed in a condition")
    _check_parentheses(condition)
    for node in _between_markers(_only_where(_parse(condition))):
        _check(node, columns)
    return condition
