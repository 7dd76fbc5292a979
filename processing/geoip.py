"""Where an address is: the client, source and destination address of each record, with its country,
autonomous system and (from a MaxMind database) city, offline.

Addresses are found in the attributes (compact JSON) by the field names the parsers and shippers
use (``client_ip``, ``remote_addr``, ``sourceIPAddress``, ``src_ip``, ``dst_ip``, ECS ``source.ip``...);
a record with none of those takes as its client the first IPv4 or IPv6 address it mentions, in its
attributes, else in its message (``processing.mentions``). Nothing loops per record: the regular expressions run
over the whole column; the distinct addresses become 128-bit keys (``processing.addresses``) and are
looked up with ``numpy.searchsorted`` in the sorted ranges of the scopes and of the embedded data
(a MaxMind file is read per distinct address, cached); the results are spread back with ``take``.

Databases: ``embedded`` is the country data shipped in the ``geoip2fast`` package (MIT licensed code;
data converted from MaxMind GeoLite2, under MaxMind's GeoLite2 EULA: see the README) with the autonomous
systems of the ``plevin-db-network`` package (number and organisation of the AS that announces the
address in the RIPE RIS routing tables; its data licences are in the README). geoip2fast's data names an
AS's organisation but not its number (its converter numbers the names itself), so the number comes from
plevin's file, exported once per process into sorted arrays; where no AS announces an address, the
organisation is geoip2fast's. A MaxMind ``.mmdb`` (GeoLite2/GeoIP2 City or Country, read with
``maxminddb``) adds the city, and takes its AS from ``asn_database`` (GeoLite2-ASN) when one is given,
else from plevin's file. Private, loopback, link-local, multicast and reserved addresses are labelled in
``<role>_scope`` and never looked up.
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

from logwarden.processing.addresses import V4_MAPPED, RangeTable, network_keys, sort_keys, split_ints
from logwarden.processing.mentions import Mentions, Texts, flat, ip_mentions, spread

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
ROLE_KEYS = {role: pa.array(keys, pa.string()) for role, keys in _ROLE_KEYS.items()}
# ECS nests the address: "source":{"port":22,"ip":"..."}
NESTED_PATTERNS = {role: rf'"{role}":\{{(?:[^{{}}]*?,)?"ip":{_VALUE}' for role in _ROLE_KEYS}


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


def _nested(attributes: pa.Array, role: str) -> pa.Array:
    """The address of ECS's ``"<role>":{..."ip":...}`` in each record (looked for only where the role's
    object is there at all: a plain substring test is much cheaper than the pattern)."""
    rows = np.flatnonzero(pc.fill_null(pc.match_substring(attributes, f'"{role}":{{'), False)
                          .to_numpy(zero_copy_only=False))
    if not len(rows):
        return pa.nulls(len(attributes), pa.string())
    values = pc.struct_field(pc.extract_regex(attributes.take(pa.array(rows)), NESTED_PATTERNS[role]), [0])
    return spread(values, rows, len(attributes))


def address_columns(records: pa.Table, mentioned: Mentions | None = None) -> dict[str, pa.Array]:
    """The address text of each role in every record (null where the record has none): the first
    address under one of the role's keys, else under ECS's ``"<role>":{"ip":...}``. A record that names
    no role takes as its client the first address it mentions. ``mentioned``: every IPv4 and IPv6
    address of the attributes (with their keys), then of the message, when the caller has them already."""
    attributes = flat(records["attributes"])
    if mentioned is None:
        mentioned = ip_mentions(Texts(records))
    count = records.num_rows
    found = {role: pc.coalesce(mentioned.under_keys(ROLE_KEYS[role]).first_per_row(count),
                               _nested(attributes, role)) for role in ROLES}
    # the bare key "ip" also matches inside ECS "source":{"ip":...}: such a value is the peer's, not the client's
    is_peer = pc.fill_null(pc.or_kleene(pc.equal(found["client"], found["source"]),
                                        pc.equal(found["client"], found["destination"])), False)
    found["client"] = pc.if_else(is_peer, pa.scalar(None, pa.string()), found["client"])
    bare = np.flatnonzero(pc.and_(pc.is_null(found["client"]), pc.and_(
        pc.is_null(found["source"]), pc.is_null(found["destination"]))).to_numpy(zero_copy_only=False))
    if len(bare):  # records naming no role: the first address they mention, IPv4 or IPv6
        is_bare = np.zeros(count, bool)
        is_bare[bare] = True
        fallback = mentioned.where(is_bare[mentioned.rows]).first_per_row(count)
        found["client"] = pc.coalesce(found["client"], fallback)
    return found


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
        self._routed = routed_networks()

    def lookup(self, addresses: Addresses, rows: np.ndarray) -> dict[str, pa.Array]:
        """Country code, and AS number and organisation, of the addresses at ``rows``."""
        hi, lo = addresses.hi[rows], addresses.lo[rows]
        country = self._country_ranges.find(hi, lo)
        asn, as_org = self._routed.lookup(hi, lo)
        unrouted = np.flatnonzero(pc.is_null(asn).to_numpy(zero_copy_only=False))
        if len(unrouted):  # no AS announces these: geoip2fast may still name the network's organisation
            org = self._org_ranges.find(hi[unrouted], lo[unrouted])
            named = self._orgs.take(pa.array(np.maximum(org, 0), mask=org < 0))
            as_org = pc.coalesce(as_org, spread(named, unrouted, len(rows)))
        return {"country": self._countries.take(pa.array(np.maximum(country, 0), mask=country < 0)),
                "asn": asn, "as_org": as_org, "city": pa.nulls(len(rows), pa.string())}


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


class RoutedNetworks:
    """The autonomous system announcing each address, from the network file of ``plevin-db-network``.

    plevin's reader answers one address at a time (about 100 µs each), so its address spine (the start
    of every range, IPv4 and IPv6, with the network row of each) and its network table are exported once
    into sorted arrays, looked up with ``numpy.searchsorted`` like the other ranges. The export reads the
    file through ``plevin.reader`` (format 2; the reader refuses another format)."""

    def __init__(self, path: str | None = None) -> None:
        import plevin
        from plevin.reader import File

        file = File(path or plevin.database().path)
        asns = _plevin_column(file, "col.network.asn")
        self.asns = pa.array(asns, pa.int64(), mask=asns <= 0)  # 0: registered space no AS announces
        self.orgs = _network_names(file, asns > 0)
        starts, links = _plevin_index(file, "spine.v4"), _plevin_column(file, "spine.v4.network") - 1
        self._v4 = _Spine(np.asarray(starts, np.uint64), links)
        starts6 = _plevin_index(file, "spine.v6")
        hi, lo = split_ints(starts6)
        self._v6 = _Spine(sort_keys(hi, lo), _plevin_column(file, "spine.v6.network") - 1)
        log.info("AS data: %d networks, %d IPv4 and %d IPv6 ranges (plevin %s)", len(asns), len(starts),
                 len(starts6), file.built)

    def rows(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """The network row of each address (-1 where the file knows no network)."""
        found = np.full(len(hi), -1, np.int64)
        v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
        found[v4] = self._v4.find(lo[v4] & np.uint64(0xFFFF_FFFF))
        if not v4.all():
            found[~v4] = self._v6.find(sort_keys(hi[~v4], lo[~v4]))
        return found

    def lookup(self, hi: np.ndarray, lo: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """(AS number, AS organisation) of each address; both null where no AS announces it."""
        rows = self.rows(hi, lo)
        take = pa.array(np.maximum(rows, 0), mask=rows < 0)
        asn = self.asns.take(take)
        return asn, pc.if_else(pc.is_valid(asn), self.orgs.take(take), pa.scalar(None, pa.string()))


@dataclass
class _Spine:
    """Contiguous ranges given by their sorted starts, each with a network row (-1: none)."""

    starts: np.ndarray
    links: np.ndarray

    def find(self, keys: np.ndarray) -> np.ndarray:
        if not len(keys) or not len(self.starts):
            return np.full(len(keys), -1, np.int64)
        at = np.searchsorted(self.starts, keys, side="right") - 1
        return np.where(at >= 0, self.links[np.maximum(at, 0)], -1)


def _plevin_column(file: Any, name: str) -> np.ndarray:
    """Every value of one column section of a plevin file."""
    section = file.sections[name]
    values = itertools.chain.from_iterable(section.whole(block) for block in range(section.blocks))
    return np.fromiter(itertools.islice(values, section.count), np.int64, section.count)


def _plevin_index(file: Any, name: str) -> list[int]:
    """Every address of one spine section of a plevin file (Python ints: IPv6 needs 128 bits)."""
    section = file.sections[name]
    groups = -(-section.count // section.per_group)
    return list(itertools.chain.from_iterable(section.values(group) for group in range(groups)))


def _network_names(file: Any, announced: np.ndarray) -> pa.Array:
    """The organisation of each network row: the operator's company, else the AS handle (null for
    networks no AS announces)."""
    pool = file.sections["strings"]
    handles = _plevin_column(file, "col.network.handle")
    operators = _plevin_column(file, "link.network.operator")
    companies = _plevin_column(file, "col.operator.company")
    company = np.where(operators > 0, companies[np.maximum(operators - 1, 0)], 0)
    ids = np.where(company > 0, company, handles)
    distinct, inverse = np.unique(np.where(announced, ids, 0), return_inverse=True)
    texts = pa.array([pool[int(i)] or None for i in distinct.tolist()], pa.string())
    return texts.take(pa.array(inverse.ravel()))


_ROUTED: list[RoutedNetworks] = []
_ROUTED_LOCK = threading.Lock()  # not _LOCK: opening a database under _LOCK takes this one


def routed_networks() -> RoutedNetworks:
    """The process's AS data, exported from plevin's file at its first use."""
    with _ROUTED_LOCK:
        if not _ROUTED:
            _ROUTED.append(RoutedNetworks())
        return _ROUTED[0]


class MaxMindDatabase:
    """A MaxMind ``.mmdb`` (City or Country), with an optional ASN ``.mmdb`` (else the AS comes from
    :class:`RoutedNetworks`); looked up per distinct address (the reader has no bulk look-up), with a
    bounded cache."""

    MAX_CACHED = 500_000

    def __init__(self, path: str, asn_path: str | None = None) -> None:
        import maxminddb

        self._reader = maxminddb.open_database(path)
        self._asn = maxminddb.open_database(asn_path) if asn_path else None
        self._cache: dict[str, GeoInfo] = {}

    def lookup(self, addresses: Addresses, rows: np.ndarray) -> dict[str, pa.Array]:
        """Country, city and (from this file or the ASN file) autonomous system of the addresses at ``rows``."""
        found = [self._one(text) for text in addresses.texts.take(pa.array(rows, pa.int64())).to_pylist()]
        if self._asn is None:  # a City/Country file names no AS: take it from the embedded AS data
            asn, as_org = routed_networks().lookup(addresses.hi[rows], addresses.lo[rows])
        else:
            asn = pa.array([f.asn for f in found], pa.int64())
            as_org = pa.array([f.as_org for f in found], pa.string())
        return {"country": pa.array([f.country for f in found], pa.string()), "asn": asn, "as_org": as_org,
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


def locate(texts: pa.Array, config: GeoConfig) -> pa.Array:
    """The :func:`origin_text` of each address text (null where it is null or not an address), worked
    out once per distinct text."""
    encoded = pc.dictionary_encode(texts)
    distinct = encoded.dictionary
    none = pa.nulls(len(distinct), pa.string())
    geo = geo_columns(distinct_addresses({"client": distinct, "source": none, "destination": none}), config)
    origins = origin_text(geo["client_country"], geo["client_asn"], geo["client_as_org"], geo["client_scope"])
    return origins.take(encoded.indices)
