"""Per-key event times in compact numpy arrays, and sliding-window counts computed in bulk.

``KeyedTimes`` keeps the event times of every key sorted by (key hash, time) in two flat arrays
(16 bytes an event, no Python object per key). ``add`` merges one batch and returns, for each
batch event, how many events of its key lie in ``(t - window, t]`` among those received so far
(state events first, then the batch in its order): one sort of the touched keys' events and a
``searchsorted``, however many rows match.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MAX_COMPOSITE = np.iinfo(np.int64).max // 4


@dataclass
class Merged:
    """A batch merged with the stored events of its keys, sorted by (key, time, arrival).

    ``group``/``times`` describe the merged rows, ``is_new`` marks batch rows and ``batch_row`` their
    row in the batch, ``count`` the window count at each row and ``lower`` the merged position of the
    first event in that row's window."""

    group: np.ndarray
    times: np.ndarray
    is_new: np.ndarray
    batch_row: np.ndarray
    count: np.ndarray
    lower: np.ndarray
    unique_hashes: np.ndarray


def _gather(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(s, e)`` for every (s, e)."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(total, dtype=np.int64)


class KeyedTimes:
    """Event times per key hash, sorted by (hash, time); optionally only the last ``keep_last`` per key."""

    def __init__(self, window_us: int, keep_last: int | None = None) -> None:
        self.window_us = window_us
        self.keep_last = keep_last
        self.hashes = np.zeros(0, np.uint64)
        self.times = np.zeros(0, np.int64)
        self._index_dirty = True
        self._unique = np.zeros(0, np.uint64)
        self._starts = np.zeros(1, np.int64)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return self.hashes.nbytes + self.times.nbytes + self._unique.nbytes + self._starts.nbytes

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """(distinct key hashes ascending, start of each key's events plus the end): key i's times are
        ``times[starts[i]:starts[i + 1]]``."""
        return self._index()

    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._index_dirty:
            if len(self.hashes):
                boundaries = np.flatnonzero(self.hashes[1:] != self.hashes[:-1]) + 1
                self._starts = np.concatenate(([0], boundaries, [len(self.hashes)])).astype(np.int64)
                self._unique = self.hashes[self._starts[:-1]]
            else:
                self._unique, self._starts = np.zeros(0, np.uint64), np.zeros(1, np.int64)
            self._index_dirty = False
        return self._unique, self._starts

    def slices(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of the stored events of each hash (empty when unknown)."""
        unique, starts = self._index()
        if len(unique) == 0:
            zeros = np.zeros(len(hashes), np.int64)
            return zeros, zeros
        position = np.minimum(np.searchsorted(unique, hashes), len(unique) - 1)
        found = unique[position] == hashes
        begin = np.where(found, starts[position], 0)
        end = np.where(found, starts[position + 1], 0)
        return begin, end

    def times_of(self, key_hash: int) -> np.ndarray:
        """The stored times of one key, ascending."""
        begin, end = self.slices(np.array([key_hash], np.uint64))
        return self.times[begin[0]:end[0]]

    def count_at(self, key_hash: int, end_us: int) -> int:
        """Stored events of ``key_hash`` in ``(end - window, end]``."""
        times = self.times_of(key_hash)
        return int(np.searchsorted(times, end_us, "right") - np.searchsorted(times, end_us - self.window_us, "right"))

    def add(self, hashes: np.ndarray, times: np.ndarray, store: bool = True) -> Merged:
        """Merge a batch's events (``hashes``/``times`` in batch order); the merged view with counts."""
        unique_batch, group_of_new = np.unique(hashes, return_inverse=True)
        begin, end = self.slices(unique_batch)
        old_rows = _gather(begin, end)
        old_group = np.repeat(np.arange(len(unique_batch), dtype=np.int64), end - begin)
        group = np.concatenate((old_group, group_of_new.astype(np.int64)))
        all_times = np.concatenate((self.times[old_rows], times.astype(np.int64)))
        is_new = np.concatenate((np.zeros(len(old_rows), bool), np.ones(len(times), bool)))
        batch_row = np.concatenate((np.full(len(old_rows), -1, np.int64), np.arange(len(times), dtype=np.int64)))
        composite = self._composite(group, all_times)
        if composite is None:  # times too far apart for one int64 composite: count group by group
            order = np.lexsort((np.arange(len(group)), all_times, group))
            group, all_times, is_new, batch_row = group[order], all_times[order], is_new[order], batch_row[order]
            lower = np.empty(len(group), np.int64)
            bounds = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1], [True])))
            for first, last in zip(bounds[:-1], bounds[1:]):
                chunk = all_times[first:last]
                lower[first:last] = first + np.searchsorted(chunk, chunk - self.window_us, "right")
        else:
            order = np.argsort(composite, kind="stable")
            composite = composite[order]
            group, all_times, is_new, batch_row = group[order], all_times[order], is_new[order], batch_row[order]
            lower = np.searchsorted(composite, composite - self.window_us, "right")
        position = np.arange(len(group), dtype=np.int64)
        merged = Merged(group=group, times=all_times, is_new=is_new, batch_row=batch_row,
                        count=position - lower + 1, lower=lower, unique_hashes=unique_batch)
        if store:
            self._store(merged, begin, end)
        return merged

    def _composite(self, group: np.ndarray, times: np.ndarray) -> np.ndarray | None:
        if len(times) == 0:
            return np.zeros(0, np.int64)
        low = int(times.min())
        span = int(times.max()) - low + self.window_us + 1
        groups = int(group.max()) + 1
        if groups * span >= _MAX_COMPOSITE:
            return None
        return group * np.int64(span) + (times - low)

    def _store(self, merged: Merged, begin: np.ndarray, end: np.ndarray) -> None:
        keep = np.ones(len(merged.group), bool)
        if self.keep_last is not None and len(merged.group):
            group_end = np.searchsorted(merged.group, merged.group, "right")
            keep = (group_end - np.arange(len(merged.group))) <= self.keep_last
        new_hashes = merged.unique_hashes[merged.group[keep]]
        new_times = merged.times[keep]
        # remove the touched keys' old events, then insert the merged ones where those keys belong
        touched = _gather(begin, end)
        if len(touched):
            mask = np.ones(len(self.times), bool)
            mask[touched] = False
            base_hashes, base_times = self.hashes[mask], self.times[mask]
        else:
            base_hashes, base_times = self.hashes, self.times
        at = np.searchsorted(base_hashes, new_hashes)
        self.hashes = np.insert(base_hashes, at, new_hashes)
        self.times = np.insert(base_times, at, new_times)
        self._index_dirty = True

    def drop_before(self, horizon_us: int) -> None:
        """Forget events at or before ``horizon_us``."""
        if len(self.times) and self.times.min() <= horizon_us:
            keep = self.times > horizon_us
            self.hashes, self.times = self.hashes[keep], self.times[keep]
            self._index_dirty = True

    def drop_keys(self, hashes: np.ndarray) -> None:
        """Forget every event of the given keys."""
        if len(hashes) and len(self.hashes):
            keep = ~np.isin(self.hashes, hashes)
            self.hashes, self.times = self.hashes[keep], self.times[keep]
            self._index_dirty = True

    def known(self) -> np.ndarray:
        """The distinct key hashes stored."""
        return self._index()[0]
