"""Group-by keys of records: their text, and a stable 64-bit hash of it (for state and shard routing).

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

from logwarden.monitoring.rules.filters import field_values

ALL_KEYS = "*"
KEY_SEPARATOR = "|"


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


def keys_of(table: pa.Table, group_by: tuple[str, ...]) -> Keys:
    """The keys of ``table``'s rows under ``group_by`` (every row has the key ``*`` without group_by)."""
    column = key_column(table, group_by)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    texts = encoded.dictionary.to_pylist()
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
