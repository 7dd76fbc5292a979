"""Tenants: every record carries the tenant of the token it came in with (column ``tenant``).

``DEFAULT_TENANT`` is the tenant of records that have none (a log file replayed offline, a record
written before tenants existed). It is the collector's default (``CollectorConfig.default_tenant``
and ``stream_tenant``), so a single-tenant installation has one tenant whichever way its records
arrive.
"""
from __future__ import annotations

DEFAULT_TENANT = "default"


def tenant_or_default(tenant: str | None) -> str:
    """``tenant``, or ``DEFAULT_TENANT`` when it is missing or empty."""
    return tenant if tenant else DEFAULT_TENANT
