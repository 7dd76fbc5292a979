"""Group-by keys of records: their text, and a stable 64-bit hash of it (for state and shard routing).

Tenants never mix: the tenant of a record (column ``tenant``; ``DEFAULT_TENANT`` where it is missing)
is an implicit leading part of every rule's key. The key text a rule keeps its state under is
``tenant + TENANT_SEPARATOR + key`` (``TENANT_SEPARATOR`` is the unprintable unit separator, so the
join stays one vectorized Arrow call); ``split_key`` takes it apart again when an anomaly is built,
so the alert shows ``key`` as written (``payment-service``) and carries ``tenant`` on its own.

The hash is SipHash with a fixed key (``pandas.util.hash_array``), so it is the same in every
process and across restarts: a checkpoint written by one actor is read by its successor, and the
driver routes a key to the same shard as long as the number of shards does not change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.rules.filters import field_values

ALL_KEYS = "*"
KEY_SEPARATOR = "|"
TENANT_FIELD = "tenant"
TENANT_SEPARATOR = "\x1f"


@dataclass
class Keys:
    """The key of each row of a table: ``hashes`` (uint64), ``valid`` (bool: the row has a key), and the
    distinct key texts with the index of each row's text in them."""

    hashes: np.ndarray
    valid: np.ndarray
    texts: list[str]
    text_index: np.ndarray

    def text(self, row: int) -> str:
        """The key text of ``row`` (a row that has a key)."""
        return self.texts[self.text_index[row]]


def hash_texts(texts: list[str]) -> np.ndarray:
    """Stable uint64 hashes of ``texts``."""
    if not texts:
        return np.zeros(0, np.uint64)
    return pd.util.hash_array(np.asarray(texts, dtype=object), categorize=False)


def key_column(table: pa.Table, group_by: tuple[str, ...]) -> pa.Array:
    """The key text of every row as a string array (null where a key field is missing)."""
    if not group_by:
        return pa.array([ALL_KEYS] * table.num_rows, pa.string())
    parts = []
    for name in group_by:
        values = field_values(table, name)
        parts.append(values if values.type == pa.string() else pc.cast(values, pa.string()))
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, KEY_SEPARATOR)


def tenant_column(table: pa.Table) -> pa.Array | pa.ChunkedArray | pa.Scalar:
    """The tenant of every row: the ``tenant`` column with ``DEFAULT_TENANT`` where it is null or empty,
    or the scalar ``DEFAULT_TENANT`` when the table has no such column (offline replays of log files)."""
    if TENANT_FIELD not in table.column_names:
        return pa.scalar(DEFAULT_TENANT, pa.string())
    column = table[TENANT_FIELD]
    if column.type != pa.string():
        column = pc.cast(column, pa.string())
    if column.null_count == 0 and not pc.any(pc.equal(column, "")).as_py():
        return column
    return pc.if_else(pc.fill_null(pc.equal(column, ""), True), DEFAULT_TENANT, column)


def with_tenant(table: pa.Table, keys: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``keys`` (one text per row of ``table``) prefixed with each row's tenant (null stays null)."""
    return pc.binary_join_element_wise(tenant_column(table), keys, TENANT_SEPARATOR)


def tenant_key_column(table: pa.Table, group_by: tuple[str, ...]) -> pa.Array | pa.ChunkedArray:
    """The (tenant, key) text of every row, ``tenant + TENANT_SEPARATOR + key`` (null where a key field
    is missing): what rules keep their state under."""
    return with_tenant(table, key_column(table, group_by))


def scoped_key(tenant: str | None, key: str) -> str:
    """The state key text of ``key`` of ``tenant``."""
    return f"{tenant or DEFAULT_TENANT}{TENANT_SEPARATOR}{key}"


def split_key(text: str) -> tuple[str, str]:
    """(tenant, key) of a state key text; a text without a tenant (state of an older version) is of
    ``DEFAULT_TENANT``. The tenant ends at the first separator, so a key may itself contain one."""
    tenant, separator, key = text.partition(TENANT_SEPARATOR)
    if not separator:
        return DEFAULT_TENANT, text
    return tenant or DEFAULT_TENANT, key


def uniform_tenant(table: pa.Table) -> str | None:
    """The tenant of every row of ``table`` when all rows have the same one (cheap: one comparison per
    row), else None."""
    if TENANT_FIELD not in table.column_names or table.num_rows == 0:
        return DEFAULT_TENANT
    column = table[TENANT_FIELD]
    if column.null_count or column.type != pa.string():
        return None
    first = column[0].as_py()
    if first and pc.all(pc.equal(column, first)).as_py():
        return first
    return None


def keys_of(table: pa.Table, group_by: tuple[str, ...]) -> Keys:
    """The (tenant, key) of ``table``'s rows under ``group_by`` (every row of a tenant has the key ``*``
    without group_by): texts as ``tenant_key_column`` makes them. A batch of one tenant (the usual
    case) prefixes only the distinct keys."""
    tenant = uniform_tenant(table)
    column = key_column(table, group_by) if tenant is not None else tenant_key_column(table, group_by)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    texts = encoded.dictionary.to_pylist()
    if tenant is not None:
        texts = [f"{tenant}{TENANT_SEPARATOR}{text}" for text in texts]
    indices = encoded.indices
    valid = np.asarray(pc.is_valid(indices).to_numpy(zero_copy_only=False), dtype=bool)
    index = np.asarray(pc.fill_null(indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    text_hashes = hash_texts(texts)
    hashes = text_hashes[index] if len(texts) else np.zeros(len(index), np.uint64)
    return Keys(hashes=hashes, valid=valid, texts=texts, text_index=index)


def shard_of(hashes: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each key hash among ``shards`` shards."""
    if shards <= 1:
        return np.zeros(len(hashes), np.int64)
    return ((hashes >> np.uint64(17)) % np.uint64(shards)).astype(np.int64)
