"""IP addresses and networks as sortable 128-bit keys, parsed and looked up without a loop per record.

An address is two uint64 halves; IPv4 is mapped into IPv6 (``::ffff:a.b.c.d``) so one ordering holds
both. ``sort_keys`` packs the halves into 16-byte big-endian strings, whose byte order is the
numeric order, for ``numpy.searchsorted``. IPv4 text is parsed with Arrow kernels; IPv6 text (rare
in logs) with ``socket.inet_pton``, once per value given. Lookups of IPv4 addresses compare the low
halves as uint64 (much faster than 16-byte strings); IPv6 ones compare 16-byte keys.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

V4_MAPPED = np.uint64(0xFFFF_0000_0000)
ALL_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
V4_PATTERN = r"^\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?$"
LOW_MASK = 0xFFFF_FFFF_FFFF_FFFF


def network_keys(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(high 64 bits, low 64 bits, prefix length out of 128, valid) of each address or CIDR text."""
    count = len(texts)
    hi, lo = np.zeros(count, np.uint64), np.zeros(count, np.uint64)
    prefix, valid = np.full(count, 128, np.int64), np.zeros(count, bool)
    if not count:
        return hi, lo, prefix, valid
    texts = pc.utf8_trim_whitespace(texts.cast(pa.string()))
    is_v4 = pc.fill_null(pc.match_substring_regex(texts, V4_PATTERN), False).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(is_v4)
    if len(rows):
        _parse_v4(texts.take(pa.array(rows)), rows, lo, prefix, valid)
    others = np.flatnonzero(~is_v4 & pc.is_valid(texts).to_numpy(zero_copy_only=False))
    for row, text in zip(others.tolist(), texts.take(pa.array(others, pa.int64())).to_pylist()):
        parsed = _v6(text)
        if parsed is not None:
            hi[row], lo[row], prefix[row] = parsed
            valid[row] = True
    return hi, lo, prefix, valid


def _v6(text: str) -> tuple[int, int, int] | None:
    """(high, low, prefix length) of an IPv6 address or network text (``inet_pton``: IPv4-mapped
    addresses come out mapped, like IPv4 text); None when it is neither."""
    address, _, length = text.partition("/")
    try:
        packed = socket.inet_pton(socket.AF_INET6, address.split("%", 1)[0])
        bits = int(length) if length else 128
    except (OSError, ValueError):
        return None
    if not 0 <= bits <= 128:
        return None
    return int.from_bytes(packed[:8], "big"), int.from_bytes(packed[8:], "big"), bits


def _parse_v4(texts: pa.Array, rows: np.ndarray, lo: np.ndarray, prefix: np.ndarray, valid: np.ndarray) -> None:
    halves = pc.split_pattern(texts, "/")
    lengths = pc.list_value_length(halves).to_numpy()
    address = pc.list_element(halves, 0)
    octets = pc.cast(pc.list_flatten(pc.split_pattern(address, ".")), pa.int64()).to_numpy().reshape(-1, 4)
    bits = np.full(len(rows), 32, np.int64)
    if np.any(lengths == 2):
        slash = np.flatnonzero(lengths == 2)
        bits[slash] = pc.cast(pc.list_element(halves.take(pa.array(slash)), 1), pa.int64()).to_numpy()
    ok = (octets <= 255).all(axis=1) & (bits <= 32)
    value = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    value = value.astype(np.uint64) | V4_MAPPED
    lo[rows] = np.where(ok, value, 0).astype(np.uint64)
    prefix[rows] = np.where(ok, bits + 96, 128)
    valid[rows] = ok


def split_ints(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) uint64 halves of 128-bit Python integers."""
    hi = np.fromiter((v >> 64 for v in values), np.uint64, len(values))
    lo = np.fromiter((v & LOW_MASK for v in values), np.uint64, len(values))
    return hi, lo


def masked(hi: np.ndarray, lo: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The network start of each address for a prefix of ``length`` bits out of 128."""
    if length >= 64:
        return hi, lo & _keep(128 - length)
    return hi & _keep(64 - length), np.zeros_like(lo)


def last_address(hi: np.ndarray, lo: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last address of each network (start ``hi``/``lo``, prefix ``length`` out of 128)."""
    host_bits = (128 - length).astype(np.uint64)
    low_bits = np.minimum(host_bits, np.uint64(64))
    high_bits = host_bits - low_bits
    low_fill = np.where(low_bits == 64, ALL_ONES, (np.uint64(1) << (low_bits % np.uint64(64))) - np.uint64(1))
    high_fill = np.where(high_bits == 64, ALL_ONES, (np.uint64(1) << (high_bits % np.uint64(64))) - np.uint64(1))
    return hi | high_fill, lo | low_fill


def _keep(cleared: int) -> np.uint64:
    """A 64-bit mask with the ``cleared`` lowest bits off (0 to 64)."""
    if cleared == 0:
        return ALL_ONES
    if cleared >= 64:
        return np.uint64(0)
    return ~((np.uint64(1) << np.uint64(cleared)) - np.uint64(1))


def sort_keys(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """16-byte big-endian keys: their byte order is the numeric order."""
    packed = np.empty(len(hi), dtype=[("hi", ">u8"), ("lo", ">u8")])
    packed["hi"], packed["lo"] = hi, lo
    return packed.view("S16")


@dataclass
class _Ranges:
    """Sorted disjoint ranges of one key type (uint64 low halves, or 16-byte keys)."""

    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray

    def find(self, keys: np.ndarray) -> np.ndarray:
        if not len(self.starts) or not len(keys):
            return np.full(len(keys), -1, np.int64)
        at = np.searchsorted(self.starts, keys, side="right") - 1
        inside = (at >= 0) & (keys <= self.ends[np.maximum(at, 0)])
        return np.where(inside, self.values[np.maximum(at, 0)], -1)


@dataclass
class RangeTable:
    """Disjoint address ranges sorted by start, each with a value index; looked up with searchsorted.
    Ranges starting below ``::1:0:0:0:0`` (IPv4-mapped ones among them) are searched on their low half."""

    low: _Ranges  # ranges whose start has a zero high half: uint64 keys (end clipped to the low half)
    high: _Ranges  # the others: 16-byte keys

    @classmethod
    def build(cls, hi: np.ndarray, lo: np.ndarray, length: np.ndarray, values: np.ndarray) -> "RangeTable":
        """Ranges from network starts and prefix lengths (out of 128)."""
        order = np.lexsort((lo, hi))
        hi, lo, length, values = hi[order], lo[order], length[order], values[order].astype(np.int64)
        end_hi, end_lo = last_address(hi, lo, length)
        low = hi == 0
        clipped = np.where(end_hi[low] > 0, ALL_ONES, end_lo[low])
        return cls(_Ranges(lo[low], clipped, values[low]),
                   _Ranges(sort_keys(hi[~low], lo[~low]), sort_keys(end_hi[~low], end_lo[~low]), values[~low]))

    def find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """The value index of the range holding each address (-1 where none)."""
        found = np.full(len(hi), -1, np.int64)
        low = hi == 0
        found[low] = self.low.find(lo[low])
        if not low.all():
            found[~low] = self.high.find(sort_keys(hi[~low], lo[~low]))
        return found
