"""Seeded service traffic for the ML tests and benchmark: requests as sessions of log lines, with
incidents that can be injected (error bursts, latency shifts, new error patterns, broken sessions,
error-rate ramps). Template columns come from the real ``TemplateMiner``."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from logwarden.common.records import record_schema
from logwarden.processing.templates import TemplateMiner

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
MINUTE = 60.0


@dataclass
class Incident:
    """A change of behaviour of one service during [start, end) minutes."""

    kind: str  # "errors", "latency", "new_error", "broken_sessions", "ramp"
    service: str
    start: int
    end: int
    strength: float = 1.0


@dataclass
class Traffic:
    """Generator state: one RNG, one miner (so template ids are stable across calls)."""

    seed: int = 0
    services: tuple[str, ...] = ("checkout", "auth")
    rate_per_minute: float = 40.0
    error_rate: float = 0.01
    miner: TemplateMiner = field(default_factory=TemplateMiner)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.request_counter = 0

    def _request(self, service: str, start: float, incidents: list[Incident], minute: int) -> list[dict]:
        rng = self.rng
        self.request_counter += 1
        rid = f"req-{self.request_counter:08d}"
        user = f"user{int(rng.integers(0, 300))}"
        active = {i.kind: i for i in incidents if i.service == service and i.start <= minute < i.end}
        duration = float(rng.lognormal(3.5, 0.4))
        if "latency" in active:
            duration *= 10 * active["latency"].strength
        error_p = self.error_rate
        if "errors" in active:
            error_p = 0.3 * active["errors"].strength
        if "ramp" in active:
            span = active["ramp"].end - active["ramp"].start
            error_p = self.error_rate + active["ramp"].strength * (minute - active["ramp"].start) / span
        t = start
        lines = []

        def emit(level: str, message: str, **extra) -> None:
            nonlocal t
            lines.append({"timestamp": T0 + timedelta(seconds=t), "service": service, "level": level,
                          "message": message, "request_id": rid, "user_id": user,
                          "record_id": f"{rid}-{len(lines)}", **extra})
            t += float(rng.uniform(0.001, 0.02))

        emit("INFO", f"request {rid} received GET /api/{service}/items/{int(rng.integers(1, 5000))}")
        emit("DEBUG", f"user {user} authenticated with token {rng.integers(1 << 30):x}")
        if rng.random() < 0.5:
            emit("DEBUG", f"cache miss for key item:{int(rng.integers(1, 5000))}")
            emit("INFO", f"db query took {int(duration * 0.6)} ms rows={int(rng.integers(0, 50))}")
        else:
            emit("DEBUG", f"cache hit for key item:{int(rng.integers(1, 5000))}")
        if rng.random() < 0.02:
            emit("WARNING", f"slow downstream call to inventory took {int(duration * 2)} ms")
        broken = "broken_sessions" in active and rng.random() < 0.5 * active["broken_sessions"].strength
        if broken:
            order, attempt = int(rng.integers(1, 10**6)), int(rng.integers(2, 5))
            emit("INFO", f"retrying payment for order {order} attempt {attempt}")
            return lines
        if "new_error" in active and rng.random() < 0.3 * active["new_error"].strength:
            port = int(rng.integers(1000, 9999))
            emit("ERROR", f"TLS handshake with ledger.internal:{port} failed: certificate expired")
        if rng.random() < error_p:
            emit("ERROR", f"request {rid} failed: upstream timeout after {int(duration)} ms",
                 duration_ms=duration, error_code="UPSTREAM_TIMEOUT")
        else:
            emit("INFO", f"request {rid} completed status=200 in {int(duration)} ms", duration_ms=duration)
        return lines

    def minutes(self, start: int, count: int, incidents: list[Incident] | None = None) -> list[dict]:
        """Records of minutes [start, start + count), in time order."""
        incidents = incidents or []
        records = []
        for minute in range(start, start + count):
            for service in self.services:
                n = int(self.rng.poisson(self.rate_per_minute))
                for begin in np.sort(self.rng.uniform(0, MINUTE - 1, n)):
                    records += self._request(service, minute * MINUTE + begin, incidents, minute)
        records.sort(key=lambda r: r["timestamp"])
        return records

    def table(self, records: list[dict]) -> pa.Table:
        """Records as the table a rule receives: the record columns plus ``template_id`` and ``template``."""
        table = pa.Table.from_pylist(records, schema=record_schema())
        matches = [self.miner.add(r["message"]) for r in records]
        table = table.append_column("template_id", pa.array([m.template_id for m in matches], pa.string()))
        return table.append_column("template", pa.array([m.template for m in matches], pa.string()))

    def batches(self, start: int, count: int, incidents: list[Incident] | None = None,
                minutes_per_batch: int = 5) -> list[pa.Table]:
        """Tables of ``minutes_per_batch`` minutes each."""
        return [self.table(self.minutes(m, min(minutes_per_batch, start + count - m), incidents))
                for m in range(start, start + count, minutes_per_batch)]


def minute_us(minute: int) -> int:
    """Epoch microseconds of minute ``minute`` after T0."""
    return int((T0 + timedelta(minutes=minute)).timestamp() * 1_000_000)
