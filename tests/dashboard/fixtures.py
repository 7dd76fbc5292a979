"""A data directory with records, aggregates, templates, alerts and spool batches, as the stack leaves it."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from logwarden.common.paths import DataDir
from logwarden.processing.aggregate import minute_aggregates
from logwarden.storage import Lake
from tests.storage.sample import rows, table

SERVICES = ("api", "billing", "search")
ALERTS = [
    {"rule": "error_spike", "severity": "HIGH", "key": "billing", "value": 42.0, "channel": "slack",
     "status": "firing"},
    {"rule": "slow_response", "severity": "MEDIUM", "key": "api", "value": 7400.0, "channel": "email",
     "status": "firing"},
    {"rule": "service_down", "severity": "CRITICAL", "key": "search", "value": 0.0, "channel": "pagerduty",
     "status": "resolved"},
]


def make_data_dir(root: Path, n: int = 240) -> dict:
    """Fill ``root`` and return what was sent (record counts per service and level, alerts)."""
    paths = DataDir.at(root).create()
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    records = rows(n, start=start, step=timedelta(seconds=10))
    t = table(records, with_templates=True)
    lake = Lake(paths.lake)
    lake.commit_batch("b1", t.slice(0, n // 2), minute_aggregates(t.slice(0, n // 2)))
    lake.commit_batch("b2", t.slice(n // 2), minute_aggregates(t.slice(n // 2)))
    templates = lake.root / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).timestamp()
    pq.write_table(pa.table({"template_id": ["T0", "T1", "T9"], "template": ["request <*> served",
                             "request <*> failed: <*>", "ancient <*>"], "count": [10, 5, 1],
                             "first_seen": [now - 600, now - 300, now - 86400 * 3], "last_seen": [now] * 3}),
                   templates / "templates.parquet")
    outbox = []
    for i, alert in enumerate(ALERTS):
        begin = start + timedelta(minutes=5 + 10 * i)
        outbox.append({**alert, "window_start": begin.isoformat().replace("+00:00", "Z"),
                       "window_end": (begin + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")})
    (paths.alerts / "outbox.jsonl").write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in outbox))
    for name in ("a", "b"):
        pq.write_table(t.slice(0, 1), paths.spool / f"{name}.parquet")
    return {
        "per_service": Counter(r["service"] for r in records),
        "per_level": Counter(r["level"] for r in records),
        "templates": Counter("T1" if r["level"] == "ERROR" else "T0" for r in records),
        "alerts": ALERTS,
    }
