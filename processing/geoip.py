"""Where an address is: the client, source and destination address of each record, with its country,
autonomous system and (from a MaxMind database) city, offline.

Addresses are found in the attributes (compact JSON) by the field names the parsers and shippers
use (``client_ip``, ``remote_addr``, ``sourceIPAddress``, ``src_ip``, ``dst_ip``, ECS ``source.ip``...);
a record with none of those takes as its client the first attribute value shaped like an address,
else the first IPv4 address in its message. Nothing loops per record: the regular expressions run
over the whole column; the distinct addresses become 128-bit keys (``processing.addresses``) and are
looked up with ``numpy.searchsorted`` in the sorted ranges of the scopes and of the embedded data
(a MaxMind file is read per distinct address, cached); the results are spread back with ``take``.

Databases: ``embedded`` is the country + ASN data shipped in the ``geoip2fast`` package (MIT licensed
code; data converted from MaxMind GeoLite2, under MaxMind's GeoLite2 EULA: see the README); it names
the organisation of an autonomous system but not its number. A MaxMind ``.mmdb`` (GeoLite2/GeoIP2 City or Country, read with
``maxminddb``) adds the city; ``asn_database`` (GeoLite2-ASN) adds AS numbers. Private, loopback,
link-local, multicast and reserved addresses are labelled in ``<role>_scope`` and never looked up.
"""
from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.processing.addresses import V4_MAPPED, RangeTable, network_keys, split_ints

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_FILE = "geoip2fast-asn-ipv6.dat.gz"
ROLES = ("client", "source", "destination")
GEO_PARTS = (("ip", pa.string()), ("scope", pa.string()), ("country", pa.string()), ("asn", pa.int64()),
             ("as_org", pa.string()), ("city", pa.string()))
GEO_FIELDS = tuple(pa.field(f"{role}_{part}", kind) for role in ROLES for part, kind in GEO_PARTS)
PUBLIC, PRIVATE, LOOPBACK, LINK_LOCAL, MULTICAST, RESERVED = (
    "public", "private", "loopback", "link-local", "multicast", "reserved")

_VALUE = r'"(?P<ip>[0-9A-Fa-f.:]+)'  # unbounded: a counted repetition makes RE2 twice as slow here
_ROLE_KEYS = {
    "client": ("client_ip", "clientip", "client_addr", "client_address", "remote_addr", "remote_ip", "remoteip",
               "remote_address", "peer_ip", "ip", "ip_address", "sourceIPAddress", "x_forwarded_for",
               "forwarded_for", "c_ip", "caller_ip", "user_ip"),
    "source": ("src_ip", "source_ip", "srcip", "src_addr", "srcaddr", "source_address", "src"),
    "destination": ("dst_ip", "dest_ip", "destination_ip", "dstip", "dst_addr", "dstaddr", "destination_address",
                    "dst", "server_ip"),
}
# Two patterns per role (flat keys, ECS "role":{..."ip":...}): one alternation of both is slower than the two
ROLE_PATTERNS = {
    role: (rf'"(?:{"|".join(keys)})":{_VALUE}', rf'"{role}":\{{(?:[^{{}}]*?,)?"ip":{_VALUE}')
    for role, keys in _ROLE_KEYS.items()
}
SHAPED_V4 = r'":"(?P<ip>(?:\d{1,3}\.){3}\d{1,3})"'
SHAPED_V6 = r'":"(?P<ip>(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|[0-9A-Fa-f:]*::[0-9A-Fa-f:.]*)"'
MESSAGE_V4 = r'(?:^|[^0-9.])(?P<ip>(?:\d{1,3}\.){3}\d{1,3})(?:$|[^0-9.])'


@dataclass(frozen=True)
class GeoInfo:
    """What the database says of one public address (all None when it does not know it)."""

    country: str | None = None
    asn: int | None = None
    as_org: str | None = None
    city: str | None = None


@dataclass(frozen=True)
class GeoConfig:
    """``processing.geoip``: ``database`` is ``embedded`` or the path of a MaxMind ``.mmdb``;
    ``asn_database`` an optional GeoLite2-ASN ``.mmdb``; ``enabled: false`` adds no geo columns."""

    database: str = EMBEDDED
    asn_database: str | None = None
    enabled: bool = True


def _extract(column: pa.ChunkedArray | pa.Array, pattern: str) -> pa.Array:
    return pc.struct_field(pc.extract_regex(column, pattern), [0])


def address_columns(records: pa.Table) -> dict[str, pa.Array]:
    """The address text of each role in every record (null where the record has none)."""
    attributes = _flat(records["attributes"])
    found = {role: pc.coalesce(*(_extract(attributes, pattern) for pattern in patterns))
             for role, patterns in ROLE_PATTERNS.items()}
    # the bare key "ip" also matches inside ECS "source":{"ip":...}: such a value is the peer's, not the client's
    is_peer = pc.fill_null(pc.or_kleene(pc.equal(found["client"], found["source"]),
                                        pc.equal(found["client"], found["destination"])), False)
    found["client"] = pc.if_else(is_peer, pa.scalar(None, pa.string()), found["client"])
    bare = np.flatnonzero(pc.and_(pc.is_null(found["client"]), pc.and_(
        pc.is_null(found["source"]), pc.is_null(found["destination"]))).to_numpy(zero_copy_only=False))
    if len(bare):  # records naming no address: the first value shaped like one, else one in the message
        rows = pa.array(bare)
        shaped = pc.coalesce(_extract(attributes.take(rows), SHAPED_V4), _extract(attributes.take(rows), SHAPED_V6),
                             _extract(_flat(records["message"]).take(rows), MESSAGE_V4))
        spread = np.full(records.num_rows, -1, np.int64)
        spread[bare] = np.arange(len(bare))
        fallback = shaped.take(pa.array(np.maximum(spread, 0), mask=spread < 0))
        found["client"] = pc.coalesce(found["client"], fallback)
    return found


def _flat(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


# Ranges that are not public, by scope; the rest of IPv4 is public, and of IPv6 only 2000::/3 is.
SPECIAL_RANGES = {
    PRIVATE: ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
    LOOPBACK: ("127.0.0.0/8", "::1/128"),
    LINK_LOCAL: ("169.254.0.0/16", "fe80::/10"),
    MULTICAST: ("224.0.0.0/4", "ff00::/8"),
    RESERVED: ("0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
               "240.0.0.0/4", "2001:db8::/32", "2001::/23", "::/128", "100::/64"),
}
SCOPE_NAMES = (PUBLIC, *SPECIAL_RANGES)


@dataclass(frozen=True)
class Addresses:
    """The distinct address texts of a batch with their keys, and where each role's rows point in them."""

    texts: pa.Array
    hi: np.ndarray
    lo: np.ndarray
    valid: np.ndarray  # a single address (not a network, not garbage)
    positions: dict[str, pa.Array]  # per role: the index of each row's address in ``texts`` (null: none)


def distinct_addresses(addresses: dict[str, pa.Array]) -> Addresses:
    """The distinct addresses of the roles' columns, parsed once for every look-up."""
    distinct = pc.unique(pa.concat_arrays([addresses[role] for role in ROLES]).drop_null())
    hi, lo, prefix, valid = network_keys(distinct)
    positions = {role: pc.index_in(addresses[role], value_set=distinct) for role in ROLES}
    return Addresses(distinct, hi, lo, valid & (prefix == 128), positions)


class GeoDatabase(Protocol):
    """A database of public addresses."""

    def lookup(self, addresses: Addresses, rows: np.ndarray) -> dict[str, pa.Array]:
        """``country``, ``asn``, ``as_org``, ``city`` of the addresses at ``rows`` (one value per row)."""


def _networks(specs: dict[str, tuple[str, ...]]) -> RangeTable:
    texts, values = [], []
    for index, scope in enumerate(SCOPE_NAMES):
        for network in specs.get(scope, ()):
            texts.append(network)
            values.append(index)
    hi, lo, prefix, _ = network_keys(pa.array(texts, pa.string()))
    return RangeTable.build(hi, lo, prefix, np.asarray(values))


_SCOPES = _networks(SPECIAL_RANGES)
_GLOBAL_V6 = np.uint64(1)  # 2000::/3: the top three bits are 001


def scopes(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray) -> pa.Array:
    """The scope name of each address (null where not valid)."""
    found = _SCOPES.find(hi, lo)
    is_v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    outside_v6 = ~is_v4 & ((hi >> np.uint64(61)) != _GLOBAL_V6)
    index = np.where(found >= 0, found, np.where(outside_v6, SCOPE_NAMES.index(RESERVED), 0))
    return pa.array(np.asarray(SCOPE_NAMES, dtype=object)[index], pa.string(), mask=~valid)


class EmbeddedDatabase:
    """The country + ASN data shipped with ``geoip2fast`` (IPv4 and IPv6), as sorted ranges."""

    def __init__(self) -> None:
        data = _embedded_data()
        (_, _, countries, orgs, first, first_asn, country_ids, org_ids, lengths, lengths_asn) = data
        codes = [name.split(":", 1)[0] for name in countries]
        self._countries = pa.array([c if len(c) == 2 and c.isalpha() else None for c in codes], pa.string())
        self._orgs = pa.array([o if o not in ("<unknown>", "IANA.ORG") else None for o in orgs], pa.string())
        self._country_ranges = _ranges(first, lengths, country_ids)
        self._org_ranges = _ranges(first_asn, lengths_asn, org_ids)

    def lookup(self, addresses: Addresses, rows: np.ndarray) -> dict[str, pa.Array]:
        """Country code and AS organisation of the addresses at ``rows``."""
        hi, lo = addresses.hi[rows], addresses.lo[rows]
        country = self._country_ranges.find(hi, lo)
        org = self._org_ranges.find(hi, lo)
        return {"country": self._countries.take(pa.array(np.maximum(country, 0), mask=country < 0)),
                "asn": pa.nulls(len(rows), pa.int64()),
                "as_org": self._orgs.take(pa.array(np.maximum(org, 0), mask=org < 0)),
                "city": pa.nulls(len(rows), pa.string())}


def _embedded_data() -> tuple:
    """The country + ASN tables of the geoip2fast data file (its format 120: pickled lists)."""
    import gzip
    import pickle

    import geoip2fast

    path = Path(geoip2fast.__file__).with_name(EMBEDDED_FILE)
    with gzip.open(path, "rb") as handle:
        version, info, _, tables = pickle.load(handle)  # noqa: S301 - the data file of an installed package
    if version != 120 or not (info.get("country") and info.get("asn")) or len(tables) != 10:
        raise ValueError(f"{path}: unexpected geoip2fast data format {version} {info}")
    return tables


def _ranges(first: list[list[int]], lengths: list[list[int]], ids: list[list[int]]) -> RangeTable:
    """Ranges of geoip2fast's chunked lists: IPv4 starts are below 2**32, IPv6 starts above."""
    starts = list(itertools.chain.from_iterable(first))
    length = np.fromiter(itertools.chain.from_iterable(lengths), np.int64, len(starts))
    values = np.fromiter(itertools.chain.from_iterable(ids), np.int64, len(starts))
    hi, lo = split_ints(starts)
    v4 = (hi == 0) & (lo < np.uint64(1 << 32))
    lo = np.where(v4, lo | V4_MAPPED, lo)
    return RangeTable.build(hi, lo, np.where(v4, length + 96, length), values)


class MaxMindDatabase:
    """A MaxMind ``.mmdb`` (City or Country), with an optional ASN ``.mmdb``; looked up per distinct
    address (the reader has no bulk look-up), with a bounded cache."""

    MAX_CACHED = 500_000

    def __init__(self, path: str, asn_path: str | None = None) -> None:
        import maxminddb

        self._reader = maxminddb.open_database(path)
        self._asn = maxminddb.open_database(asn_path) if asn_path else None
        self._cache: dict[str, GeoInfo] = {}

    def lookup(self, addresses: Addresses, rows: np.ndarray) -> dict[str, pa.Array]:
        """Country, city and (from this file or the ASN file) autonomous system of the addresses at ``rows``."""
        found = [self._one(text) for text in addresses.texts.take(pa.array(rows, pa.int64())).to_pylist()]
        return {"country": pa.array([f.country for f in found], pa.string()),
                "asn": pa.array([f.asn for f in found], pa.int64()),
                "as_org": pa.array([f.as_org for f in found], pa.string()),
                "city": pa.array([f.city for f in found], pa.string())}

    def _one(self, text: str) -> GeoInfo:
        hit = self._cache.get(text)
        if hit is None:
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            hit = self._cache[text] = self._read(text.split("%", 1)[0].strip())
        return hit

    def _read(self, address: str) -> GeoInfo:
        found: dict[str, Any] = self._reader.get(address) or {}
        asn: dict[str, Any] = (self._asn.get(address) or {}) if self._asn is not None else found
        country = (found.get("country") or found.get("registered_country") or {}).get("iso_code")
        city = ((found.get("city") or {}).get("names") or {}).get("en")
        return GeoInfo(country=country, asn=asn.get("autonomous_system_number"),
                       as_org=asn.get("autonomous_system_organization"), city=city)


def open_database(config: GeoConfig) -> GeoDatabase:
    """The database ``config`` names."""
    if config.database == EMBEDDED:
        return EmbeddedDatabase()
    return MaxMindDatabase(config.database, config.asn_database)


def check_database(config: GeoConfig) -> None:
    """Raise ValueError when a ``.mmdb`` of ``config`` cannot be opened (at configuration time)."""
    for path in (config.database, config.asn_database):
        if path is None or path == EMBEDDED:
            continue
        if not Path(path).is_file():
            raise ValueError(f"no such file: {path}")
        import maxminddb

        try:
            maxminddb.open_database(path).close()
        except (maxminddb.InvalidDatabaseError, OSError, ValueError) as exc:
            raise ValueError(f"not a MaxMind database: {path}: {exc}") from None


_DATABASES: dict[GeoConfig, GeoDatabase] = {}
_LOCK = threading.Lock()


def database(config: GeoConfig) -> GeoDatabase:
    """The process's database for ``config``, opened at its first use."""
    with _LOCK:
        found = _DATABASES.get(config)
        if found is None:
            found = _DATABASES[config] = open_database(config)
            log.info("GeoIP database %s loaded", config.database)
        return found


def geo_columns(addresses: Addresses, config: GeoConfig) -> dict[str, pa.Array]:
    """The ``<role>_<part>`` columns (GEO_FIELDS) for the addresses of each role: the scope of each
    distinct address, and what the database says of the public ones."""
    distinct, valid = addresses.texts, addresses.valid
    scope = scopes(addresses.hi, addresses.lo, valid)
    public = np.flatnonzero(pc.fill_null(pc.equal(scope, PUBLIC), False).to_numpy(zero_copy_only=False))
    found = database(config).lookup(addresses, public) if len(public) else {}
    where = pa.array(np.full(len(distinct), -1, np.int64))
    if len(public):
        spread = np.full(len(distinct), -1, np.int64)
        spread[public] = np.arange(len(public))
        where = pa.array(np.maximum(spread, 0), mask=spread < 0)
    values = {"ip": pc.if_else(pa.array(valid), distinct, pa.scalar(None, pa.string())), "scope": scope}
    for part, kind in GEO_PARTS[2:]:
        values[part] = found[part].take(where) if found else pa.nulls(len(distinct), kind)
    columns: dict[str, pa.Array] = {}
    for role in ROLES:
        for part, _ in GEO_PARTS:
            columns[f"{role}_{part}"] = pc.take(values[part], addresses.positions[role])
    return columns


def origin_text(country: pa.Array, asn: pa.Array, as_org: pa.Array, scope: pa.Array) -> pa.Array:
    """A short text per row naming where an address is: ``DE AS64500 Example Net``, ``private``..."""
    asn_text = pc.binary_join_element_wise("AS", pc.cast(asn, pa.string()), "")
    parts = pc.binary_join_element_wise(
        pc.fill_null(country, "??"), pc.fill_null(asn_text, ""), pc.fill_null(as_org, "unknown network"), " ")
    parts = pc.replace_substring(parts, "  ", " ")
    public = pc.equal(pc.fill_null(scope, PUBLIC), PUBLIC)
    return pc.if_else(pc.is_null(scope), pa.scalar(None, pa.string()), pc.if_else(public, parts, scope))
