"""Consistent mining with many workers: match in parallel against a snapshot, learn in one place.

Per batch: the coordinator broadcasts ``miner.snapshot()``; every worker runs
:func:`match_partition` on its partition (read-only); the coordinator then
learns the unmatched messages in partition order with its single miner and
folds the workers' usage counts in. Ids therefore only ever come from one
learner, in a deterministic order (see ``docs/templates.md``).
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from logwarden.processing.templates.miner import TemplateMiner
from logwarden.processing.templates.model import TemplateMatch

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)
_DIGIT = re.compile(r"[0-9]")

Mapper = Callable[[Callable[[Sequence[str]], list], Iterable[Sequence[str]]], Iterable[list]]

_WORKER_MINERS: "OrderedDict[bytes, TemplateMiner]" = OrderedDict()
_WORKER_CACHE_SIZE = 2


def match_partition(snapshot: bytes, messages: Sequence[str], with_params: bool = True) -> list[TemplateMatch | None]:
    """Worker side: match ``messages`` against a broadcast snapshot without learning.

    The deserialised miner is kept per process for the last couple of
    snapshots, so consecutive partitions of a batch reuse it (and its caches).
    """
    return _miner_for(snapshot).match_batch(messages, with_params)


def _miner_for(snapshot: bytes) -> TemplateMiner:
    key = hashlib.blake2b(snapshot, digest_size=16).digest()
    miner = _WORKER_MINERS.get(key)
    if miner is None:
        miner = TemplateMiner.from_snapshot(snapshot)
        _WORKER_MINERS[key] = miner
        while len(_WORKER_MINERS) > _WORKER_CACHE_SIZE:
            _WORKER_MINERS.popitem(last=False)
    else:
        _WORKER_MINERS.move_to_end(key)
    return miner


class BatchCoordinator:
    """The single learner of a multi-worker deployment."""

    def __init__(self, miner: TemplateMiner) -> None:
        self.miner = miner

    def snapshot(self) -> bytes:
        """The state to broadcast to workers for the next batch."""
        return self.miner.snapshot()

    def complete(
        self,
        partitions: Sequence[Sequence[str]],
        matched: Sequence[Sequence[TemplateMatch | None]],
        timestamps: Sequence[Sequence[float | None]] | None = None,
    ) -> list[list[TemplateMatch]]:
        """Learn what workers could not match (in partition order) and fold their usage in."""
        if len(partitions) != len(matched):
            raise ValueError("one match list per partition is required")
        results: list[list[TemplateMatch]] = []
        learned = 0
        for index, (messages, matches) in enumerate(zip(partitions, matched)):
            stamps = timestamps[index] if timestamps is not None else None
            self.miner.merge_usage(TemplateMiner.usage_of(matches, stamps))
            row: list[TemplateMatch] = []
            for position, (message, match) in enumerate(zip(messages, matches)):
                if match is None:
                    match = self.miner.add(message, stamps[position] if stamps is not None else None)
                    learned += 1
                row.append(match)
            results.append(row)
        logger.debug("batch: %d partitions, %d messages learned centrally", len(partitions), learned)
        return results

    def run_batch(
        self,
        partitions: Sequence[Sequence[str]],
        mapper: Mapper = map,
        timestamps: Sequence[Sequence[float | None]] | None = None,
    ) -> list[list[TemplateMatch]]:
        """One full cycle; ``mapper`` runs :func:`match_partition` per partition (``map``, a pool, Dask)."""
        worker = partial(match_partition, self.snapshot())
        matched = [list(result) for result in mapper(worker, partitions)]
        return self.complete(partitions, matched, timestamps)


@dataclass
class ColumnMatches:
    """The matches of a column of messages: row ``i`` has ``distinct[codes[i]]`` (None: no template yet).
    Rows share one entry per digit shape, so turning matches into columns costs no per-row Python."""

    codes: "np.ndarray"
    distinct: list[TemplateMatch | None]

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[TemplateMatch | None]:
        distinct = self.distinct
        return (distinct[code] for code in self.codes.tolist())

    def unmatched_representatives(self) -> "np.ndarray":
        """One row per distinct entry without a template (its first row), in row order: matching or
        learning these settles every unmatched row."""
        codes, first_rows = np.unique(self.codes, return_index=True)
        return np.sort(first_rows[self._missing()[codes]])

    def settle(self, rows: "np.ndarray", matches: Sequence[TemplateMatch | None]) -> None:
        """Give the entries of representative ``rows`` (see :meth:`unmatched_representatives`) ``matches``."""
        for code, match in zip(self.codes[rows].tolist(), matches):
            self.distinct[code] = match

    def fill(self, rows: "np.ndarray", matches: Sequence[TemplateMatch | None]) -> None:
        """Give ``rows`` the ``matches`` (one per row)."""
        start = len(self.distinct)
        self.distinct.extend(matches)
        self.codes[rows] = np.arange(start, start + len(rows))

    def _missing(self) -> "np.ndarray":
        return np.fromiter((match is None for match in self.distinct), bool, len(self.distinct))

    def columns(self) -> "tuple[pa.Array, pa.Array]":
        """(template id, template) per row; every row must have a match."""
        import pyarrow as pa

        indices = pa.array(self.codes)
        ids = pa.array([None if m is None else m.template_id for m in self.distinct], pa.string())
        templates = pa.array([None if m is None else m.template for m in self.distinct], pa.string())
        return ids.take(indices), templates.take(indices)


def match_column(snapshot: bytes, messages: "pa.Array | pa.ChunkedArray") -> ColumnMatches:
    """:func:`match_partition` for an Arrow column of messages, without parameters, matching one message
    per *digit shape* (every ASCII digit as ``0``, computed vectorized).

    The miner's masking depends only on the digit shape whenever the masked text keeps no digit (its own
    masking cache rests on the same fact), so every message of such a shape has the representative's
    template. Shapes whose masked form keeps digits, and miners without the shape cache (custom masks
    that single out digit values), fall back to matching message by message.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    miner = _miner_for(snapshot)
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    if not miner.config.mask_cache_size or len(messages) == 0:
        return ColumnMatches(np.arange(len(messages)), miner.match_batch(messages.to_pylist(), with_params=False))
    encoded = pc.dictionary_encode(pc.replace_substring_regex(messages, "[0-9]", "0"))
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    _, first_rows = np.unique(codes, return_index=True)
    representatives = messages.take(pa.array(first_rows)).to_pylist()
    result = ColumnMatches(codes, [miner.match(message, with_params=False) for message in representatives])
    inexact = [g for g, message in enumerate(representatives) if _DIGIT.search(miner.mask(message))]
    if inexact:
        rows = np.flatnonzero(np.isin(codes, inexact))
        result.fill(rows, miner.match_batch(messages.take(pa.array(rows)).to_pylist(), False))
    return result
