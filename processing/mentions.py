"""Every address, domain, URL and file hash a record mentions, in its attributes and its message.

A record can name several values of a kind (a forwarded-for chain, a message with two addresses, a
URL and its referrer), so each kind yields (row, value) pairs rather than one value per record. No loop
runs per record: one cheap regular expression per column keeps the rows that can hold any kind rarer
than an IPv4 address (``Texts``), then ``pyarrow.compute.extract_regex`` takes the first value of every
such row together with the text after it, and runs again on those remainders until none holds another
value (one round per value of the record that names the most, at most ``MAX_PER_RECORD``).

Values are found by shape and must stand alone: an address is not part of a longer word or number
(``v1.2.3.4.5`` holds none), so C++ ``std::vector`` or a time ``10:30:00`` is no IPv6 address. IPv6
candidates are checked later, when they are parsed (``processing.addresses``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_PER_RECORD = 64  # values of one kind taken from one text of a record; the rest are ignored

_H = "[0-9A-Fa-f]{1,4}"
_V4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_V6 = (rf"(?:(?:{_H}:){{7}}{_H}|{_H}(?::{_H})*::(?:{_H}(?::{_H})*)?(?::{_V4})?"
       rf"|::{_H}(?::{_H})*(?:\.\d{{1,3}}\.\d{{1,3}}\.\d{{1,3}})?)")
_END = r"\.(?:$|[^0-9A-Za-z])"  # a sentence may end right after a value: a dot before no word character
_KEY = r'"(?P<k>[^"\\]+)":"'  # compact JSON: the key of a value that an address opens
IPV4 = rf"(?:^|[^0-9A-Za-z.])(?P<v>{_V4})(?:$|[^0-9A-Za-z.]|{_END})"
IPV6 = rf"(?:^|[^0-9A-Za-z:.])(?P<v>{_V6})(?:$|[^0-9A-Za-z:.]|{_END})"
# In the attributes, the leftmost match starts at the key's quote, so the key is taken whenever it is there.
KEYED = {IPV4: rf"(?:{_KEY}|^|[^0-9A-Za-z.])(?P<v>{_V4})(?:$|[^0-9A-Za-z.]|{_END})",
         IPV6: rf"(?:{_KEY}|^|[^0-9A-Za-z:.])(?P<v>{_V6})(?:$|[^0-9A-Za-z:.]|{_END})"}
URL = r"(?:^|[^A-Za-z0-9+.-])(?P<v>[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>\\]+)"
DOMAIN = rf"(?:^|[^A-Za-z0-9_.-])(?P<v>(?:[A-Za-z0-9_-]+\.)+[A-Za-z][A-Za-z]+)(?:$|[^A-Za-z0-9_.-]|{_END})"
HASH = r"(?:^|[^0-9A-Za-z])(?P<v>[0-9A-Fa-f]{32}(?:[0-9A-Fa-f]{8}(?:[0-9A-Fa-f]{24}(?:[0-9A-Fa-f]{64})?)?)?)(?:$|[^0-9A-Za-z])"
# Whether a text can hold an IPv6 address, a URL, a dotted name or a hash at all (most log lines hold
# none); IPv4 addresses are common enough that such a test saves nothing.
RARE = r"::|(?:[0-9A-Fa-f]{1,4}:){7}|://|[A-Za-z0-9]\.[A-Za-z]{2}|[0-9A-Fa-f]{32}"
_TRAILING = ".,;:!?)]}'"  # punctuation that ends a sentence rather than a URL


@dataclass(frozen=True)
class Mentions:
    """(row, value) pairs: ``rows[i]`` mentions ``values[i]``; in the order the pairs were found.
    ``keys[i]``: the attribute whose value ``values[i]`` opens (null elsewhere, and for other kinds)."""

    rows: np.ndarray
    values: pa.Array
    keys: pa.Array | None = None

    @classmethod
    def empty(cls) -> "Mentions":
        """No pairs."""
        return cls(np.zeros(0, np.int64), pa.array([], pa.string()))

    @classmethod
    def concat(cls, parts: list["Mentions"]) -> "Mentions":
        """The pairs of ``parts``, one after the other."""
        parts = [part for part in parts if len(part.rows)]
        if not parts:
            return cls.empty()
        keys = None
        if any(part.keys is not None for part in parts):
            keys = pa.concat_arrays([part.keys if part.keys is not None else pa.nulls(len(part), pa.string())
                                     for part in parts])
        return cls(np.concatenate([part.rows for part in parts]), pa.concat_arrays([part.values for part in parts]),
                   keys)

    def where(self, keep: np.ndarray) -> "Mentions":
        """The pairs where ``keep`` is true."""
        mask = pa.array(keep)
        return Mentions(self.rows[keep], self.values.filter(mask), None if self.keys is None else self.keys.filter(mask))

    def under_keys(self, names: pa.Array) -> "Mentions":
        """The pairs whose key is one of ``names``."""
        if self.keys is None:
            return Mentions.empty()
        return self.where(pc.fill_null(pc.is_in(self.keys, value_set=names), False).to_numpy(zero_copy_only=False))

    def __len__(self) -> int:
        return len(self.rows)

    def first_per_row(self, count: int) -> pa.Array:
        """The first value of each of ``count`` rows (null where the row has none)."""
        at = np.full(count, -1, np.int64)
        if len(self.rows):
            rows, first = np.unique(self.rows, return_index=True)
            at[rows] = first
        return self.values.take(pa.array(np.maximum(at, 0), mask=at < 0)) if len(self.rows) \
            else pa.nulls(count, pa.string())


def spread(values: pa.Array, rows: np.ndarray, count: int) -> pa.Array:
    """``values`` (one per row of ``rows``) placed at those rows of ``count`` (null elsewhere)."""
    at = np.full(count, -1, np.int64)
    at[rows] = np.arange(len(rows))
    return values.take(pa.array(np.maximum(at, 0), mask=at < 0)) if len(rows) else pa.nulls(count, values.type)


def flat(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array of a column (without a copy when it has one chunk)."""
    if isinstance(values, pa.ChunkedArray):
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


def find_all(texts: pa.ChunkedArray | pa.Array, pattern: str, rows: np.ndarray | None = None,
             keyed: bool = False) -> Mentions:
    """Every value of ``pattern`` (one of this module's patterns) in ``texts`` (of ``rows`` only, if given);
    ``keyed``: with the JSON key of each address that opens a value (IPV4 and IPV6 only)."""
    texts = flat(texts)
    if rows is None:
        rows, current = np.arange(len(texts)), texts
    else:
        current = texts.take(pa.array(rows, pa.int64()))
    found_rows, found_values, found_keys = [], [], []
    with_rest = f"(?s){KEYED[pattern] if keyed else pattern}(?P<rest>.*)"
    value, rest = (1, 2) if keyed else (0, 1)
    for _ in range(MAX_PER_RECORD):
        if not len(rows):
            break
        found = pc.extract_regex(current, with_rest)  # null where the text holds no (further) value
        hit = pc.is_valid(found)
        rows, found = rows[hit.to_numpy(zero_copy_only=False)], found.filter(hit)
        found_rows.append(rows)
        found_values.append(pc.struct_field(found, [value]))
        found_keys.append(_null_if_empty(pc.struct_field(found, [0])) if keyed else None)
        current = pc.struct_field(found, [rest])
    return Mentions.concat([Mentions(*found) for found in zip(found_rows, found_values, found_keys)])


def _null_if_empty(keys: pa.Array) -> pa.Array:
    """Keys of the values that no key opens come out empty (a group that took no part in the match)."""
    return pc.if_else(pc.equal(keys, ""), pa.scalar(None, pa.string()), keys)


class Texts:
    """The attributes and messages of a batch. Each column is scanned once for the rows that can hold
    anything rarer than an IPv4 address (IPv6, URLs, dotted names, hashes together); each of those
    kinds then looks at those rows only."""

    COLUMNS = ("attributes", "message")

    def __init__(self, records: pa.Table) -> None:
        self.columns = {name: flat(records[name]) for name in self.COLUMNS}
        self._rare: dict[str, np.ndarray] = {}

    def rare_rows(self, column: str) -> np.ndarray:
        """The rows of ``column`` that can hold an IPv6 address, a URL, a dotted name or a hash."""
        if column not in self._rare:
            possible = pc.fill_null(pc.match_substring_regex(self.columns[column], RARE), False)
            self._rare[column] = np.flatnonzero(possible.to_numpy(zero_copy_only=False))
        return self._rare[column]

    def find(self, column: str, pattern: str, rows: np.ndarray | None = None) -> Mentions:
        """Every value of ``pattern`` in ``column`` (of ``rows`` only, if given)."""
        candidates = None if pattern == IPV4 else self.rare_rows(column)
        if rows is not None:
            candidates = rows if candidates is None else np.intersect1d(candidates, rows)
        keyed = column == "attributes" and pattern in KEYED
        return find_all(self.columns[column], pattern, candidates, keyed)


def ip_mentions(texts: Texts, rows: np.ndarray | None = None) -> Mentions:
    """Every IPv4 and IPv6 address of the records' attributes, then of their messages."""
    return Mentions.concat([texts.find(column, pattern, rows) for column in Texts.COLUMNS for pattern in (IPV4, IPV6)])


def url_mentions(texts: Texts) -> Mentions:
    """Every URL of the records' attributes and messages (trailing sentence punctuation removed)."""
    found = Mentions.concat([texts.find(column, URL) for column in Texts.COLUMNS])
    return Mentions(found.rows, pc.utf8_rtrim(found.values, _TRAILING)) if len(found) else found


def domain_mentions(texts: Texts) -> Mentions:
    """Every dotted name of the records' attributes and messages."""
    return Mentions.concat([texts.find(column, DOMAIN) for column in Texts.COLUMNS])


def hash_mentions(texts: Texts) -> Mentions:
    """Every MD5, SHA-1, SHA-256 or SHA-512 shaped hexadecimal value of the records (in lower case)."""
    found = Mentions.concat([texts.find(column, HASH) for column in Texts.COLUMNS])
    return Mentions(found.rows, pc.utf8_lower(found.values)) if len(found) else found
