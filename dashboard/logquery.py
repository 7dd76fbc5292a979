"""What the log search page asks the search API (``GET /v1/search``): filters, any-field conditions and
keyset paging, all as the API's own query parameters.

Conditions the API has no parameter for (``field=value`` on any field, an alert's key, a tenant, the
page cursor) go into its ``where`` parameter, which the API checks (``logwarden.storage.sqlguard``) and
confines to the caller's tenant like every other filter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from logwarden.storage.columns import FILTER_FIELDS, column_names

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
CONDITION = re.compile(r"^\s*([^=<>!\s]+)\s*(=|!=|>=|<=|>|<)\s*(.*?)\s*$")
KEY_FIELDS = tuple(f for f in FILTER_FIELDS if f not in ("level", "tenant", "record_id"))
EXPORT_LIMIT = 10_000  # the API's largest page


class QueryError(ValueError):
    """A filter the page cannot turn into a query (shown to the user)."""


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _column(name: str) -> str:
    """A record column, or the field of the ``attributes`` JSON every other field lands in."""
    if not FIELD_NAME.match(name):
        raise QueryError(f"not a field name: {name!r}")
    if name in column_names():
        return f'"{name}"'
    return f"json_extract_string(attributes, {_literal('$.' + chr(34) + name + chr(34))})"


def parse_conditions(text: str) -> tuple[tuple[str, str, str], ...]:
    """``field=value`` conditions, one per line (also ``!=``, ``>``, ``>=``, ``<``, ``<=``)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        found = CONDITION.match(line)
        if found is None:
            raise QueryError(f"not a field=value condition: {line.strip()!r}")
        name, op, value = found.groups()
        _column(name)
        out.append((name, op, value))
    return tuple(out)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last record's timestamp (as the API wrote it) and id."""

    timestamp: str
    record_id: str


@dataclass(frozen=True)
class LogQuery:
    """The search page's filters; newest first."""

    services: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    text: str = ""
    conditions: tuple[tuple[str, str, str], ...] = ()
    key: str = ""
    tenant: str = ""
    page_size: int = 50
    cursors: tuple[Cursor, ...] = field(default=())  # one per page already passed

    @property
    def page(self) -> int:
        """The page number, from 1."""
        return len(self.cursors) + 1

    def next_page(self, cursor: Cursor) -> "LogQuery":
        """The page after this one, which ended at ``cursor``."""
        return replace(self, cursors=(*self.cursors, cursor))

    def previous_page(self) -> "LogQuery":
        """The page before this one (the first stays the first)."""
        return replace(self, cursors=self.cursors[:-1])

    def where(self, with_cursor: bool = True) -> str:
        """The ``where`` condition of everything without an API parameter of its own."""
        clauses = [f"{_column(name)} {op} {_literal(value)}" for name, op, value in self.conditions]
        if self.key:
            clauses.append("(" + " OR ".join(f'"{f}" = {_literal(self.key)}' for f in KEY_FIELDS) + ")")
        if self.tenant:
            clauses.append(f'"tenant" = {_literal(self.tenant)}')
        if with_cursor and self.cursors:
            last = self.cursors[-1]
            ts = f"CAST({_literal(last.timestamp)} AS TIMESTAMPTZ)"
            clauses.append(f'("timestamp" < {ts} OR ("timestamp" = {ts} AND record_id < {_literal(last.record_id)}))')
        return " AND ".join(clauses)

    def params(self, with_cursor: bool = True, limit: int | None = None) -> list[tuple[str, str]]:
        """The API's query parameters (``limit`` defaults to the page size)."""
        out: list[tuple[str, str]] = [("service", s) for s in self.services]
        out += [("level", lv) for lv in self.levels]
        for name, value in (("since", self.since), ("until", self.until), ("q", self.text),
                            ("where", self.where(with_cursor))):
            if value:
                out.append((name, value))
        out += [("sort", "timestamp"), ("order", "desc"), ("limit", str(limit or self.page_size))]
        return out


def split_list(text: str) -> tuple[str, ...]:
    """Comma- or space-separated values."""
    return tuple(v for v in re.split(r"[,\s]+", text or "") if v)
