"""Records for the storage tests: several services, levels, users and tenants over a few days."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from logwarden.common.records import record_schema

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
SERVICES = ("api", "billing", "search")


def rows(n: int, start: datetime = T0, step: timedelta = timedelta(minutes=7), tenants=("acme", "globex"),
         prefix: str = "r") -> list[dict]:
    """``n`` records, one every ``step`` from ``start``; fields cycle so every filter has matches."""
    out = []
    for i in range(n):
        level = "ERROR" if i % 5 == 0 else "WARNING" if i % 7 == 0 else "INFO"
        out.append({
            "timestamp": start + i * step, "service": SERVICES[i % 3], "level": level,
            "message": f"request {i} {'failed: timeout talking to db' if level == 'ERROR' else 'served'}",
            "user_id": f"user-{i % 4}", "request_id": f"req-{i}", "error_code": "DB_TIMEOUT" if level == "ERROR"
            else None, "duration_ms": float(i % 100), "record_id": f"{prefix}{i}", "tenant": tenants[i % len(tenants)],
            "source": "test", "received_at": start + i * step, "attributes": "{}",
        })
    return out


def table(records: list[dict], with_templates: bool = False) -> pa.Table:
    """Records in the record layout; optionally with the template columns processing adds."""
    result = pa.Table.from_pylist(records, schema=record_schema())
    if with_templates:
        ids = [f"T{int(r['level'] == 'ERROR')}" for r in records]
        result = result.append_column("template_id", pa.array(ids)).append_column(
            "template", pa.array(["request <*> failed: <*>" if i == "T1" else "request <*> served" for i in ids]))
    return result
