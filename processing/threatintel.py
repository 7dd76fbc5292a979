"""Threat intelligence from files: which records mention a known-bad address, domain, URL or file hash.

Indicator files (one list each, named after the file unless named in the configuration):

- a plain list: one indicator per line (``#`` starts a comment); its kind is read from its shape:
  an IP address or CIDR, a URL (``scheme://``), an MD5/SHA-1/SHA-256/SHA-512 hash, else a domain;
- CSV with a header: the indicator in ``indicator``, ``value``, ``ioc`` or ``ip``; optional ``type``
  and ``confidence`` (0-100) columns. A MISP CSV export (``type,value,...``) reads the same way: MISP
  types ``ip-src``, ``ip-dst``, ``domain``, ``hostname``, ``url``, ``md5``, ``sha256``... and composite
  types (``ip-dst|port``, ``domain|ip``, ``filename|sha256``) count by their address, domain or hash part;
- a STIX 2.1 bundle (``.json``): every ``indicator`` object's pattern comparisons on ``ipv4-addr``,
  ``ipv6-addr``, ``domain-name``, ``url`` and ``file:hashes`` values (each comparison of a pattern
  counts on its own), with the object's ``confidence``.

Every address, URL, dotted name and file hash a record mentions, in its attributes and its message,
is a candidate (``processing.mentions``); a record that mentions several listed values reports the most
confident indicator. Matching is vectorized over the batch, with no loop per record or per indicator:
addresses become 128-bit keys (``processing.addresses``; IPv4 mapped into IPv6, compared as uint64)
and are looked up, one group of networks per prefix length (most specific first), with
``numpy.searchsorted`` in the sorted network starts, once per distinct address of the batch; domains
match on any suffix (``evil.example`` matches ``a.b.evil.example``; the hosts of URLs count as
domains), URLs and hashes exactly, through a hash index built once per load
(``pandas.Index.get_indexer``) over the distinct values of the batch. Indicator files are read on
each worker and read again when they change (``processing.watched``).
"""
from __future__ import annotations

import csv
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.processing.addresses import V4_PATTERN, RangeTable, masked, network_keys
from logwarden.processing.mentions import Mentions, Texts, domain_mentions, hash_mentions, url_mentions
from logwarden.processing.watched import CACHE

log = logging.getLogger(__name__)

IP, DOMAIN, URL, HASH = "ip", "domain", "url", "hash"
THREAT_FIELDS = (pa.field("threat_matched", pa.bool_()), pa.field("threat_indicator", pa.string()),
                 pa.field("threat_type", pa.string()), pa.field("threat_list", pa.string()),
                 pa.field("threat_confidence", pa.int64()), pa.field("threat_origin", pa.string()))
DEFAULT_CONFIDENCE = 50
DEFAULT_RELOAD = 10.0
UNKNOWN_ORIGIN = "unknown location"
MAX_LABELS = 127  # a DNS name has at most 127 labels: the suffix loop ends by then

_HASH = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128}")
_VALUE_COLUMNS = ("indicator", "value", "ioc", "ip", "domain", "url", "hash")
_MISP_KINDS = {
    "ip-src": IP, "ip-dst": IP, "ip": IP, "ip-src|port": IP, "ip-dst|port": IP, "domain|ip": DOMAIN,
    "domain": DOMAIN, "hostname": DOMAIN, "hostname|port": DOMAIN, "url": URL, "uri": URL, "link": URL,
    "md5": HASH, "sha1": HASH, "sha256": HASH, "sha512": HASH, "filename|md5": HASH, "filename|sha1": HASH,
    "filename|sha256": HASH, "filename|sha512": HASH, "cidr": IP, "ipv4": IP, "ipv6": IP, "hash": HASH,
}
_STIX_COMPARISON = re.compile(
    r"(ipv4-addr|ipv6-addr|domain-name|url|file):(value|hashes\.(?:'[^']+'|\"[^\"]+\"|[A-Za-z0-9_-]+))"
    r"\s*=\s*'((?:[^'\\]|\\.)*)'")
_STIX_KINDS = {"ipv4-addr": IP, "ipv6-addr": IP, "domain-name": DOMAIN, "url": URL, "file": HASH}

URL_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@]*@)?(?P<v>[^/:?#\[\]]+)"


@dataclass(frozen=True)
class ThreatFeed:
    """One indicator file: its path, the list name it reports, and the confidence of entries without one."""

    path: str
    name: str
    confidence: int = DEFAULT_CONFIDENCE


@dataclass(frozen=True)
class ThreatConfig:
    """``processing.threat_intel``: the indicator files, and how often they are looked at for changes."""

    feeds: tuple[ThreatFeed, ...] = ()
    reload: float = DEFAULT_RELOAD


@dataclass
class Indicators:
    """Indicators as parallel columns: kind, value, list and confidence."""

    kinds: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    confidences: list[int] = field(default_factory=list)

    def add(self, kind: str, value: str, feed: str, confidence: int) -> None:
        """Add one indicator (its value normalized for its kind; an empty one is skipped)."""
        value = normalize(kind, value)
        if value:
            self.kinds.append(kind)
            self.values.append(value)
            self.lists.append(feed)
            self.confidences.append(max(0, min(100, int(confidence))))

    def extend(self, values: pa.Array, feed: str, confidence: int) -> None:
        """Add bare indicators (one per value, kind from its shape), all with ``confidence``, in bulk."""
        kinds = kinds_of(values)
        lowered = pc.if_else(pc.is_in(kinds, pa.array([DOMAIN, HASH])), pc.utf8_lower(values), values)
        cleaned = pc.if_else(pc.equal(kinds, DOMAIN),
                             pc.utf8_trim(pc.replace_substring_regex(lowered, r"^\*\.", ""), "."), lowered)
        self.kinds += kinds.to_pylist()
        self.values += cleaned.to_pylist()
        self.lists += [feed] * len(values)
        self.confidences += [max(0, min(100, int(confidence)))] * len(values)

    def __len__(self) -> int:
        return len(self.values)


def kinds_of(values: pa.Array) -> pa.Array:
    """The kind of each bare indicator from its shape, with Arrow kernels (see :func:`kind_of`)."""
    kinds = pa.array(np.full(len(values), DOMAIN, dtype=object), pa.string())
    shapes = ((IP, r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:/\d{1,3})?$"), (IP, V4_PATTERN),
              (HASH, r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128})$"), (URL, "://"))
    for kind, pattern in shapes:
        kinds = pc.if_else(pc.fill_null(pc.match_substring_regex(values, pattern), False), kind, kinds)
    return kinds


def normalize(kind: str, value: str) -> str:
    """An indicator value as it is matched: domains and hashes in lower case, without wildcards."""
    value = value.strip()
    if kind == DOMAIN:
        value = value.lower().removeprefix("*.").strip(".")
    elif kind == HASH:
        value = value.lower()
    return value


def kind_of(value: str) -> str:
    """The kind of a bare indicator, from its shape."""
    if "://" in value:
        return URL
    if _HASH.fullmatch(value):
        return HASH
    try:
        ipaddress.ip_network(value, strict=False)
        return IP
    except ValueError:
        return DOMAIN


# --- reading files -------------------------------------------------------------------------------

def read_feed(feed: ThreatFeed, into: Indicators) -> None:
    """Add the indicators of ``feed``'s file; ValueError names the file (and line) when it is malformed."""
    path = Path(feed.path)
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        if suffix == ".json":
            _read_stix(path, handle.read(), feed, into)
        elif suffix == ".csv":
            _read_csv(path, handle, feed, into)
        else:
            lines = pa.array(handle.read().splitlines(), pa.string())
            values = pc.utf8_trim_whitespace(pc.replace_substring_regex(lines, "#.*$", ""))
            into.extend(values.filter(pc.not_equal(values, "")), feed.name, feed.confidence)


def _read_csv(path: Path, handle, feed: ThreatFeed, into: Indicators) -> None:
    reader = csv.DictReader(handle)
    header = {name.strip().lower(): name for name in reader.fieldnames or ()}
    column = next((header[name] for name in _VALUE_COLUMNS if name in header), None)
    if column is None:
        raise ValueError(f"{path}:1: a CSV indicator file needs a column named one of {', '.join(_VALUE_COLUMNS)}")
    kind_column, confidence_column = header.get("type"), header.get("confidence")
    for row in reader:
        raw = (row.get(column) or "").strip()
        if not raw:
            continue
        kind, value = _typed(row.get(kind_column) if kind_column else None, raw)
        if kind is None:
            continue
        confidence = _confidence(row.get(confidence_column) if confidence_column else None, feed.confidence)
        into.add(kind, value, feed.name, confidence)


def _typed(declared: str | None, raw: str) -> tuple[str | None, str]:
    """(kind, value) of a CSV row: a MISP type (composite types by their part) or the value's shape."""
    if not declared or not declared.strip():
        return kind_of(raw), raw
    declared = declared.strip().lower()
    kind = _MISP_KINDS.get(declared)
    if kind is None:
        return None, raw  # a MISP attribute of another type (email, filename...): not matched on
    if "|" in declared and "|" in raw:
        left, right = raw.split("|", 1)
        first = declared.split("|", 1)[0]
        raw = right if first in ("filename", "domain") and kind != DOMAIN else left
    return kind, raw


def _confidence(raw: str | None, default: int) -> int:
    try:
        return int(float(raw)) if raw not in (None, "") else default
    except ValueError:
        return default


def _read_stix(path: Path, text: str, feed: ThreatFeed, into: Indicators) -> None:
    try:
        bundle = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    objects = bundle.get("objects") if isinstance(bundle, dict) else bundle
    if not isinstance(objects, list):
        raise ValueError(f"{path}: a STIX 2.1 bundle has a list of 'objects'")
    for item in objects:
        if not isinstance(item, dict) or item.get("type") != "indicator" or item.get("revoked"):
            continue
        confidence = item.get("confidence", feed.confidence)
        for kind, value in stix_values(str(item.get("pattern", ""))):
            into.add(kind, value, feed.name, confidence if isinstance(confidence, int) else feed.confidence)


def stix_values(pattern: str) -> Iterator[tuple[str, str]]:
    """(kind, value) of every equality comparison in a STIX pattern that names an indicator value."""
    for match in _STIX_COMPARISON.finditer(pattern):
        kind = _STIX_KINDS[match.group(1)]
        if (kind == HASH) != match.group(2).startswith("hashes"):
            continue
        yield kind, match.group(3).replace("\\'", "'").replace("\\\\", "\\")


# --- the index -----------------------------------------------------------------------------------

@dataclass
class _ExactIndex:
    """Exact lookup of values in a hash index built once."""

    index: pd.Index
    rows: np.ndarray  # indicator row of each index position

    @classmethod
    def build(cls, values: list[str], rows: np.ndarray) -> "_ExactIndex":
        frame = pd.Index(values)
        first = ~frame.duplicated(keep="first")  # rows are ordered by confidence, highest first
        return cls(frame[first], rows[first])

    def find(self, values: pa.Array) -> np.ndarray:
        """Indicator row of each value (-1 where none)."""
        if len(self.index) == 0 or len(values) == 0:
            return np.full(len(values), -1, np.int64)
        position = self.index.get_indexer(values.to_numpy(zero_copy_only=False))
        return np.where(position >= 0, self.rows[np.maximum(position, 0)], -1)


@dataclass
class _NetworkIndex:
    """Networks grouped by prefix length (disjoint within a group), most specific group first."""

    groups: list[RangeTable]

    @classmethod
    def build(cls, values: list[str], rows: np.ndarray) -> "_NetworkIndex":
        hi, lo, prefix, valid = network_keys(pa.array(values, pa.string()))
        groups = []
        for length in sorted(set(prefix[valid].tolist()), reverse=True):
            chosen = np.flatnonzero(valid & (prefix == length))
            start_hi, start_lo = masked(hi[chosen], lo[chosen], length)
            order = np.lexsort((rows[chosen], start_lo, start_hi))  # by start, then row (most confident first)
            start_hi, start_lo, kept = start_hi[order], start_lo[order], rows[chosen][order]
            first = np.concatenate(([True], (start_hi[1:] != start_hi[:-1]) | (start_lo[1:] != start_lo[:-1])))
            groups.append(RangeTable.build(start_hi[first], start_lo[first],
                                           np.full(int(first.sum()), length, np.int64), kept[first]))
        return cls(groups)

    def find(self, addresses: pa.Array) -> np.ndarray:
        """Indicator row of the most specific network holding each address text (-1 where none)."""
        hi, lo, prefix, valid = network_keys(addresses)
        return self.find_keys(hi, lo, valid & (prefix == 128))

    def find_keys(self, hi: np.ndarray, lo: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Indicator row of the most specific network holding each address key (-1 where none)."""
        found = np.full(len(hi), -1, np.int64)
        for table in self.groups:
            open_rows = np.flatnonzero(valid & (found < 0))
            if not len(open_rows):
                break
            found[open_rows] = table.find(hi[open_rows], lo[open_rows])
        return found


@dataclass
class ThreatIndex:
    """Every indicator of the configured files, ready to match."""

    values: pa.Array
    kinds: pa.Array
    lists: pa.Array
    confidences: pa.Array
    networks: _NetworkIndex
    domains: _ExactIndex
    urls: _ExactIndex
    hashes: _ExactIndex
    max_labels: int

    @classmethod
    def build(cls, indicators: Indicators) -> "ThreatIndex":
        """Index ``indicators`` (rows ordered by confidence, so the most confident of equal values wins)."""
        order = np.argsort(-np.asarray(indicators.confidences, np.int64), kind="stable")
        kinds = np.asarray(indicators.kinds, dtype=object)[order]
        values = np.asarray(indicators.values, dtype=object)[order]

        def of(kind: str) -> tuple[list[str], np.ndarray]:
            rows = np.flatnonzero(kinds == kind)
            return values[rows].tolist(), rows

        domains = of(DOMAIN)[0]
        return cls(
            values=pa.array(values.tolist(), pa.string()), kinds=pa.array(kinds.tolist(), pa.string()),
            lists=pa.array(np.asarray(indicators.lists, dtype=object)[order].tolist(), pa.string()),
            confidences=pa.array(np.asarray(indicators.confidences, np.int64)[order]),
            networks=_NetworkIndex.build(*of(IP)), domains=_ExactIndex.build(*of(DOMAIN)),
            urls=_ExactIndex.build(*of(URL)), hashes=_ExactIndex.build(*of(HASH)),
            max_labels=max((d.count(".") + 1 for d in domains), default=0))

    def __len__(self) -> int:
        return len(self.values)

    def match_domains(self, names: pa.Array) -> np.ndarray:
        """Indicator row of the longest listed suffix of each domain name (-1 where none)."""
        found = np.full(len(names), -1, np.int64)
        current = pc.utf8_lower(pc.utf8_rtrim(names, "."))
        for _ in range(MAX_LABELS if self.max_labels and len(names) else 0):
            rows = np.flatnonzero((found < 0) & pc.is_valid(current).to_numpy(zero_copy_only=False))
            if not len(rows):
                break
            hits = self.domains.find(current.take(pa.array(rows)))
            found[rows] = hits
            shorter = pc.replace_substring_regex(current, r"^[^.]*\.", "", max_replacements=1)
            current = pc.if_else(pc.equal(shorter, current), pa.scalar(None, pa.string()), shorter)
        return found


def load_index(config: ThreatConfig) -> ThreatIndex:
    """The index of ``config``'s files, from the process cache (read again when a file changed)."""
    paths = tuple(feed.path for feed in config.feeds)
    return CACHE.get(("threat", config.feeds), paths, config.reload, lambda: _read_all(config))


def _read_all(config: ThreatConfig) -> ThreatIndex:
    indicators = Indicators()
    for feed in config.feeds:
        read_feed(feed, indicators)
    index = ThreatIndex.build(indicators)
    log.info("threat intelligence: %d indicators from %d file(s)", len(index), len(config.feeds))
    return index


# --- matching records ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Matches:
    """Per record: the row of the indicator it mentions (-1: none), and the address text that matched
    (null unless an address did)."""

    rows: np.ndarray
    addresses: pa.Array


def _distinct_find(values: pa.Array, find: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    """``find`` over the distinct non-null ``values``, spread back to every value (-1 where null or none)."""
    encoded = pc.dictionary_encode(values)
    found = find(encoded.dictionary) if len(encoded.dictionary) else np.zeros(0, np.int64)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.where(codes >= 0, found[np.maximum(codes, 0)] if len(found) else -1, -1)


def url_hosts(urls: Mentions) -> Mentions:
    """The host of each URL (a URL without one gives nothing)."""
    if not len(urls):
        return urls
    hosts = pc.struct_field(pc.extract_regex(urls.values, URL_HOST), [0])
    valid = pc.is_valid(hosts)
    return Mentions(urls.rows[valid.to_numpy(zero_copy_only=False)], hosts.filter(valid))


def match(index: ThreatIndex, texts: Texts, count: int, addresses: Mentions) -> Matches:
    """The indicator each record mentions: of every address (``addresses``: every IPv4 and IPv6 address of
    its attributes and message), URL, domain (dotted names, and the hosts of its URLs) and file
    hash it names, the most confident indicator that lists one (rows are ordered by confidence); of
    ``count`` records (``texts``: their attributes and messages)."""
    urls = url_mentions(texts)
    kinds = [(addresses, index.networks.find), (urls, index.urls.find),
             (Mentions.concat([domain_mentions(texts), url_hosts(urls)]), index.match_domains),
             (hash_mentions(texts), index.hashes.find)]
    rows, found, values = [], [], []
    for mentioned, find in kinds:
        hit = _distinct_find(mentioned.values, find) if len(mentioned) else np.zeros(0, np.int64)
        keep = hit >= 0
        rows.append(mentioned.rows[keep])
        found.append(hit[keep])
        is_address = mentioned is addresses and len(mentioned) > 0
        values.append(mentioned.values.filter(pa.array(keep)) if is_address else pa.nulls(int(keep.sum()), pa.string()))
    rows_all, found_all = np.concatenate(rows), np.concatenate(found)
    best = np.full(count, -1, np.int64)
    where = np.full(count, -1, np.int64)
    if len(rows_all):
        order = np.lexsort((found_all, rows_all))  # by record, then most confident indicator first
        first = order[np.concatenate(([True], rows_all[order][1:] != rows_all[order][:-1]))]
        best[rows_all[first]], where[rows_all[first]] = found_all[first], first
    matched = pa.concat_arrays(values).take(pa.array(np.maximum(where, 0), mask=where < 0)) if len(rows_all) \
        else pa.nulls(count, pa.string())
    return Matches(best, matched)


def threat_columns(config: ThreatConfig, texts: Texts, count: int, addresses: Mentions,
                   client_origin: Callable[[pa.Array], pa.Array],
                   locate: Callable[[pa.Array], pa.Array] | None) -> dict[str, pa.Array]:
    """The THREAT_FIELDS columns: whether a record mentions an indicator, which, from which list, with
    what confidence, and where the matched address is (``locate``: the origin text of address texts;
    None when GeoIP is off), else where the record's client is (``client_origin``: the origin text of
    the client of the records at the given rows)."""
    if not config.feeds:
        nothing = {f.name: pa.nulls(count, f.type) for f in THREAT_FIELDS}
        nothing["threat_matched"] = pa.array(np.zeros(count, bool))
        return nothing
    index = load_index(config)
    found = match(index, texts, count, addresses)
    hit = found.rows >= 0
    take = pa.array(np.maximum(found.rows, 0), mask=~hit)
    return {**_columns(index, take), "threat_matched": pa.array(hit),
            "threat_origin": _origins(found, np.flatnonzero(hit), client_origin, locate)}


def _origins(found: Matches, hits: np.ndarray, client_origin: Callable[[pa.Array], pa.Array],
             locate: Callable[[pa.Array], pa.Array] | None) -> pa.Array:
    """Where each matching record's matched address (else its client) is; null for the other records."""
    count = len(found.rows)
    if not len(hits):
        return pa.nulls(count, pa.string())
    rows = pa.array(hits)
    addresses = found.addresses.take(rows)
    origin = client_origin(rows)
    if locate is not None and addresses.null_count < len(addresses):
        origin = pc.if_else(pc.is_valid(addresses), locate(addresses), origin)
    spread = np.full(count, -1, np.int64)
    spread[hits] = np.arange(len(hits))
    return pc.fill_null(origin, UNKNOWN_ORIGIN).take(pa.array(np.maximum(spread, 0), mask=spread < 0))


def _columns(index: ThreatIndex, take: pa.Array) -> dict[str, pa.Array]:
    return {"threat_indicator": index.values.take(take), "threat_type": index.kinds.take(take),
            "threat_list": index.lists.take(take), "threat_confidence": index.confidences.take(take)}
