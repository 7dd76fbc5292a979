"""Compile a rule's filter into a vectorized predicate over an Arrow table of records."""
from __future__ import annotations

from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

Predicate = Callable[[pa.Table], pa.Array]
_COMPARE = {"gt": pc.greater, "gte": pc.greater_equal, "lt": pc.less, "lte": pc.less_equal}


def check_regex(pattern: str) -> None:
    """Raise ValueError when the Arrow (RE2) regex engine refuses ``pattern``."""
    try:
        pc.match_substring_regex(pa.array([""]), pattern)
    except pa.ArrowInvalid as exc:
        raise ValueError(str(exc)) from None


def _column(table: pa.Table, name: str) -> pa.ChunkedArray | None:
    return table[name] if name in table.column_names else None


def _leaf(spec: dict) -> Predicate:
    name = spec["field"]
    op, operand = next((k, v) for k, v in spec.items() if k != "field")

    def predicate(table: pa.Table) -> pa.Array:
        column = _column(table, name)
        if column is None:  # a field no record of the batch carries: every value is missing
            missing_matches = (op == "exists" and not operand) or op in ("not_equals", "not_in")
            return pa.array([missing_matches] * table.num_rows, pa.bool_())
        return _apply(column, op, operand)

    return predicate


def _apply(column: pa.ChunkedArray, op: str, operand: Any) -> pa.Array:
    if op == "exists":
        return pc.is_valid(column) if operand else pc.is_null(column)
    if op == "equals":
        return pc.equal(column, pa.scalar(operand).cast(column.type) if operand is not None else None)
    if op == "not_equals":
        return pc.invert(pc.fill_null(pc.equal(column, operand), False))
    if op == "in":
        return pc.is_in(column, value_set=pa.array(operand).cast(column.type))
    if op == "not_in":
        return pc.invert(pc.is_in(column, value_set=pa.array(operand).cast(column.type)))
    if op == "regex":
        return pc.match_substring_regex(column, operand)
    if op == "contains":
        return pc.match_substring(column, operand)
    return _COMPARE[op](column, operand)


def compile_filter(spec: Any) -> Predicate:
    """A predicate giving, for each row, whether it matches ``spec`` (no filter: every row)."""
    if spec is None:
        return lambda table: pa.array([True] * table.num_rows, pa.bool_())
    if isinstance(spec, list):
        return _all([compile_filter(item) for item in spec])
    if "all" in spec:
        return _all([compile_filter(item) for item in spec["all"]])
    if "any" in spec:
        parts = [compile_filter(item) for item in spec["any"]]
        return lambda table: _reduce(pc.or_, parts, table, default=False)
    if "not" in spec:
        inner = compile_filter(spec["not"])
        return lambda table: pc.invert(inner(table))
    return _null_is_false(_leaf(spec))


def _all(parts: list[Predicate]) -> Predicate:
    return lambda table: _reduce(pc.and_, parts, table, default=True)


def _reduce(combine: Callable, parts: list[Predicate], table: pa.Table, default: bool) -> pa.Array:
    if not parts:
        return pa.array([default] * table.num_rows, pa.bool_())
    result = parts[0](table)
    for part in parts[1:]:
        result = combine(result, part(table))
    return result


def _null_is_false(predicate: Predicate) -> Predicate:
    return lambda table: pc.fill_null(predicate(table), False)
