"""New and rising WARNING/ERROR templates per service."""
from __future__ import annotations

import pyarrow as pa

from logwarden.monitoring.ml import MlRule
from logwarden.processing.templates import TemplateMiner
from tests.monitoring.helpers import rec, table

SPEC = {"name": "new_patterns", "kind": "ml", "severity": "LOW", "model": "new_template", "learn_for": "10m",
        "rise_factor": 5, "min_count": 10, "realert": "0s"}


def _batch(miner: TemplateMiner, records: list[dict]) -> pa.Table:
    batch = table(records)
    matches = [miner.add(m) for m in batch["message"].to_pylist()]
    batch = batch.append_column("template_id", pa.array([m.template_id for m in matches]))
    return batch.append_column("template", pa.array([m.template for m in matches]))


def _warm(miner: TemplateMiner) -> list[dict]:
    rows = []
    for i in range(0, 900, 3):  # 15 minutes: known INFO and a rare, known ERROR
        rows.append(rec(i, "pay", "INFO", f"charged order {i} in {i % 50} ms"))
        if i % 90 == 0:
            rows.append(rec(i + 1, "pay", "ERROR", f"card {i} declined by issuer"))
    return rows


def test_new_error_pattern_fires_once_per_service_and_info_does_not():
    miner = TemplateMiner()
    rule = MlRule(SPEC)
    assert rule.add_data(_batch(miner, _warm(miner))) == []          # warm-up learns what is normal
    later = [rec(1000, "pay", "ERROR", "ledger write failed: disk quota exceeded on /var/lib/ledger"),
             rec(1001, "pay", "ERROR", "ledger write failed: disk quota exceeded on /var/lib/ledger2"),
             rec(1002, "pay", "INFO", "feature flag beta_checkout enabled for cohort 7"),
             rec(1003, "pay", "ERROR", "card 77 declined by issuer"),
             rec(1004, "ship", "ERROR", "ledger write failed: disk quota exceeded on /var/lib/ledger")]
    out = [a for a in rule.add_data(_batch(miner, later)) if a.status == "firing"]
    assert [a.key.split("|")[0] for a in out] == ["pay", "ship"]
    assert all("new ERROR log pattern 'ledger write failed: disk quota exceeded on <*>'" in a.description
               for a in out)
    assert '"reason":"new"' in out[0].samples[0] and "disk quota" in out[0].samples[1]


def test_known_error_rising_sharply_fires_when_its_minute_closes():
    miner = TemplateMiner()
    rule = MlRule(SPEC)
    rule.add_data(_batch(miner, _warm(miner)))
    burst = [rec(960 + i * 0.5, "pay", "ERROR", f"card {i} declined by issuer") for i in range(30)]
    calm = [rec(1100 + i, "pay", "INFO", f"charged order {i} in 3 ms") for i in range(60)]
    out = [a for a in rule.add_data(_batch(miner, burst + calm)) if a.status == "firing"]
    assert len(out) == 1 and "rose to 30/min" in out[0].description and out[0].value >= 5


def test_nothing_fires_during_warm_up():
    miner = TemplateMiner()
    rule = MlRule(SPEC)
    first = [rec(i, "pay", "ERROR", f"brand new failure {i % 3} kind") for i in range(0, 300, 10)]
    assert rule.add_data(_batch(miner, first)) == []


def test_a_batch_at_once_gives_what_record_by_record_gives():
    """TemplateStream.add looks only at severe records one by one; the events and counts are those of
    observing every record in order (a template first seen as INFO earlier in the batch is not new)."""
    import random

    from logwarden.monitoring.anomaly import iso_us
    from logwarden.monitoring.ml.template_stream import TemplateStream
    from logwarden.monitoring.ml.templates import TemplateNoveltyDetector

    rng = random.Random(7)
    start = 1_763_805_600_000_000
    rows = [{"timestamp": start + i * 1_500_000, "service": rng.choice("ab"), "template_id": f"t{rng.randrange(1 + i // 200)}",
             "template": "t", "level": rng.choice(["INFO"] * 6 + ["ERROR", "CRITICAL"]), "message": f"m{i}"}
            for i in range(4000)]
    one_by_one = TemplateNoveltyDetector(learn_for_us=60_000_000 * 20)
    expected = [event for row in rows for event in [one_by_one.observe(
        row["service"], row["template_id"], row["template"], row["level"], row["timestamp"],
        f"{iso_us(row['timestamp'])} {row['level']} {row['service']}: {row['message']}")] if event is not None]
    stream = TemplateStream(TemplateNoveltyDetector(learn_for_us=60_000_000 * 20), quiet_us=0)
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    found = []
    for first in range(0, len(rows), 700):
        batch = pa.table({name: values[first:first + 700] for name, values in columns.items()})
        batch = batch.set_column(0, "timestamp", batch["timestamp"].cast(pa.timestamp("us", tz="UTC")))
        found += stream.add(batch)
    assert expected and found == [stream._finding(event) for event in expected]
    assert stream.detector.baseline.counts == one_by_one.baseline.counts
    assert stream.detector.minute_counts == one_by_one.minute_counts and stream.detector.meta == one_by_one.meta
