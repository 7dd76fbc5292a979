"""Feedback: CLI and HTTP verdicts stored with the anomaly; a false positive suppresses its pattern
and joins the next training."""
from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from logwarden.commands import feedback as feedback_command
from logwarden.monitoring.ml import FeedbackStore, MlRule, feedback_routes
from logwarden.processing.templates import TemplateMiner
from tests.monitoring.helpers import rec, table


def _batch(miner: TemplateMiner, records: list[dict]) -> pa.Table:
    batch = table(records)
    matches = [miner.add(m) for m in batch["message"].to_pylist()]
    batch = batch.append_column("template_id", pa.array([m.template_id for m in matches]))
    return batch.append_column("template", pa.array([m.template for m in matches]))


def _rule(data_dir) -> MlRule:
    return MlRule({"name": "new_patterns", "kind": "ml", "severity": "LOW", "model": "new_template",
                   "learn_for": "1m", "realert": "0s", "data_dir": str(data_dir)})


def _new_errors(miner, rule, start: float, service: str = "pay"):
    rule.add_data(_batch(miner, [rec(start + i, service, "INFO", f"ok {i}") for i in range(0, 120, 5)]))
    return [a for a in rule.add_data(_batch(miner, [
        rec(start + 200, service, "ERROR", "cache node 3 evicted 1200 keys under memory pressure")]))
        if a.status == "firing"]


def test_cli_false_positive_suppresses_the_pattern_and_is_stored(tmp_path, capsys):
    miner = TemplateMiner()
    rule = _rule(tmp_path)
    [anomaly] = _new_errors(miner, rule, 0)
    stored = FeedbackStore.for_data_dir(tmp_path).get(anomaly.id)
    assert stored["pattern"].startswith("pay|T") and stored["verdict"] is None

    import argparse
    parser = argparse.ArgumentParser()
    feedback_command.register(parser.add_subparsers())
    args = parser.parse_args(["feedback", "--data-dir", str(tmp_path), anomaly.id, "false-positive",
                              "--by", "ann"])
    assert args.func(args) == 0 and "suppressed" in capsys.readouterr().out
    assert FeedbackStore.for_data_dir(tmp_path).get(anomaly.id)["verdict"] == "false-positive"
    missing = parser.parse_args(["feedback", "--data-dir", str(tmp_path), "nope", "true-positive"])
    assert missing.func(missing) == 1

    fresh_miner, fresh_rule = TemplateMiner(), _rule(tmp_path)  # same pattern again, e.g. after a restart
    assert _new_errors(fresh_miner, fresh_rule, 0) == [] and fresh_rule.suppressed == 1
    other = _new_errors(TemplateMiner(), _rule(tmp_path), 0, service="ship")  # other service: other pattern
    assert len(other) == 1


def test_http_endpoint_records_verdicts(tmp_path):
    miner = TemplateMiner()
    [anomaly] = _new_errors(miner, _rule(tmp_path), 0)

    async def scenario() -> None:
        app = web.Application()
        app.add_routes(feedback_routes(tmp_path))
        async with TestClient(TestServer(app)) as client:
            response = await client.post(f"/ml/anomalies/{anomaly.id}/feedback",
                                         json={"verdict": "true-positive", "by": "bob", "note": "real"})
            assert response.status == 200
            body = await response.json()
            assert body["verdict"] == "true-positive" and body["feedback"][0]["by"] == "bob"
            bad = await client.post(f"/ml/anomalies/{anomaly.id}/feedback", json={"verdict": "maybe"})
            assert bad.status == 400
            unknown = await client.post("/ml/anomalies/unknown/feedback", json={"verdict": "true-positive"})
            assert unknown.status == 404
            got = await client.get(f"/ml/anomalies/{anomaly.id}")
            assert (await got.json())["payload"]["template_id"].startswith("T")

    asyncio.run(scenario())
    assert FeedbackStore.for_data_dir(tmp_path).suppressed_patterns("new_patterns") == set()


def test_false_positive_sessions_join_the_next_training(tmp_path):
    from logwarden.monitoring.ml.training import train_model
    from logwarden.monitoring.ml.schema import MlConfig

    store = FeedbackStore.for_data_dir(tmp_path)
    store.record("a1", "flow", "session", "req-1", "x->y", 9.0, 0.99, {"sequence": ["a", "odd", "c"]})
    store.set_feedback("a1", "false-positive", "ann")
    sessions = [{"timestamp": rec(i, "svc")["timestamp"], "service": "svc", "level": "INFO", "message": m,
                 "record_id": f"r{i}", "request_id": f"req-{i // 3}", "template_id": m}
                for i, m in enumerate(["a", "b", "c"] * 40)]
    records = pa.Table.from_pylist(sessions)
    config = MlConfig.from_dict({"name": "flow", "model": "session", "session_key": "request_id",
                                 "threshold_quantile": 0.99})
    without, _ = train_model(config, records)
    with_fp, summary = train_model(config, records, store.false_positive_payloads("flow"))
    assert summary["sessions"] == 41
    assert "odd" not in without.vocabulary and "odd" in with_fp.vocabulary
    assert with_fp.score(["a", "odd", "c"]) < without.score(["a", "odd", "c"])
    with pytest.raises(ValueError):
        store.set_feedback("a1", "maybe", "ann")


def test_flagged_windows_are_left_out_of_the_next_training(traffic_run):
    from logwarden.monitoring.ml.features import window_features
    from logwarden.monitoring.ml.schema import MlConfig
    from logwarden.monitoring.ml.training import train_model
    from tests.ml.traffic import minute_us

    _, history, live, _ = traffic_run
    records = pa.concat_tables(history + live)
    features = window_features(records, {})
    usable = sum(1 for first in features.first if not first)
    incident = [minute_us(m) for m in range(160, 170)]
    config = MlConfig.from_dict({"name": "svc_windows", "model": "window"})
    model, summary = train_model(config, records, flagged=[{"service": "checkout", "minutes_us": incident}])
    assert summary["windows"] == usable - 10
    assert set(model.models) == {"checkout", "auth"}
