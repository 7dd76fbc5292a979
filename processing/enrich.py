"""Enrichment: service metadata from a YAML inventory (team, tier, environment) and the host of each
record, as lake columns; with a :class:`Context`, also where each address is (``processing.geoip``),
whether the record mentions a threat indicator (``processing.threatintel``) and who its user is
(``processing.users``).

Lake columns added by the context (all of them on every record, null where not known):
``{client,source,destination}_{ip,scope,country,asn,as_org,city}``, ``threat_matched``,
``threat_indicator``, ``threat_type``, ``threat_list``, ``threat_confidence``, ``threat_origin``,
``user_name``, ``user_department``, ``user_privileged``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.yamlconf import load_yaml
from logwarden.processing.geoip import (
    GEO_FIELDS, ROLES, GeoConfig, address_columns, distinct_addresses, geo_columns, origin_text,
)
from logwarden.processing.threatintel import THREAT_FIELDS, ThreatConfig, threat_columns
from logwarden.processing.users import USER_FIELDS, UsersConfig, user_columns

INVENTORY_FIELDS = (pa.field("team", pa.string()), pa.field("tier", pa.int64()), pa.field("environment", pa.string()))
HOST_FIELD = pa.field("host", pa.string())
_HOST = r'"host":"(?P<host>[^"\\]*)"'  # attributes are compact JSON (orjson)
CONTEXT_FIELDS = (*GEO_FIELDS, *THREAT_FIELDS, *USER_FIELDS)


@dataclass(frozen=True)
class Context:
    """Security context: GeoIP, threat intelligence, user directory. It holds settings and paths only
    (it travels with every Dask task); the data is loaded on the worker, once per process."""

    geoip: GeoConfig = GeoConfig()
    threat_intel: ThreatConfig = ThreatConfig()
    users: UsersConfig = UsersConfig()

    def enrich(self, records: pa.Table) -> pa.Table:
        """``records`` with the CONTEXT_FIELDS columns."""
        addresses = distinct_addresses(address_columns(records))
        if self.geoip.enabled:
            geo = geo_columns(addresses, self.geoip)
        else:
            geo = {f.name: pa.nulls(records.num_rows, f.type) for f in GEO_FIELDS}
        origins = {role: origin_text(geo[f"{role}_country"], geo[f"{role}_asn"], geo[f"{role}_as_org"],
                                     geo[f"{role}_scope"]) for role in ROLES}
        columns = {**geo, **threat_columns(self.threat_intel, records, addresses, origins),
                   **user_columns(self.users, records)}
        for spec in CONTEXT_FIELDS:
            records = records.append_column(spec, columns[spec.name])
        return records


@dataclass(frozen=True)
class ServiceInfo:
    """What the inventory says of one service."""

    team: str | None = None
    tier: int | None = None
    environment: str | None = None


@dataclass(frozen=True)
class Inventory:
    """Service metadata by service name, with a default for the rest."""

    services: dict[str, ServiceInfo] = field(default_factory=dict)
    default: ServiceInfo = ServiceInfo()
    context: Context | None = None  # set from the configuration (processing.config)

    @classmethod
    def load(cls, path: str | Path | None) -> "Inventory":
        """Read an inventory file (``default:`` and ``services:``); None gives an empty inventory."""
        if path is None:
            return cls()
        doc = load_yaml(path)
        data = doc.data or {}
        if not isinstance(data, dict) or set(data) - {"default", "services"}:
            raise doc.error([], "an inventory is a mapping with 'default' and 'services'")
        known = {"team", "tier", "environment"}

        def info(raw, where: list) -> ServiceInfo:
            if not isinstance(raw, dict) or set(raw) - known:
                raise doc.error(where, f"expected a mapping of {', '.join(sorted(known))}")
            return ServiceInfo(**raw)

        services = {name: info(raw, ["services", name]) for name, raw in (data.get("services") or {}).items()}
        return cls(services, info(data.get("default") or {}, ["default"]))

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
        return records if self.context is None else self.context.enrich(records)
