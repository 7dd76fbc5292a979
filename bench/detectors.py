"""Benchmark of the detector engine: records/s through the five seed rules, against a single-process
pandas evaluation of the same rules whose alerts must be identical; plus the state cost of
1,000,000 distinct keys in a per-user rule.

    python bench/detectors.py [--records 2000000] [--batch 50000] [--keys 1000000] [--seed 7]

Prints one JSON object. The data is synthetic, seeded and ordered by event time, like spool
batches: eight services (one stops logging for 15 minutes, one for good), 200,000 users, 0.4 %
errors, an error burst, database connection failures and slow requests.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import platform
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logwarden.common.records import record_schema
from logwarden.schemas import ANOMALY_SCHEMA_PATH  # noqa: E402
from logwarden.monitoring import DetectorSet, load_rules  # noqa: E402
from logwarden.monitoring.anomaly import FIRING, RESOLVED, iso_us  # noqa: E402
from logwarden.monitoring.rules.flatline import below_count  # noqa: E402
from logwarden.monitoring.rules.frequency import needed_count  # noqa: E402

US = 1_000_000
T0 = 1_795_000_000 * US
#: The rules of the default rules file this benchmark (and its pandas reference) evaluates: the synthetic
#: data has none of the columns the others read (enrichment, templates).
SEED_RULES = ("error_spike", "service_down", "slow_response", "suspicious_user", "db_connection_failure")


def seed_rules(text: str):
    """The rules file ``text`` with only the ``SEED_RULES``."""
    from dataclasses import replace

    from logwarden.monitoring import parse_rules

    rules = parse_rules(text)
    return replace(rules, rules=tuple(spec for spec in rules.rules if spec.name in SEED_RULES))
SERVICES = ["api-gateway", "auth-service", "payment-service", "database-service", "search", "cart", "mailer", "batch"]
MESSAGES = ["request served", "cache miss", "user logged in", "payment accepted", "query ok"]
DB_FAILURES = ["Database connection failed", "connection to the database timed out", "DB connection reset by peer",
               "could not connect to database primary"]


def synthetic(records: int, seed: int) -> pa.Table:
    """Seeded records in the record layout, ordered by event time (about 280 events/s of event time)."""
    rng = np.random.default_rng(seed)
    span = records / 280.0
    times = np.sort(rng.uniform(0, span, records))
    service = rng.integers(0, len(SERVICES), records)
    # "mailer" is silent from 30% to 45% of the span, "batch" stops at 60%
    mailer, batch = SERVICES.index("mailer"), SERVICES.index("batch")
    quiet = ((service == mailer) & (times > 0.30 * span) & (times < 0.45 * span)) | \
            ((service == batch) & (times > 0.60 * span))
    service[quiet] = SERVICES.index("api-gateway")
    level = np.where(rng.random(records) < 0.004, "ERROR", "INFO").astype(object)
    burst = (service == SERVICES.index("payment-service")) & (times > 0.5 * span) & (times < 0.5 * span + 240)
    level[burst & (rng.random(records) < 0.6)] = "ERROR"
    message = np.array(MESSAGES, dtype=object)[rng.integers(0, len(MESSAGES), records)]
    db = (service == SERVICES.index("payment-service")) & (times > 0.7 * span) & (times < 0.7 * span + 100)
    db &= rng.random(records) < 0.5
    level[db] = "CRITICAL"
    message[db] = np.array(DB_FAILURES, dtype=object)[rng.integers(0, len(DB_FAILURES), int(db.sum()))]
    users = np.array([f"u-{i}" for i in range(200_000)], dtype=object)
    user = users[rng.integers(0, len(users), records)]
    user[rng.random(records) < 0.5] = None
    bad = (times > 0.2 * span) & (times < 0.2 * span + 1800) & (rng.random(records) < 0.002)
    user[bad], level[bad] = "u-7331", "ERROR"
    duration = np.round(rng.exponential(120.0, records), 1)
    duration[rng.random(records) < 0.0005] = 6500.0
    micros = T0 + (times * US).astype(np.int64)
    columns = {
        "timestamp": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "level": pa.array(level.astype(str)), "service": pa.array(np.array(SERVICES)[service]),
        "message": pa.array(message.astype(str)), "user_id": pa.array(user, pa.string()),
        "request_id": pa.nulls(records, pa.string()), "error_code": pa.nulls(records, pa.string()),
        "duration_ms": pa.array(duration), "record_id": pa.array(np.char.add("r", np.arange(records).astype(str))),
        "tenant": pa.nulls(records, pa.string()), "source": pa.nulls(records, pa.string()),
        "received_at": pa.array(micros, pa.timestamp("us", tz="UTC")), "attributes": pa.nulls(records, pa.string()),
    }
    return pa.table(columns, schema=record_schema())


def alert_tuple(a: Any) -> tuple:
    return (a.rule, a.severity, a.key, a.window_start, a.window_end, round(float(a.value), 6), a.status)


# --- the reference: pandas, one process, whole data set at once ------------------------------------
def _leaf(df: pd.DataFrame, spec: dict) -> pd.Series:
    column = df[spec["field"]] if spec["field"] in df else pd.Series([None] * len(df), index=df.index)
    op, operand = next((k, v) for k, v in spec.items() if k != "field")
    if op == "in":
        return column.isin(operand)
    if op == "equals":
        return column == operand
    if op == "exists":
        return column.notna() if operand else column.isna()
    if op == "regex":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return column.fillna("").str.contains(re.compile(operand), regex=True)
    if op in ("gt", "gte", "lt", "lte"):
        return {"gt": column > operand, "gte": column >= operand, "lt": column < operand, "lte": column <= operand}[op]
    raise ValueError(f"reference: unsupported filter {spec}")


def reference_filter(df: pd.DataFrame, spec: Any) -> pd.Series:
    if spec is None:
        return pd.Series(True, index=df.index)
    if isinstance(spec, list) or "all" in spec:
        parts = spec if isinstance(spec, list) else spec["all"]
        result = pd.Series(True, index=df.index)
        for part in parts:
            result &= reference_filter(df, part).fillna(False).astype(bool)
        return result
    if "any" in spec:
        result = pd.Series(False, index=df.index)
        for part in spec["any"]:
            result |= reference_filter(df, part).fillna(False).astype(bool)
        return result
    if "not" in spec:
        return ~reference_filter(df, spec["not"])
    return _leaf(df, spec).fillna(False).astype(bool)


def _episodes(spec: Any, key: str, cands: list[tuple[int, int, float, int]], watermark: int, quiet_w: int,
              resolved_value: Any) -> list[tuple]:
    """The ElastAlert-style life cycle over one key's candidate moments (at, until, value, window start)."""
    out, active, last_alert, until = [], False, 0, 0
    realert = int(spec.realert * US)

    def firing(at: int, value: float, start: int) -> tuple:
        return (spec.name, spec.severity, key, iso_us(start), iso_us(at), round(float(value), 6), FIRING)

    def resolved() -> tuple:
        return (spec.name, spec.severity, key, iso_us(until - quiet_w), iso_us(until),
                round(float(resolved_value(until)), 6), RESOLVED)

    for at, u, value, start in cands:
        if active and until < at:
            out.append(resolved())
            active = False
        if active:
            until = max(until, u)
            if at - last_alert < realert:
                continue
        else:
            active, until = True, u
        last_alert = at
        out.append(firing(at, value, start))
    if active and until < watermark:
        out.append(resolved())
    return out


def reference(df: pd.DataFrame, specs: list) -> list[tuple]:
    """Alerts of the seed rules' kinds (frequency, threshold per event, flatline) computed with pandas."""
    alerts: list[tuple] = []
    for spec in specs:
        window, lateness = int(spec.window * US), int(spec.allowed_lateness * US)
        watermark = int(df["t"].max()) - lateness
        rows = df[reference_filter(df, spec.filter)]
        key_col = spec.group_by[0]
        rows = rows[rows[key_col].notna()]
        for key, group in rows.groupby(key_col, sort=True):
            t = group["t"].to_numpy()
            if spec.kind == "frequency":
                need = needed_count(spec.threshold.op, spec.threshold.value)
                counts = np.arange(len(t)) - np.searchsorted(t, t - window, "right") + 1
                idx = np.flatnonzero(counts >= need)
                cands = [(int(t[i]), int(t[i - need + 1]) + window, int(counts[i]), int(t[i]) - window) for i in idx]
                alerts += _episodes(spec, key, cands, watermark, window, lambda u, t=t: int(
                    np.searchsorted(t, u, "right") - np.searchsorted(t, u - window, "right")))
            elif spec.kind == "threshold":
                quiet = max(int(spec.realert * US), window)
                values = group[spec.field].to_numpy()
                hit = np.flatnonzero(values > spec.threshold.value)
                cands = [(int(t[i]), int(t[i]) + quiet, float(values[i]), int(t[i])) for i in hit]
                alerts += _episodes(spec, key, cands, watermark, quiet, lambda u: 0)
            elif spec.kind == "flatline":
                assert below_count(spec.threshold.op, spec.threshold.value) == 1
                for j in range(len(t)):
                    silent = int(t[j]) + window
                    if j + 1 < len(t):
                        nxt = int(t[j + 1])
                        if nxt >= silent + lateness and nxt > silent:
                            alerts.append((spec.name, spec.severity, key, iso_us(silent - window), iso_us(silent),
                                           0.0, FIRING))
                            alerts.append((spec.name, spec.severity, key, iso_us(nxt - window), iso_us(nxt), 1.0,
                                           RESOLVED))
                    elif silent <= watermark:
                        alerts.append((spec.name, spec.severity, key, iso_us(silent - window), iso_us(silent), 0.0,
                                       FIRING))
    return sorted(alerts)


def engine(table: pa.Table, specs: list, batch: int) -> tuple[list[tuple], float]:
    detectors = DetectorSet(specs)
    out = []
    gc.collect()
    start = time.perf_counter()
    for n, offset in enumerate(range(0, table.num_rows, batch)):
        out += detectors.process(f"b{n}", table.slice(offset, batch))
    return sorted(alert_tuple(a) for a in out), time.perf_counter() - start


def _actor_cpu_seconds() -> float:
    """CPU seconds used so far by every ``DetectorActor`` process of this machine."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["cmdline"]):
        try:
            if " ".join(process.info["cmdline"] or []).startswith("ray::DetectorActor"):
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _pool_run(table: pa.Table, batch: int, text: str, grouped: bool) -> dict[str, Any]:
    """One pass of the batches through a ``DetectorPool``: wall seconds, and the CPU seconds of its actors and
    of this driver process (what the pool costs a busy machine, which wall time on 2 cores hides)."""
    from logwarden.monitoring.actors import DetectorPool

    pool = DetectorPool(seed_rules(text), grouped=grouped)
    pool.wait_ready()
    pool.process("warm-up", table.slice(0, 0))
    out = []
    actors_before, driver_before = _actor_cpu_seconds(), time.process_time()
    start = time.perf_counter()
    for n, offset in enumerate(range(0, table.num_rows, batch)):
        out += pool.process(f"b{n}", table.slice(offset, batch))
    elapsed = time.perf_counter() - start
    actor_cpu, driver_cpu = _actor_cpu_seconds() - actors_before, time.process_time() - driver_before
    actors = len(pool.actor_units())
    pool.shutdown()
    return {"seconds": round(elapsed, 3), "records_per_s": round(table.num_rows / elapsed),
            "actor_units": actors, "actor_cpu_s": round(actor_cpu, 3), "driver_cpu_s": round(driver_cpu, 3),
            "cpu_us_per_record": round((actor_cpu + driver_cpu) / table.num_rows * 1e6, 2),
            "alerts": sorted(alert_tuple(a) for a in out)}


def on_ray(table: pa.Table, batch: int) -> dict[str, dict[str, Any]]:
    """The same batches through ``DetectorPool`` on a local Ray, suspicious_user on 2 shards: rules grouped
    on shared actors (the default) and one actor per rule (``monitoring.rule_actors: per_rule``)."""
    import shutil
    import tempfile

    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(prefix="lw-bench-ray-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
             logging_level="WARNING")
    try:
        text = ANOMALY_SCHEMA_PATH.read_text()  # suspicious_user has 2 shards there
        return {layout: _pool_run(table, batch, text, layout == "grouped") for layout in ("grouped", "per_rule")}
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def million_keys(keys: int, batch: int) -> dict[str, Any]:
    """State of ``suspicious_user`` after ``keys`` distinct users each logged one error within its window."""
    import tracemalloc

    spec = load_rules(ANOMALY_SCHEMA_PATH).by_name()["suspicious_user"]
    gc.collect()
    tracemalloc.start()
    detectors = DetectorSet([spec])
    before = tracemalloc.get_traced_memory()[0]
    per_second = keys / 1800.0  # all within the one-hour window
    start = time.perf_counter()
    for n, offset in enumerate(range(0, keys, batch)):
        ids = np.arange(offset, min(keys, offset + batch))
        micros = T0 + (ids / per_second * US).astype(np.int64)
        size = len(ids)
        table = pa.table({
            "timestamp": pa.array(micros, pa.timestamp("us", tz="UTC")), "level": pa.array(["ERROR"] * size),
            "service": pa.array(["auth-service"] * size), "message": pa.array(["login failed"] * size),
            "user_id": pa.array(np.char.add("user-", ids.astype(str))), "request_id": pa.nulls(size, pa.string()),
            "error_code": pa.nulls(size, pa.string()), "duration_ms": pa.nulls(size, pa.float64()),
            "record_id": pa.array(ids.astype(str)), "tenant": pa.nulls(size, pa.string()),
            "source": pa.nulls(size, pa.string()), "received_at": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "attributes": pa.nulls(size, pa.string()),
        }, schema=record_schema())
        detectors.process(f"k{n}", table)
        del table
    elapsed = time.perf_counter() - start
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rule = detectors.rules["suspicious_user"]
    return {"distinct_keys": keys, "events_in_window": len(rule.events), "state_array_bytes": rule.events.nbytes,
            "state_bytes_traced": held - before, "peak_bytes_traced": peak - before,
            "checkpoint_bytes": len(pickle.dumps(detectors.snapshot())),
            "seconds_with_tracemalloc": round(elapsed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also run the batches through DetectorPool on a local Ray")
    args = parser.parse_args()
    specs = list(seed_rules(ANOMALY_SCHEMA_PATH.read_text()).by_name().values())
    table = synthetic(args.records, args.seed)
    runs = [engine(table, specs, args.batch) for _ in range(args.repeat)]
    alerts, _ = runs[0]
    best = min(elapsed for _, elapsed in runs)
    df = table.to_pandas()
    df["t"] = table["timestamp"].cast(pa.int64()).to_numpy()
    start = time.perf_counter()
    expected = reference(df, specs)
    pandas_s = time.perf_counter() - start
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "processor": platform.processor()},
        "records": args.records, "batch": args.batch,
        "engine": {"seconds": round(best, 3), "records_per_s": round(args.records / best),
                   "all_runs_s": [round(e, 3) for _, e in runs]},
        "pandas_reference": {"seconds": round(pandas_s, 3), "records_per_s": round(args.records / pandas_s)},
        "alerts": len(alerts), "firing": sum(1 for a in alerts if a[-1] == FIRING),
        "alerts_per_rule": {s.name: sum(1 for a in alerts if a[0] == s.name and a[-1] == FIRING) for s in specs},
        "identical": alerts == expected,
        "runs_identical": all(r[0] == alerts for r in runs),
    }
    if alerts != expected:
        result["only_engine"] = [a for a in alerts if a not in expected][:10]
        result["only_reference"] = [a for a in expected if a not in alerts][:10]
    if args.ray:
        result["ray_pool"] = {layout: {**{k: v for k, v in run.items() if k != "alerts"},
                                       "identical": run["alerts"] == alerts}
                              for layout, run in on_ray(table, args.batch).items()}
    if args.keys:
        result["million_keys"] = million_keys(args.keys, args.batch)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
