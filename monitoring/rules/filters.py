"""Compile a rule's filter into a vectorized predicate over an Arrow table of records.

Leaves test one field: ``equals``, ``not_equals``, ``in``, ``not_in``, ``regex``, ``contains``,
``gt``/``gte``/``lt``/``lte``, ``range: [low, high]`` (inclusive) and ``exists``; ``{template: T}``
matches records of a message template (``<*>`` and ``<NAME>`` placeholders are wildcards).
A field that is not a column is looked up in the record's JSON ``attributes`` (dotted paths reach
nested values). ``all`` evaluates its parts in order on the rows still matching, cheapest first,
so a regex only runs on the rows the other conditions kept. Predicates take an optional ``cache``
dict shared by the rules of one batch, so a condition several rules share is evaluated once.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

Predicate = Callable[..., pa.Array]
_COMPARE = {"gt": pc.greater, "gte": pc.greater_equal, "lt": pc.less, "lte": pc.less_equal}
_PLACEHOLDER = re.compile(r"<\*>|<[A-Z_]+>")
_COSTLY = ("regex", "template", "contains")


def check_regex(pattern: str) -> None:
    """Raise ValueError when the Arrow (RE2) regex engine refuses ``pattern``."""
    try:
        pc.match_substring_regex(pa.array([""]), pattern)
    except pa.ArrowInvalid as exc:
        raise ValueError(str(exc)) from None


def template_regex(template: str) -> str:
    """An anchored RE2 pattern matching the messages of ``template`` (placeholders match any text)."""
    parts = _PLACEHOLDER.split(template)
    return "^" + "(?s:.*?)".join(re.escape(part) for part in parts) + "$"


def _from_attributes(table: pa.Table, name: str) -> pa.Array:
    path = name.removeprefix("attributes.").split(".")
    attributes = table["attributes"].combine_chunks() if table.num_rows else pa.array([], pa.string())
    candidates = np.flatnonzero(np.asarray(
        pc.fill_null(pc.match_substring(attributes, f'"{path[-1]}"'), False).to_numpy(zero_copy_only=False)))
    values: list[Any] = [None] * table.num_rows
    texts = attributes.take(pa.array(candidates, pa.int64())).to_pylist() if len(candidates) else []
    for row, text in zip(candidates, texts):
        try:
            value: Any = orjson.loads(text)
            for step in path:
                value = value.get(step) if isinstance(value, dict) else None
        except orjson.JSONDecodeError:
            value = None
        values[row] = value
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.float64())
    return pa.array([None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode() for v in values],
                    pa.string())


def field_values(table: pa.Table, name: str) -> pa.Array | pa.ChunkedArray:
    """The values of field ``name`` for every row: the column, else the attribute of that name, else nulls."""
    if name in table.column_names:
        return table[name]
    if "attributes" in table.column_names and name != "attributes":
        return _from_attributes(table, name)
    return pa.nulls(table.num_rows, pa.string())


def _scalar(operand: Any, type_: pa.DataType) -> pa.Scalar:
    try:
        return pa.scalar(operand).cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.scalar(str(operand))


def _value_set(operand: list, type_: pa.DataType) -> pa.Array:
    try:
        return pa.array(operand).cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.array([str(v) for v in operand], pa.string())


def _apply(column: Any, op: str, operand: Any) -> Any:
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if op == "exists":
        return pc.is_valid(column) if operand else pc.is_null(column)
    if op == "equals":
        return pc.equal(column, _scalar(operand, column.type)) if operand is not None else pc.is_null(column)
    if op == "not_equals":
        return pc.invert(pc.fill_null(pc.equal(column, _scalar(operand, column.type)), False))
    if op == "in":
        return pc.is_in(column, value_set=_value_set(operand, column.type))
    if op == "not_in":
        return pc.invert(pc.is_in(column, value_set=_value_set(operand, column.type)))
    if op == "regex":
        return pc.match_substring_regex(_text(column), operand)
    if op == "contains":
        return pc.match_substring(_text(column), operand)
    if op == "range":
        low, high = operand
        return pc.and_(pc.greater_equal(column, low), pc.less_equal(column, high))
    return _COMPARE[op](column, operand)


def _text(column: Any) -> Any:
    return column if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) else \
        pc.cast(column, pa.string())


def _as_array(result: Any, rows: int) -> pa.BooleanArray:
    if isinstance(result, pa.ChunkedArray):
        result = result.combine_chunks() if result.num_chunks != 1 else result.chunk(0)
    if len(result) != rows:
        raise ValueError("predicate length mismatch")
    return pc.fill_null(result, False)


def _cached(key: str, compute: Callable[[pa.Table], Any]) -> Predicate:
    def predicate(table: pa.Table, cache: dict | None = None) -> pa.BooleanArray:
        if cache is not None:
            slot = (id(table), key)
            found = cache.get(slot)
            if found is None:
                found = cache[slot] = _as_array(compute(table), table.num_rows)
            return found
        return _as_array(compute(table), table.num_rows)

    predicate.cost = 2 if any(f'"{op}"' in key for op in _COSTLY) else 1  # type: ignore[attr-defined]
    return predicate


def _leaf(spec: dict) -> Predicate:
    key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS).decode()
    if "template" in spec:
        pattern = template_regex(spec["template"])
        text = spec["template"]

        def template_match(table: pa.Table) -> Any:
            by_message = pc.fill_null(pc.match_substring_regex(table["message"], pattern), False)
            if "template" not in table.column_names:
                return by_message
            return pc.or_(pc.fill_null(pc.equal(table["template"], text), False), by_message)

        return _cached(key, template_match)
    name = spec["field"]
    op, operand = next((k, v) for k, v in spec.items() if k != "field")
    if op == "regex":
        check_regex(operand)
    return _cached(key, lambda table: _apply(field_values(table, name), op, operand))


def compile_filter(spec: Any) -> Predicate:
    """A predicate ``(table, cache=None) -> BooleanArray`` giving whether each row matches ``spec``
    (no filter: every row)."""
    if spec is None:
        return _cached("true", lambda table: pa.array(np.ones(table.num_rows, bool)))
    if isinstance(spec, list):
        return _all([compile_filter(item) for item in spec])
    if "all" in spec:
        return _all([compile_filter(item) for item in spec["all"]])
    if "any" in spec:
        return _any([compile_filter(item) for item in spec["any"]])
    if "not" in spec:
        inner = compile_filter(spec["not"])

        def negated(table: pa.Table, cache: dict | None = None) -> pa.BooleanArray:
            return pc.invert(inner(table, cache))

        negated.cost = inner.cost  # type: ignore[attr-defined]
        return negated
    return _leaf(spec)


def _all(parts: list[Predicate]) -> Predicate:
    parts = sorted(parts, key=lambda p: getattr(p, "cost", 1))

    def conjunction(table: pa.Table, cache: dict | None = None) -> pa.BooleanArray:
        if not parts:
            return pa.array(np.ones(table.num_rows, bool))
        mask = parts[0](table, cache)
        for part in parts[1:]:
            kept = int(pc.sum(mask).as_py() or 0)
            if kept == 0:
                return mask
            if getattr(part, "cost", 1) > 1 and kept < table.num_rows // 2:
                rows = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False)))
                sub = np.asarray(part(table.take(pa.array(rows)), None).to_numpy(zero_copy_only=False))
                result = np.zeros(table.num_rows, bool)
                result[rows[sub]] = True
                mask = pa.array(result)
            else:
                mask = pc.and_(mask, part(table, cache))
        return mask

    conjunction.cost = max((getattr(p, "cost", 1) for p in parts), default=1)  # type: ignore[attr-defined]
    return conjunction


def _any(parts: list[Predicate]) -> Predicate:
    parts = sorted(parts, key=lambda p: getattr(p, "cost", 1))

    def disjunction(table: pa.Table, cache: dict | None = None) -> pa.BooleanArray:
        if not parts:
            return pa.array(np.zeros(table.num_rows, bool))
        mask = parts[0](table, cache)
        for part in parts[1:]:
            missing = table.num_rows - int(pc.sum(mask).as_py() or 0)
            if missing == 0:
                return mask
            if getattr(part, "cost", 1) > 1 and missing < table.num_rows // 2:
                rows = np.flatnonzero(~np.asarray(mask.to_numpy(zero_copy_only=False)))
                sub = np.asarray(part(table.take(pa.array(rows)), None).to_numpy(zero_copy_only=False))
                result = np.asarray(mask.to_numpy(zero_copy_only=False)).copy()
                result[rows[sub]] = True
                mask = pa.array(result)
            else:
                mask = pc.or_(mask, part(table, cache))
        return mask

    disjunction.cost = max((getattr(p, "cost", 1) for p in parts), default=1)  # type: ignore[attr-defined]
    return disjunction
