"""Learning from operators' verdicts: a verdict changes the confidence of the next similar alert, routing
on ``actionable>=0.8`` through the real router, the verdict endpoints and CLI, training on Ray."""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from logwarden.alerting import ConsoleNotifier, build_alerting
from logwarden.alerting.dispatch.labels import alert_labels
from logwarden.alerting.http import make_app
from logwarden.commands import feedback as feedback_command
from logwarden.common.paths import DataDir
from logwarden.monitoring.anomaly import FIRING, RESOLVED, Anomaly
from logwarden.monitoring.ml import feedback_routes
from logwarden.monitoring.ml.actionable import ActionableScorer, alert_features, train_and_save_actionable
from logwarden.monitoring.ml.registry import ModelRegistry
from logwarden.monitoring.ml.verdicts import ALERT, VerdictStore
from tests.alerting.conftest import FAST, ROUTING, anomaly

PAGE_ABOVE_08 = {"receiver": "dashboard", "routes": [{"matchers": ["actionable>=0.8"], "receiver": "pagerduty"}]}


def db_failure(minute: int, tenant: str = "default", status: str = FIRING) -> Anomaly:
    """The kind of alert the operators here page on."""
    return anomaly("db_connection_failure", key="payment-service", severity="CRITICAL", minute=minute, value=12,
                   threshold=">= 10", tenant=tenant, status=status,
                   description="Database connection failures of a service.",
                   samples=[f"ERROR payment-service: Database connection failed: pool exhausted #{minute}"])


def slow_report(minute: int) -> Anomaly:
    """The kind of alert they do not: a nightly batch job being slow."""
    return anomaly("slow_response", key="batch-report", severity="MEDIUM", minute=minute, value=7400,
                   threshold="> 5000", description="Responses slower than 5 s.",
                   samples=[f"WARNING batch-report: nightly report export took 7400 ms #{minute}"])


def teach(store: VerdictStore, alerts: list[Anomaly], verdict: str) -> None:
    for alert in alerts:
        store.add(ALERT, alert.id, verdict, alert_features(alert), "test", tenant=alert.tenant)


def trained(tmp_path, min_verdicts: int = 8) -> tuple[VerdictStore, ModelRegistry, ActionableScorer]:
    """Four actionable database failures and four slow reports judged not actionable, trained."""
    store, registry = VerdictStore.for_data_dir(tmp_path), ModelRegistry(tmp_path / "models")
    teach(store, [db_failure(m) for m in range(4)], "actionable")
    teach(store, [slow_report(m) for m in range(4)], "not_actionable")
    assert train_and_save_actionable(tmp_path, registry.root, min_verdicts=min_verdicts) is not None
    return store, registry, ActionableScorer(registry, check_every=0)


def test_a_verdict_changes_the_confidence_of_the_next_similar_alert(tmp_path):
    store, registry = VerdictStore.for_data_dir(tmp_path), ModelRegistry(tmp_path / "models")
    scorer = ActionableScorer(registry, check_every=0)
    assert scorer.score(db_failure(50)) is None                              # no verdicts, no confidence
    teach(store, [db_failure(m) for m in range(4)], "actionable")
    teach(store, [slow_report(m) for m in range(4)], "not_actionable")
    assert train_and_save_actionable(tmp_path, registry.root, min_verdicts=20) is None  # too few: no model
    assert scorer.score(db_failure(50)) is None
    assert train_and_save_actionable(tmp_path, registry.root, min_verdicts=8)["summary"]["verdicts"] == 8
    before = scorer.score(db_failure(50))
    assert before > 0.8 and scorer.score(slow_report(50)) < 0.2

    teach(store, [db_failure(m) for m in range(10, 18)], "expected")         # a planned failover: no page
    assert train_and_save_actionable(tmp_path, registry.root, min_verdicts=8)["version"] == "v000002"
    after = scorer.score(db_failure(51))
    assert after < 0.8 and after < before - 0.2                              # the next one is no longer paged

    teach(store, [db_failure(m) for m in range(10, 18)], "actionable")       # the last verdict on an alert counts
    train_and_save_actionable(tmp_path, registry.root, min_verdicts=8)
    assert scorer.score(db_failure(52)) > 0.8
    assert scorer.score(db_failure(53, tenant="acme")) is None               # another tenant: its own model


def test_routing_pages_above_08_and_sends_the_rest_to_the_dashboard(tmp_path):
    store, registry, scorer = trained(tmp_path)
    service = build_alerting({**FAST, "route": PAGE_ABOVE_08}, ROUTING, tmp_path / "alerts",
                             console=ConsoleNotifier(io.StringIO()))
    try:
        unscored = db_failure(40)
        service.dispatch([unscored])                                         # no scorer: no confidence
        service.scorer = scorer
        page, quiet, other = db_failure(41), slow_report(41), db_failure(41, tenant="acme")
        service.dispatch([page, quiet, other])
        teach(store, [db_failure(m) for m in range(10, 18)], "expected")     # the model changes its mind...
        train_and_save_actionable(tmp_path, registry.root, min_verdicts=8)
        resolved = db_failure(45, status=RESOLVED)
        service.dispatch([resolved])                                         # ...the page is resolved anyway
    finally:
        service.close(timeout=0.5)
    journal = {e["anomaly_id"] if "anomaly_id" in e else e["id"]: e
               for e in map(orjson.loads, (tmp_path / "alerts" / "outbox.jsonl").read_bytes().splitlines())}
    assert journal[unscored.id]["channel"] == "dashboard" and unscored.actionable is None
    assert journal[page.id]["channel"] == "pagerduty" and page.actionable > 0.8
    assert journal[quiet.id]["channel"] == "dashboard" and quiet.actionable < 0.8
    assert journal[other.id]["channel"] == "dashboard" and other.actionable is None  # no model for acme
    assert alert_labels(page)["actionable"] == f"{page.actionable:.4f}" and "actionable" not in alert_labels(other)
    assert scorer.score(db_failure(46)) < 0.8 and resolved.actionable == page.actionable
    assert journal[resolved.id]["channel"] == "pagerduty" and journal[resolved.id]["status"] == "resolved"


def test_verdict_endpoints_and_cli(tmp_path, capsys):
    service = build_alerting(FAST, ROUTING, DataDir.at(tmp_path).alerts, console=ConsoleNotifier(io.StringIO()))
    alert, other = db_failure(30), slow_report(30)
    service.dispatch([alert, other])

    async def scenario() -> None:
        app = make_app(service)
        app.add_routes(feedback_routes(tmp_path))
        async with TestClient(TestServer(app)) as client:
            closed = await client.post(f"/alerts/{alert.id}/verdict", json={"verdict": "actionable"})
            assert closed.status == 503                                     # the service keeps no verdicts yet
            service.verdicts = VerdictStore.for_data_dir(tmp_path)
            ok = await client.post(f"/alerts/{alert.id}/verdict", json={"verdict": "actionable", "by": "ann"})
            assert ok.status == 200 and (await ok.json())["rule"] == "db_connection_failure"
            assert (await client.post("/alerts/slow_response:batch-report/verdict?verdict=expected")).status == 200
            assert (await client.post(f"/alerts/{alert.id}/verdict", json={"verdict": "maybe"})).status == 400
            assert (await client.post("/alerts/nope/verdict", json={"verdict": "expected"})).status == 404
            line = {"service": "auth", "level": "ERROR", "message": "token signing key missing", "tenant": "acme"}
            answer = await client.post("/ml/verdicts/lines", json={"verdict": "actionable", "record": line})
            assert answer.status == 200 and (await answer.json())["tenant"] == "acme"
            assert (await client.post("/ml/verdicts/lines", json={"verdict": "actionable"})).status == 400

    try:
        asyncio.run(scenario())
    finally:
        service.close(timeout=0.5)
    store = VerdictStore.for_data_dir(tmp_path)
    features, verdicts = store.examples()
    assert verdicts == ["actionable", "expected"] and "payment-service" in features[0]["text"]
    assert store.examples("acme")[1] == ["actionable"]

    parser = argparse.ArgumentParser()
    feedback_command.register(parser.add_subparsers())
    args = parser.parse_args(["feedback", "--data-dir", str(tmp_path), alert.id, "false-positive", "--by", "bo"])
    assert args.func(args) == 0 and "not_actionable" in capsys.readouterr().out
    assert store.history(ALERT, alert.id)[-1] == {**store.history(ALERT, alert.id)[-1], "verdict": "not_actionable",
                                                  "by": "bo"}
    missing = parser.parse_args(["feedback", "--data-dir", str(tmp_path), "nope", "expected"])
    assert missing.func(missing) == 1


def test_verdicts_retrain_the_model_on_ray(tmp_path):
    ray = pytest.importorskip("ray")
    from logwarden.ml_jobs import VerdictTrainer

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    paths = DataDir.at(tmp_path).create()
    trainer = VerdictTrainer(paths, min_verdicts=8)
    teach(trainer.store, [db_failure(m) for m in range(4)], "actionable")
    teach(trainer.store, [slow_report(m) for m in range(3)], "not_actionable")
    assert trainer.due() == {}                                               # 7 verdicts: too few to train
    teach(trainer.store, [slow_report(10)], "not_actionable")
    assert trainer.due() == {"default": 8}
    with tempfile.TemporaryDirectory(prefix="lwverdict-", dir="/tmp") as temp:
        ray.init(num_cpus=1, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
        try:
            trainer.run_once()
        finally:
            ray.shutdown()
    assert trainer.trained == 1 and trainer.due() == {}
    scorer = ActionableScorer(ModelRegistry.for_lake(paths.lake), check_every=0)
    assert scorer.score(db_failure(60)) > 0.8
