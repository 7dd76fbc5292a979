"""Enrichment: service metadata from a YAML inventory (team, tier, environment) and the host of each
record, as lake columns; with a :class:`Context`, also the asset context of the host (the inventory's
``hosts:``: owner team, environment, criticality), where each address is (``processing.geoip``),
whether the record mentions a threat indicator (``processing.threatintel``) and who its user is
(``processing.users``).

Lake columns added with the context (all of them on every record, null where not known):
``host_team``, ``host_environment``, ``host_criticality``,
``{client,source,destination}_{ip,scope,country,asn,as_org,city}``, ``threat_matched``,
``threat_indicator``, ``threat_type``, ``threat_list``, ``threat_confidence``, ``threat_origin``,
``user_name``, ``user_department``, ``user_privileged``.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.yamlconf import YamlDocument, load_yaml
from logwarden.processing.geoip import (
    GEO_FIELDS, GeoConfig, address_columns, distinct_addresses, geo_columns, locate, origin_text,
)
from logwarden.processing.mentions import Texts, ip_mentions
from logwarden.processing.threatintel import THREAT_FIELDS, ThreatConfig, threat_columns
from logwarden.processing.users import USER_FIELDS, UsersConfig, user_columns

INVENTORY_FIELDS = (pa.field("team", pa.string()), pa.field("tier", pa.int64()), pa.field("environment", pa.string()))
HOST_FIELD = pa.field("host", pa.string())
_HOST = r'"host":"(?P<host>[^"\\]*)"'  # attributes are compact JSON (orjson)
CONTEXT_FIELDS = (*GEO_FIELDS, *THREAT_FIELDS, *USER_FIELDS)
ASSET_FIELDS = (pa.field("host_team", pa.string()), pa.field("host_environment", pa.string()),
                pa.field("host_criticality", pa.string()))
HOST_KEYS = frozenset({"team", "environment", "criticality"})
CRITICALITY = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Context:
    """Security context: GeoIP, threat intelligence, user directory. It holds settings and paths only
    (it travels with every Dask task); the data is loaded on the worker, once per process."""

    geoip: GeoConfig = GeoConfig()
    threat_intel: ThreatConfig = ThreatConfig()
    users: UsersConfig = UsersConfig()

    def enrich(self, records: pa.Table) -> pa.Table:
        """``records`` with the CONTEXT_FIELDS columns."""
        texts = Texts(records)
        mentioned = ip_mentions(texts)  # every address: the roles are among them, the lists look at all
        addresses = distinct_addresses(address_columns(records, mentioned))
        if self.geoip.enabled:
            geo = geo_columns(addresses, self.geoip)
        else:
            geo = {f.name: pa.nulls(records.num_rows, f.type) for f in GEO_FIELDS}
        where = partial(locate, config=self.geoip) if self.geoip.enabled else None
        threat = threat_columns(self.threat_intel, texts, records.num_rows, mentioned,
                                partial(_client_origin, geo), where)
        columns = {**geo, **threat, **user_columns(self.users, records)}
        for spec in CONTEXT_FIELDS:
            records = records.append_column(spec, columns[spec.name])
        return records


def _client_origin(geo: dict[str, pa.Array], rows: pa.Array) -> pa.Array:
    """Where the client of the records at ``rows`` is (``origin_text``)."""
    parts = (geo[f"client_{part}"].take(rows) for part in ("country", "asn", "as_org", "scope"))
    return origin_text(*parts)


@dataclass(frozen=True)
class ServiceInfo:
    """What the inventory says of one service."""

    team: str | None = None
    tier: int | None = None
    environment: str | None = None


@dataclass(frozen=True)
class HostInfo:
    """What the inventory says of one host: who owns it, where it runs, how critical it is."""

    team: str | None = None
    environment: str | None = None
    criticality: str | None = None


@dataclass(frozen=True)
class Hosts:
    """Asset context by host name: exact names first, then glob patterns (``db-*``) in file order."""

    exact: dict[str, HostInfo] = field(default_factory=dict)
    patterns: tuple[tuple[str, HostInfo], ...] = ()

    def of(self, host: str) -> HostInfo | None:
        """The entry of ``host`` (None where no name or pattern names it)."""
        found = self.exact.get(host)
        if found is None:
            found = next((info for pattern, info in self.patterns if fnmatch.fnmatchcase(host, pattern)), None)
        return found

    def columns(self, hosts: pa.ChunkedArray | pa.Array) -> dict[str, pa.Array]:
        """The ASSET_FIELDS columns for the ``host`` column: one look-up per distinct host."""
        names = pc.unique(hosts).drop_null()
        infos = [self.of(name) or HostInfo() for name in names.to_pylist()]
        index = pc.index_in(hosts, value_set=names)
        return {spec.name: pc.take(pa.array([getattr(info, spec.name[len("host_"):]) for info in infos], spec.type),
                                   index) for spec in ASSET_FIELDS}


@dataclass(frozen=True)
class Inventory:
    """Service metadata by service name, with a default for the rest; asset context by host."""

    services: dict[str, ServiceInfo] = field(default_factory=dict)
    default: ServiceInfo = ServiceInfo()
    context: Context | None = None  # set from the configuration (processing.config)
    hosts: Hosts = Hosts()

    @classmethod
    def load(cls, path: str | Path | None) -> "Inventory":
        """Read an inventory file (``default:`` and ``services:``); None gives an empty inventory."""
        if path is None:
            return cls()
        doc = load_yaml(path)
        data = doc.data or {}
        if not isinstance(data, dict) or set(data) - {"default", "services", "hosts"}:
            raise doc.error([], "an inventory is a mapping with 'default', 'services' and 'hosts'")
        known = {"team", "tier", "environment"}

        def info(raw, where: list) -> ServiceInfo:
            if not isinstance(raw, dict) or set(raw) - known:
                raise doc.error(where, f"expected a mapping of {', '.join(sorted(known))}")
            return ServiceInfo(**raw)

        services = {name: info(raw, ["services", name]) for name, raw in (data.get("services") or {}).items()}
        return cls(services, info(data.get("default") or {}, ["default"]), hosts=_hosts(doc, data.get("hosts")))

    def enrich(self, records: pa.Table) -> pa.Table:
        """``records`` with the team, tier and environment of their service, and their host (and the
        context's columns when there is one)."""
        names = pc.unique(records["service"]).to_pylist()
        infos = [self.services.get(name, self.default) for name in names]
        index = pc.index_in(records["service"], value_set=pa.array(names, pa.string()))
        for spec in INVENTORY_FIELDS:
            values = pa.array([getattr(info, spec.name) for info in infos], spec.type)
            records = records.append_column(spec, pc.take(values, index))
        host = pc.struct_field(pc.extract_regex(records["attributes"], _HOST), [0])
        records = records.append_column(HOST_FIELD, host)
        if self.context is None:
            return records
        for spec, values in zip(ASSET_FIELDS, self.hosts.columns(host).values()):
            records = records.append_column(spec, values)
        return self.context.enrich(records)


def _hosts(doc: YamlDocument, raw: Any) -> Hosts:
    """The ``hosts:`` mapping of an inventory: host name or glob pattern to team, environment, criticality."""
    if raw is None:
        return Hosts()
    if not isinstance(raw, dict):
        raise doc.error(["hosts"], "expected a mapping of host name (or glob pattern) to its team, environment "
                                   "and criticality")
    exact: dict[str, HostInfo] = {}
    patterns: list[tuple[str, HostInfo]] = []
    for name, entry in raw.items():
        where = ["hosts", name]
        if not isinstance(entry, dict) or not entry or set(entry) - HOST_KEYS:
            raise doc.error(where, f"expected a mapping of {', '.join(sorted(HOST_KEYS))}")
        for key, value in entry.items():
            if not isinstance(value, str) or not value.strip():
                raise doc.error([*where, key], "expected a non-empty string")
        if entry.get("criticality", CRITICALITY[0]) not in CRITICALITY:
            raise doc.error([*where, "criticality"], f"expected one of {', '.join(CRITICALITY)}")
        info = HostInfo(**entry)
        if any(char in str(name) for char in "*?["):
            patterns.append((str(name), info))
        else:
            exact[str(name)] = info
    return Hosts(exact, tuple(patterns))
