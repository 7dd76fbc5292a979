"""Per-service, per-minute window features for the window model.

One row per (service, minute): counts by level, error rate, duration percentiles and distinct
users (``processing.aggregate.minute_aggregates``), plus the entropy of the template mix and the
number of templates never seen before for the service. The same function serves training (a
history table) and scoring (the records of windows that just closed), so both see identical
features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.records import LEVELS
from logwarden.processing.aggregate import minute_aggregates

MINUTE_US = 60_000_000
COUNT_FEATURES = ("count", *(f"count_{level.lower()}" for level in LEVELS))
FEATURES: tuple[str, ...] = (*COUNT_FEATURES, "error_rate", "duration_p50", "duration_p95", "duration_p99",
                             "distinct_users", "template_entropy", "new_templates")
#: Features whose scale is multiplicative (log-transformed before the model sees them).
LOG_FEATURES = frozenset((*COUNT_FEATURES, "duration_p50", "duration_p95", "duration_p99", "distinct_users",
                          "new_templates"))
NEEDED_COLUMNS = ("timestamp", "service", "level", "duration_ms", "user_id", "template_id")


@dataclass
class WindowFeatures:
    """Feature rows: ``services[i]`` and ``minutes_us[i]`` (bucket start, epoch µs) describe ``matrix[i]``."""

    services: list[str]
    minutes_us: list[int]
    matrix: np.ndarray
    top_templates: list[list[tuple[str, int]]] = field(default_factory=list)
    #: True for a service's first window (no templates known before it: every template counts as new,
    #: so the row is not a fair training example).
    first: list[bool] = field(default_factory=list)
    #: Template text of the ids in ``top_templates`` (when the records carry a ``template`` column).
    template_text: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.services)


def ensure_columns(records: pa.Table) -> pa.Table:
    """``records`` with every column the features need (missing ones as nulls)."""
    types = {"duration_ms": pa.float64(), "user_id": pa.string(), "template_id": pa.string()}
    for name, kind in types.items():
        if name not in records.column_names:
            records = records.append_column(name, pa.nulls(records.num_rows, kind))
    return records


def entropy(counts: list[int]) -> float:
    """Shannon entropy (bits) of a count distribution."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    return -sum((c / total) * math.log2(c / total) for c in counts if c > 0)


def window_features(records: pa.Table, known_templates: dict[str, set[str]] | None = None) -> WindowFeatures:
    """Feature rows of every (service, minute) in ``records``, in time order.

    ``known_templates`` (service -> template ids seen before) is read and updated in time order:
    a template counts as new in the first minute it appears for its service.
    """
    known = known_templates if known_templates is not None else {}
    if records.num_rows == 0:
        return WindowFeatures([], [], np.zeros((0, len(FEATURES))))
    records = ensure_columns(records)
    base = minute_aggregates(records).sort_by([("bucket", "ascending"), ("service", "ascending")])
    buckets = pc.cast(pc.floor_temporal(records["timestamp"], unit="minute"), pa.int64())
    mix = pa.table({"service": records["service"], "bucket": buckets,
                    "template_id": pc.fill_null(records["template_id"], "")})
    mix_counts = mix.group_by(["service", "bucket", "template_id"]).aggregate([([], "count_all")])
    templates: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for service, bucket, tid, count in zip(*(mix_counts[c].to_pylist() for c in
                                             ("service", "bucket", "template_id", "count_all"))):
        templates.setdefault((service, bucket), []).append((tid, count))
    services = base["service"].to_pylist()
    minutes = pc.cast(base["bucket"], pa.int64()).to_pylist()
    columns = {name: base[name].to_numpy(zero_copy_only=False).astype(float)
               for name in FEATURES if name in base.column_names}
    entropies, new_counts, tops, first = [], [], [], []
    for service, minute in zip(services, minutes):
        mix_rows = templates.get((service, minute), [])
        entropies.append(entropy([c for _, c in mix_rows]))
        first.append(service not in known)
        seen = known.setdefault(service, set())
        fresh = {tid for tid, _ in mix_rows if tid and tid not in seen}
        new_counts.append(float(len(fresh)))
        seen.update(fresh)
        tops.append(sorted(mix_rows, key=lambda item: (item[0] not in fresh, -item[1]))[:5])  # new ones first
    columns["template_entropy"] = np.array(entropies)
    columns["new_templates"] = np.array(new_counts)
    matrix = np.column_stack([columns[name] for name in FEATURES])
    texts: dict[str, str] = {}
    if "template" in records.column_names:
        texts = first_texts(records, {tid for top in tops for tid, _ in top})
    return WindowFeatures(services, minutes, matrix, tops, first, texts)


def first_texts(records: pa.Table, wanted: set[str]) -> dict[str, str]:
    """The template text of the first record of each template id in ``wanted`` (a minute holds tens of
    thousands of records and a handful of wanted ids: found with Arrow, not a loop over the rows)."""
    if not wanted:
        return {}
    ids = records["template_id"].combine_chunks()
    positions = pc.index_in(ids, value_set=pa.array(sorted(wanted), pa.string())).to_numpy(zero_copy_only=False)
    found = np.flatnonzero(~np.isnan(positions.astype(float)))
    codes, first = np.unique(positions[found].astype(np.int64), return_index=True)
    rows = records.select(["template_id", "template"]).take(pa.array(found[first]))
    return {tid: text or "" for tid, text in zip(rows["template_id"].to_pylist(), rows["template"].to_pylist())}
