"""Crafted traffic that fires each of the five seed rules exactly, with timestamps 30 minutes in the past."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def incident_records(start: float | None = None) -> list[dict]:
    """Background traffic for 16 minutes, plus one incident per seed rule."""
    t0 = (time.time() - 1800) if start is None else start
    out: list[dict] = []

    def add(offset: float, service: str, level: str, message: str, **fields) -> None:
        out.append({"timestamp": _iso(t0 + offset), "level": level, "service": service, "message": message,
                    **fields})

    for i in range(0, 960, 5):  # background: every service but inventory-service, every 5 s for 16 minutes
        add(i, "api-gateway", "INFO", f"GET /api/v1/items 200 in {20 + i % 50}ms", duration_ms=20.0 + i % 50)
        add(i + 1, "auth-service", "INFO", f"User u-{i % 40} logged in", user_id=f"u-{i % 40}")
        add(i + 2, "payment-service", "INFO", "Payment authorized", duration_ms=120.0)
        add(i + 3, "orders-service", "INFO", "Order created")
    for i in range(0, 60, 5):  # inventory-service speaks for one minute, then goes silent -> service_down
        add(i, "inventory-service", "INFO", "Stock level checked", item="sku-1")
    for i in range(101):  # 101 errors in 101 s -> error_spike
        add(120 + i, "payment-service", "ERROR", "Payment provider returned 503", error_code="PROVIDER_503")
    add(180, "api-gateway", "WARNING", "GET /api/v1/report 200 in 6200ms", duration_ms=6200.0)  # slow_response
    for i in range(50):  # 50 errors of one user within the hour -> suspicious_user
        add(200 + i * 10, "auth-service", "ERROR", "Authentication failed for user u-666", user_id="u-666",
            error_code="AUTH_FAILED")
    for i in range(10):  # 10 database connection failures in 30 s, told by the message only
        add(400 + i * 3, "orders-service", "CRITICAL", "Database connection failed: connection refused by db:5432")
    return sorted(out, key=lambda r: r["timestamp"])


def normal_records(start: float | None = None, minutes: int = 20) -> list[dict]:
    """Four services sending steadily, with a few errors and no incident."""
    t0 = (time.time() - minutes * 60 - 60) if start is None else start
    out = []
    for i in range(0, minutes * 60, 2):
        for n, service in enumerate(("api-gateway", "auth-service", "payment-service", "database-service")):
            level = "ERROR" if (i // 2 + n) % 97 == 0 else "INFO"
            out.append({"timestamp": _iso(t0 + i + n * 0.1), "level": level, "service": service,
                        "message": "Database query took 2s" if level == "ERROR" else "request served",
                        "user_id": f"u-{(i + n) % 30}", "duration_ms": float(10 + (i * 7 + n) % 3000)})
    return out


def time_chunks(records: list[dict], seconds: float = 20.0) -> list[list[dict]]:
    """Consecutive slices of time-ordered records, each spanning ``seconds`` of event time."""
    chunks: list[list[dict]] = []
    start = None
    for record in records:
        at = datetime.fromisoformat(record["timestamp"]).timestamp()
        if start is None or at - start >= seconds:
            chunks.append([])
            start = at
        chunks[-1].append(record)
    return chunks


def ndjson(records: list[dict]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records)
