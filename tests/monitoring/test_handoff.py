"""The detectors get only the columns their rules read, and raise exactly what they raise on whole batches."""
from __future__ import annotations

import pyarrow as pa

from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.demo import SimClock, TrafficModel, demo_processing
from logwarden.monitoring import DetectorSet, load_rules
from logwarden.monitoring.handoff import ALWAYS, detector_columns
from logwarden.monitoring.rules import RulesFile
from logwarden.processing.batch import finalize_batch, prepare_batch, transform_batch
from logwarden.processing.config import ProcessingConfig
from logwarden.processing.templates import TemplateMiner
from logwarden.schemas import ANOMALY_SCHEMA_PATH

WALL = 1_795_000_000.0


def demo_batches(tmp_path, seconds: int = 1200, step: int = 60) -> list[pa.Table]:
    """The demo's traffic with every incident, processed (templates, inventory, GeoIP, threat list) in
    ``step``-second batches."""
    paths = DataDir.at(tmp_path / "data").create()
    processing = demo_processing(ProcessingConfig(), tmp_path)
    clock = SimClock(speed=1.0, lead=0.0, wall=WALL)
    validator = RecordValidator(skew=SkewLimits(max_future=1e12, max_past=1e12))
    model, miner, spool, batches = TrafficModel(rate=2.0, seed=5), TemplateMiner(), Spool(paths.spool), []
    for n, begin in enumerate(range(0, seconds, step)):
        raw = list(model.records(clock, clock.sim_start + begin, clock.sim_start + begin + step))
        rows = [validator.normalize(r, f"r{n}-{i}", "t", "demo", 0) for i, r in enumerate(raw)]
        path = str(spool.write(f"1700000000{n:03d}-demo-000001", rows))
        unmatched = prepare_batch(path, miner.snapshot())
        for message in unmatched.messages:
            miner.add(message)
        output = finalize_batch(path, str(paths.lake), miner.snapshot(), unmatched.messages,
                                inventory=processing.inventory)
        batches.append(output.records)
    return batches


def anomalies(rules: RulesFile, batches: list[pa.Table], columns: tuple[str, ...] | None) -> list[dict]:
    detectors = DetectorSet(list(rules.rules))
    found = []
    for n, records in enumerate(batches):
        if columns is not None:
            records = records.select([c for c in columns if c in records.column_names])
        found += [a.to_dict() for a in detectors.process(f"b{n}", records)]
    return found


def test_the_default_rules_raise_the_same_alerts_on_the_handed_off_columns(tmp_path):
    rules = load_rules(ANOMALY_SCHEMA_PATH)
    batches = demo_batches(tmp_path)
    columns = detector_columns(rules)
    dropped = set(batches[0].column_names) - set(columns)
    assert {"record_id", "received_at", "client_city", "destination_ip"} <= dropped  # lake-only columns stay behind
    whole = anomalies(rules, batches, None)
    assert {a["rule"] for a in whole} >= {"error_spike", "suspicious_user", "threat_indicator_seen", "service_down"}
    assert anomalies(rules, batches, columns) == whole


def test_a_column_a_rule_names_is_handed_off(tmp_path):
    rules = load_rules(ANOMALY_SCHEMA_PATH)
    assert "client_city" not in detector_columns(rules)
    named = tmp_path / "rules.yaml"
    named.write_text(ANOMALY_SCHEMA_PATH.read_text(encoding="utf-8").replace(
        "rules:\n", "rules:\n  - name: berlin_logins\n    kind: frequency\n    severity: LOW\n"
        "    filter: {field: client_city, equals: Berlin}\n    window: 1m\n    threshold: {op: '>=', value: 3}\n", 1),
        encoding="utf-8")
    assert "client_city" in detector_columns(load_rules(named))
    assert set(ALWAYS) <= set(detector_columns(rules))


def test_transform_hands_on_only_the_asked_columns_and_keeps_the_batch_for_its_commit(tmp_path):
    from logwarden.processing.batch import commit_transformed
    from logwarden.storage import Lake

    paths = DataDir.at(tmp_path).create()
    validator = RecordValidator(skew=SkewLimits(max_future=1e12, max_past=1e12))
    rows = [validator.normalize({"timestamp": "2026-12-08T00:00:00Z", "level": "INFO", "service": "api",
                                 "message": f"request {i} served"}, f"r{i}", "t", "demo", 0) for i in range(50)]
    path = str(Spool(paths.spool).write("1700000000000-demo-000001", rows))
    miner = TemplateMiner()
    unmatched = prepare_batch(path, miner.snapshot())
    for message in unmatched.messages:
        miner.add(message)
    output = transform_batch(path, miner.snapshot(), unmatched.messages, columns=("timestamp", "message", "nope"))
    assert output.records.column_names == ["timestamp", "message"] and output.num_records == 50
    assert not Lake(paths.lake).is_committed(output.batch_id)  # detection does not wait for the lake
    committed = commit_transformed(path, str(paths.lake), miner.snapshot(), unmatched.messages)
    assert (committed.records, committed.dead_lettered) == (50, 0)
    assert Lake(paths.lake).is_committed(output.batch_id)
    assert sum(t.count for t in committed.usage) == 50 - len(unmatched.messages)
