"""Per-service, per-minute aggregates of a batch, in event time."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.records import LEVELS

QUANTILES = (0.5, 0.95, 0.99)
AGGREGATE_SCHEMA = pa.schema([
    ("service", pa.string()),
    ("bucket", pa.timestamp("us", tz="UTC")),
    ("count", pa.int64()),
    *[(f"count_{level.lower()}", pa.int64()) for level in LEVELS],
    ("error_rate", pa.float64()),
    ("duration_p50", pa.float64()),
    ("duration_p95", pa.float64()),
    ("duration_p99", pa.float64()),
    ("distinct_users", pa.int64()),
])


def minute_aggregates(records: pa.Table) -> pa.Table:
    """Counts by level, error rate, duration percentiles and distinct users per service and minute."""
    if records.num_rows == 0:
        return AGGREGATE_SCHEMA.empty_table()
    levels = records["level"]
    columns = {
        "service": records["service"],
        "bucket": pc.floor_temporal(records["timestamp"], unit="minute"),
        "duration_ms": records["duration_ms"],
        "user_id": records["user_id"],
    }
    for level in LEVELS:
        columns[f"is_{level.lower()}"] = pc.cast(pc.equal(levels, level), pa.int64())
    table = pa.table(columns)
    grouped = table.group_by(["service", "bucket"]).aggregate(
        [(f"is_{level.lower()}", "sum") for level in LEVELS]
        + [([], "count_all"),
           ("duration_ms", "tdigest", pc.TDigestOptions(q=list(QUANTILES), skip_nulls=True)),
           ("user_id", "count_distinct", pc.CountOptions(mode="only_valid"))]
    )
    return _shape(grouped)


def _shape(grouped: pa.Table) -> pa.Table:
    count = grouped["count_all"]
    errors = pc.add(grouped["is_error_sum"], grouped["is_critical_sum"])
    digest = grouped["duration_ms_tdigest"]
    columns = {
        "service": grouped["service"],
        "bucket": grouped["bucket"],
        "count": count,
        **{f"count_{level.lower()}": grouped[f"is_{level.lower()}_sum"] for level in LEVELS},
        "error_rate": pc.divide(pc.cast(errors, pa.float64()), pc.cast(count, pa.float64())),
        **{f"duration_p{int(q * 100)}": pc.list_element(digest, i) for i, q in enumerate(QUANTILES)},
        "distinct_users": grouped["user_id_count_distinct"],
    }
    return pa.table(columns).cast(AGGREGATE_SCHEMA)
