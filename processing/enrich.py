"""Enrichment: service metadata from a YAML inventory (team, tier, environment) and the host of each
record, as lake columns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.yamlconf import load_yaml

INVENTORY_FIELDS = (pa.field("team", pa.string()), pa.field("tier", pa.int64()), pa.field("environment", pa.string()))
HOST_FIELD = pa.field("host", pa.string())
_HOST = r'"host":"(?P<host>[^"\\]*)"'  # attributes are compact JSON (orjson)


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
        """``records`` with the team, tier and environment of their service, and their host."""
        names = pc.unique(records["service"]).to_pylist()
        infos = [self.services.get(name, self.default) for name in names]
        index = pc.index_in(records["service"], value_set=pa.array(names, pa.string()))
        for spec in INVENTORY_FIELDS:
            values = pa.array([getattr(info, spec.name) for info in infos], spec.type)
            records = records.append_column(spec, pc.take(values, index))
        host = pc.struct_field(pc.extract_regex(records["attributes"], _HOST), [0])
        return records.append_column(HOST_FIELD, host)
