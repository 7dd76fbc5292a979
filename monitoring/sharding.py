"""Route a batch's rows to the shards of a rule by a stable hash of the rule's (tenant, group-by key)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from logwarden.monitoring.rules.keys import keys_of, shard_of


def split_by_key(table: pa.Table, group_by: tuple[str, ...], shards: int) -> list[pa.Table]:
    """``table``'s rows per shard (rows without a key can match no keyed rule and go nowhere)."""
    if shards <= 1:
        return [table]
    keys = keys_of(table, group_by)
    shard = np.where(keys.valid, shard_of(keys.hashes, shards), -1)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(shards + 1))
    return [table.take(pa.array(order[bounds[s]:bounds[s + 1]])) for s in range(shards)]


def newest_event_us(table: pa.Table) -> int | None:
    """The newest event time of ``table`` (epoch µs), or None when it is empty."""
    if table.num_rows == 0:
        return None
    import pyarrow.compute as pc

    return int(pc.max(pc.cast(table["timestamp"], pa.int64())).as_py())
