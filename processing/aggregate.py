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
    ("top_templates", pa.list_(pa.string())),
    ("new_templates", pa.int64()),
])
USER_ERRORS_SCHEMA = pa.schema([("user_id", pa.string()), ("bucket", pa.timestamp("us", tz="UTC")),
                                ("errors", pa.int64())])
TOP_TEMPLATES = 3


def minute_aggregates(records: pa.Table, new_template_ids: frozenset[str] = frozenset()) -> pa.Table:
    """Counts by level, error rate, duration percentiles, distinct users, the most frequent templates and
    how many templates are new, per service and minute."""
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
    return _with_templates(_shape(grouped), records, new_template_ids)


def _with_templates(aggregates: pa.Table, records: pa.Table, new_ids: frozenset[str]) -> pa.Table:
    """Fill ``top_templates`` and ``new_templates`` (left empty when the records carry no template)."""
    keys = list(zip(aggregates["service"].to_pylist(), aggregates["bucket"].to_pylist()))
    top: dict[tuple, list[tuple[int, str]]] = {key: [] for key in keys}
    if "template_id" in records.column_names:
        minute = pc.floor_temporal(records["timestamp"], unit="minute")
        counts = pa.table({"service": records["service"], "bucket": minute, "template_id": records["template_id"]}) \
            .group_by(["service", "bucket", "template_id"]).aggregate([([], "count_all")])
        for row in counts.to_pylist():
            top[(row["service"], row["bucket"])].append((row["count_all"], row["template_id"]))
    ranked = [[tid for _, tid in sorted(top[key], key=lambda c: (-c[0], c[1]))[:TOP_TEMPLATES]] for key in keys]
    new = [sum(1 for _, tid in top[key] if tid in new_ids) for key in keys]
    aggregates = aggregates.set_column(aggregates.schema.get_field_index("top_templates"), "top_templates",
                                       pa.array(ranked, pa.list_(pa.string())))
    return aggregates.set_column(aggregates.schema.get_field_index("new_templates"), "new_templates",
                                 pa.array(new, pa.int64()))


def user_errors(records: pa.Table) -> pa.Table:
    """ERROR and CRITICAL records per user and minute (records without a user are left out)."""
    errors = records.filter(pc.and_(pc.is_in(records["level"], value_set=pa.array(["ERROR", "CRITICAL"])),
                                    pc.is_valid(records["user_id"])))
    if errors.num_rows == 0:
        return USER_ERRORS_SCHEMA.empty_table()
    minute = pc.floor_temporal(errors["timestamp"], unit="minute")
    grouped = pa.table({"user_id": errors["user_id"], "bucket": minute}) \
        .group_by(["user_id", "bucket"]).aggregate([([], "count_all")])
    return pa.table({"user_id": grouped["user_id"], "bucket": grouped["bucket"],
                     "errors": grouped["count_all"]}).cast(USER_ERRORS_SCHEMA)


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
        "top_templates": pa.nulls(grouped.num_rows, pa.list_(pa.string())),
        "new_templates": pa.array([0] * grouped.num_rows, pa.int64()),
    }
    return pa.table(columns).cast(AGGREGATE_SCHEMA)
