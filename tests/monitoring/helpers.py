"""Build record tables for rule tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from logwarden.common.records import record_schema

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def rec(seconds: float, service: str = "svc", level: str = "INFO", message: str = "ok", **fields) -> dict:
    """One normalized record at T0 + ``seconds``."""
    return {"timestamp": at(seconds), "service": service, "level": level, "message": message,
            "record_id": f"{service}-{seconds}", **fields}


def table(records: list[dict]) -> pa.Table:
    """Records as a table of the record layout, in event-time order."""
    return pa.Table.from_pylist(sorted(records, key=lambda r: r["timestamp"]), schema=record_schema())
