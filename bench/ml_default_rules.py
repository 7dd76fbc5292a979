"""The ML rules of the default rules file, replayed offline on demo-like traffic (``bench/ml.py``).

- ``false_alarms``: ``hours`` of normal traffic of the demo's four services (``logwarden.demo``) with a
  daily rhythm (the rate follows the time of day, from 0.5x at night to 1.5x in the afternoon, plus
  noise), replayed through ``schemas/anomaly_schema.yaml`` as ``logwarden rules test`` does (event-time
  batches, templates mined); the ML alerts by severity and rule.
- ``incidents``: four incidents that no threshold rule of the file catches, each injected into normal
  traffic once the warm-up is over: a new error pattern at 3 per minute, p50 latency tripled (under 5 s),
  a service's traffic halved, a slow error-rate ramp. Found or not, with the delay from the incident's
  start to the first ML alert on its service, in event time.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator

import pyarrow as pa

from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.records import record_schema
from logwarden.demo import SimClock, TrafficModel
from logwarden.monitoring import DetectorSet, load_rules
from logwarden.processing.templates import TemplateMiner
from logwarden.schemas import ANOMALY_SCHEMA_PATH

START = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc).timestamp()  # a Monday, 06:00 UTC
BATCH_SECONDS = 30.0
US = 1_000_000


def daily_factor(epoch: float, rng: random.Random) -> float:
    """The traffic rate's multiple at ``epoch``: 0.5 at 03:00 UTC, 1.5 at 15:00, with ±10 % noise."""
    hour = (epoch % 86400) / 3600
    return (1.0 - 0.5 * math.cos(2 * math.pi * (hour - 3) / 24)) * rng.uniform(0.9, 1.1)


@dataclass(frozen=True)
class Injected:
    """An incident on ``service`` during [start, end) seconds after the start: ``change`` rewrites the
    records of each batch (``at`` is the batch's start, ``progress`` how far into the incident it is, 0..1)
    and may add records."""

    name: str
    service: str
    start: float
    end: float
    change: Callable[[list[dict], float, float, random.Random], list[dict]]
    signature: Callable[[object], bool]  # whether an ML alert names this incident's signals


def _signals(anomaly: object) -> list[dict]:
    return (getattr(anomaly, "explanation", None) or {}).get("signals", [])


def _moved(names: tuple[str, ...], up: bool) -> Callable[[object], bool]:
    """An alert naming one of the features ``names`` off normal in the direction ``up``."""
    def check(anomaly: object) -> bool:
        return any(s["signal"] in names and (s.get("z", 0) > 0) == up for s in _signals(anomaly))
    return check


def _new_ledger_template(anomaly: object) -> bool:
    return any("Ledger write rejected" in str(s.get("value", "")) for s in _signals(anomaly))


def _error_trend(anomaly: object) -> bool:
    return getattr(anomaly, "rule", "") == "ml_error_rate_trend" or _moved(("error_rate", "count_error"), True)(
        anomaly)


def _new_error_pattern(records: list[dict], at: float, progress: float, rng: random.Random) -> list[dict]:
    extra = [{"timestamp": _iso(at + offset), "level": "ERROR", "service": "payment-service",
              "message": f"Ledger write rejected: idempotency key k-{rng.getrandbits(32):08x} reused",
              "error_code": "LEDGER_CONFLICT"}
             for offset in range(0, int(BATCH_SECONDS), 20)]  # 3 per minute
    return records + extra


def _latency_tripled(records: list[dict], at: float, progress: float, rng: random.Random) -> list[dict]:
    out = []
    for r in records:
        if r["service"] == "api-gateway" and r.get("duration_ms") is not None:
            duration = min(r["duration_ms"] * 3, 4900.0)  # under slow_response's 5 s
            r = {**r, "duration_ms": duration, "message": r["message"].rsplit(" in ", 1)[0] + f" in {duration:.0f}ms"}
        out.append(r)
    return out


def _traffic_halved(records: list[dict], at: float, progress: float, rng: random.Random) -> list[dict]:
    return [r for r in records if r["service"] != "auth-service" or rng.random() < 0.5]


def _error_ramp(records: list[dict], at: float, progress: float, rng: random.Random) -> list[dict]:
    share = 0.04 * progress  # up to 4 % more errors: under error_spike's 100 per 5 minutes at peak traffic
    out = []
    for r in records:
        if r["service"] == "payment-service" and r["level"] != "ERROR" and rng.random() < share:
            r = {**r, "level": "ERROR", "message": "Card declined by issuer", "error_code": "CARD_DECLINED"}
        out.append(r)
    return out


def incidents_at(offset: float) -> list[Injected]:
    """The four incidents, each starting ``offset`` seconds into its replay."""
    return [
        Injected("new_error_pattern_3_per_min", "payment-service", offset, offset + 1800, _new_error_pattern,
                 _new_ledger_template),
        Injected("p50_latency_tripled", "api-gateway", offset, offset + 1800, _latency_tripled,
                 _moved(("duration_p50", "duration_p95", "duration_p99"), True)),
        Injected("traffic_halved", "auth-service", offset, offset + 1800, _traffic_halved,
                 _moved(("count", "count_info", "distinct_users"), False)),
        Injected("error_rate_ramp_to_4.5pct_in_60min", "payment-service", offset, offset + 3600, _error_ramp,
                 _error_trend),
    ]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def traffic(hours: float, incident: Injected | None = None, seed: int = 7) -> Iterator[tuple[float, list[dict]]]:
    """(batch end, records) of ``hours`` of demo traffic from ``START``, batch by batch of event time."""
    rng = random.Random(seed)
    model = TrafficModel(incidents=False, seed=seed)
    clock = SimClock(speed=1.0, lead=0.0, wall=START)
    base = model.rate
    begin = START
    while begin < START + hours * 3600:
        end = begin + BATCH_SECONDS
        model.rate = base * daily_factor(begin, rng)
        records = list(model.records(clock, begin, end))
        if incident is not None and START + incident.start <= begin < START + incident.end:
            progress = (begin - START - incident.start) / (incident.end - incident.start)
            records = incident.change(records, begin, progress, rng)
        yield end, records
        begin = end


def replay(hours: float, incident: Injected | None = None, seed: int = 7) -> list[tuple[float, object]]:
    """Every firing alert of the default rules file on the traffic: (event time of its batch, anomaly)."""
    rules = load_rules(ANOMALY_SCHEMA_PATH)
    detectors = DetectorSet(list(rules.by_name().values()))
    validator = RecordValidator(skew=SkewLimits(max_future=1e12, max_past=1e12))
    miner = TemplateMiner()
    fired = []
    for n, (end, records) in enumerate(traffic(hours, incident, seed)):
        rows = [validator.normalize(r, f"{n}-{i}", None, "bench", 0) for i, r in enumerate(records)]
        table = pa.Table.from_pylist(rows, schema=record_schema()).sort_by("timestamp")
        matches = [miner.add(m) for m in table["message"].to_pylist()]
        table = table.append_column("template_id", pa.array([m.template_id for m in matches], pa.string()))
        table = table.append_column("template", pa.array([m.template for m in matches], pa.string()))
        fired += [(end, a) for a in detectors.process(f"bench-{n}", table) if a.status == "firing"]
    return fired


def _ml(anomaly: object) -> bool:
    return getattr(anomaly, "kind", "") == "ml"


def false_alarms(hours: float = 12.0, seed: int = 7) -> dict:
    """ML alerts on ``hours`` of normal traffic, by severity and rule (and the threshold rules' alerts)."""
    fired = replay(hours, None, seed)
    ml = [a for _, a in fired if _ml(a)]
    by_severity = {s: sum(a.severity == s for a in ml) for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW")}
    by_rule: dict[str, int] = {}
    for a in ml:
        by_rule[a.rule] = by_rule.get(a.rule, 0) + 1
    return {"hours": hours, "ml_alerts_by_severity": by_severity,
            "ml_alerts_medium_or_above": sum(by_severity[s] for s in ("CRITICAL", "HIGH", "MEDIUM")),
            "low": by_severity["LOW"], "ml_alerts_by_rule": by_rule,
            "low_examples": [f"{a.rule} {a.key}: {a.explanation.get('text', '')}" for a in ml][:5],
            "threshold_rule_alerts": sum(not _ml(a) for _, a in fired)}


def detection(warm: float = 3.0, seed: int = 7) -> dict:
    """Each incident injected ``warm`` hours into normal traffic: found (an ML alert on its service that
    names its signals: the new template, latency up, volume down, errors up), delay, and whether a
    threshold rule fired on its service."""
    out = {}
    for incident in incidents_at(warm * 3600):
        fired = replay(warm + (incident.end - incident.start) / 3600 + 0.25, incident, seed)
        began = START + incident.start
        on_service = [(at, a) for at, a in fired if a.key.split("|")[0] == incident.service and at > began]
        ml = [(at, a) for at, a in on_service if _ml(a) and incident.signature(a)]
        first = ml[0] if ml else None
        out[incident.name] = {
            "service": incident.service, "found": first is not None,
            "delay_s": round(first[0] - began) if first else None,
            "rule": first[1].rule if first else None,
            "why": first[1].explanation.get("text", "") if first else None,
            "threshold_rules_fired": sorted({a.rule for _, a in on_service if not _ml(a)}),
            "other_ml_alerts_on_service": sum(1 for _, a in on_service if _ml(a) and not incident.signature(a)),
            "ml_alerts_before_incident": sum(1 for at, a in fired if _ml(a) and at <= began)}
    return out
