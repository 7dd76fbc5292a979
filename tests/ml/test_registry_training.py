"""Models are trained from the lake (in process and as a Ray task), versioned, and picked up by rules."""
from __future__ import annotations

import os
import pickle
import tempfile
import time

import pytest

from logwarden.monitoring.ml import MlRule, ModelRegistry, retrain_due, train_and_save
from logwarden.monitoring.ml.training import read_history
from logwarden.storage.lake import Lake

WINDOW_SPEC = {"name": "svc_windows", "kind": "ml", "severity": "HIGH", "model": "window",
               "min_duration": "3m", "retrain_every": "1d"}


@pytest.fixture(scope="module")
def data_dir(traffic_run, tmp_path_factory):
    """A data directory whose lake holds the 150 minutes of history."""
    _, history, _, _ = traffic_run
    root = tmp_path_factory.mktemp("data")
    lake = Lake(root / "lake")
    for i, batch in enumerate(history):
        lake.commit_batch(f"b{i:04d}", batch)
    return root


def test_registry_versions_latest_prune_and_schedule(tmp_path):
    registry = ModelRegistry(tmp_path / "models", keep=2)
    assert registry.load("m") is None and registry.due("m", 3600)
    for n in range(3):
        registry.save("m", {"n": n}, "window", {"windows": n})
    assert registry.versions("m") == ["v000002", "v000003"] and registry.latest_version("m") == "v000003"
    model, info = registry.load("m")
    assert model == {"n": 2} and info.manifest["summary"] == {"windows": 2}
    assert info.manifest["kind"] == "window"
    assert not registry.due("m", 3600) and registry.due("m", 3600, now=time.time() + 7200)
    with pytest.raises(ValueError):
        registry.save("../escape", {}, "window")


def test_trained_model_from_the_lake_is_used_by_a_new_rule(data_dir, traffic_run):
    _, history, live, _ = traffic_run
    records = read_history(data_dir / "lake")
    assert records.num_rows == sum(b.num_rows for b in history) and "template_id" in records.column_names
    recent = read_history(data_dir / "lake", history_s=1800)
    span = recent["timestamp"][-1].value - recent["timestamp"][0].value
    assert 0 < recent.num_rows < records.num_rows and span <= 1800 * 10**6
    manifest = train_and_save(WINDOW_SPEC, data_dir / "lake", data_dir)
    assert manifest["version"] == "v000001" and set(manifest["summary"]["services"]) == {"checkout", "auth"}
    rule = MlRule({**WINDOW_SPEC, "data_dir": str(data_dir)})
    assert rule.model_version == "v000001"          # no warm-up: the lake's model is used at once
    rule = pickle.loads(pickle.dumps(rule))
    out = [a for batch in live for a in rule.add_data(batch) if a.status == "firing"]
    assert {a.key for a in out} == {"checkout", "auth"}
    assert all('"model_version":"v000001"' in a.samples[0] for a in out)
    manifest2 = train_and_save(WINDOW_SPEC, data_dir / "lake", data_dir)
    assert manifest2["version"] == "v000002" and rule.reload_model() and rule.model_version == "v000002"
    assert manifest2["summary"]["flagged_left_out"] == len(out)  # the rule's anomalies were stored
    assert retrain_due([WINDOW_SPEC], data_dir / "lake", data_dir) == {}   # trained just now: not due


def test_train_remote_runs_on_ray(data_dir):
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    spec = {"name": "new_patterns", "kind": "ml", "severity": "LOW", "model": "new_template",
            "retrain_every": "1h"}
    with tempfile.TemporaryDirectory(prefix="lwml-", dir="/tmp") as temp:
        ray.init(num_cpus=1, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
        try:
            forecast = {**WINDOW_SPEC, "model": "forecast", "threshold": {"op": ">", "value": 0.1},
                        "name": "trend"}
            refs = retrain_due([spec, forecast], data_dir / "lake", data_dir)
            assert list(refs) == ["new_patterns"]                # forecasts learn online: nothing to train
            manifest = ray.get(refs["new_patterns"], timeout=120)
        finally:
            ray.shutdown()
    assert manifest["kind"] == "new_template" and manifest["summary"]["trained_in"] == "ray"
    assert manifest["summary"]["services"] == 2
    rule = MlRule({**spec, "data_dir": str(data_dir)})
    assert rule.model_version == manifest["version"] and rule.stream.detector.learning_until_us == 0
