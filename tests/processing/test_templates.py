"""Behaviour of the online template miner on real Loghub data and on small streams."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from logwarden.processing.templates import (
    HeaderFormat,
    MinerConfig,
    TemplateInfo,
    TemplateMiner,
    grouping_accuracy,
    parsing_accuracy,
)

DATASETS = ("HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Thunderbird", "Android")


def load_loghub(root: Path, name: str) -> tuple[list[str], list[str], list[str]]:
    """Contents, true event ids and true templates of one Loghub-2k sample."""
    formats = yaml.safe_load((root / "datasets.yaml").read_text(encoding="utf-8"))
    header = HeaderFormat(formats[name])
    lines = (root / name / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    with (root / name / f"{name}_2k.log_structured.csv").open(encoding="utf-8", newline="") as handle:
        truth = list(csv.DictReader(handle))
    contents = [header.content(line) for line in lines]
    return contents, [r["EventId"] for r in truth], [r["EventTemplate"] for r in truth]


@pytest.fixture(scope="module")
def loghub(shared_data: Path) -> dict[str, tuple[list[str], list[str], list[str]]]:
    root = shared_data / "loghub"
    return {name: load_loghub(root, name) for name in DATASETS}


@pytest.fixture(scope="module")
def mined(loghub) -> dict[str, tuple[TemplateMiner, list]]:
    results = {}
    for name, (messages, _, _) in loghub.items():
        miner = TemplateMiner()
        results[name] = (miner, [miner.add(m) for m in messages])
    return results


def test_header_content_matches_ground_truth(shared_data: Path, loghub) -> None:
    root = shared_data / "loghub"
    for name, (contents, _, _) in loghub.items():
        with (root / name / f"{name}_2k.log_structured.csv").open(encoding="utf-8", newline="") as handle:
            expected = [row["Content"] for row in csv.DictReader(handle)]
        assert contents == expected, name


def test_mean_grouping_accuracy_on_loghub(loghub, mined) -> None:
    scores = {
        name: grouping_accuracy(truth_ids, [m.template_id for m in mined[name][1]])
        for name, (_, truth_ids, _) in loghub.items()
    }
    mean = sum(scores.values()) / len(scores)
    assert mean >= 0.95, scores
    assert min(scores.values()) >= 0.9, scores


def test_parsing_accuracy_on_loghub(loghub, mined) -> None:
    scores = []
    for name, (_, _, truth_templates) in loghub.items():
        miner, matches = mined[name]
        scores.append(parsing_accuracy(truth_templates, [miner.get(m.template_id).template for m in matches]))
    assert sum(scores) / len(scores) >= 0.85


def test_beats_drain3_grouping_with_same_masks(loghub, mined) -> None:
    pytest.importorskip("drain3")
    import importlib.util
    import sys

    bench_path = Path(__file__).resolve().parents[2] / "bench" / "templates.py"
    spec = importlib.util.spec_from_file_location("bench_templates", bench_path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_templates"] = bench
    spec.loader.exec_module(bench)
    ours, theirs = [], []
    for name, (messages, truth_ids, _) in loghub.items():
        drain_ids, _, _ = bench.run_drain3(messages, MinerConfig(), 0.4)
        theirs.append(grouping_accuracy(truth_ids, drain_ids))
        ours.append(grouping_accuracy(truth_ids, [m.template_id for m in mined[name][1]]))
    assert sum(ours) > sum(theirs)


def test_two_miners_fed_the_same_stream_assign_the_same_ids(loghub) -> None:
    messages = loghub["Zookeeper"][0] + loghub["HDFS"][0]
    first, second = TemplateMiner(), TemplateMiner()
    ids_first = [m.template_id for m in first.add_batch(messages)]
    assert ids_first == [m.template_id for m in second.add_batch(messages)]
    assert first.templates() == second.templates()


def test_match_after_learning_agrees_with_add(loghub, mined) -> None:
    for name, (messages, _, _) in loghub.items():
        miner, matches = mined[name]
        restored = TemplateMiner.from_snapshot(miner.snapshot())
        for message, learned in zip(messages, matches):
            found = restored.match(message)
            assert found is not None, (name, message)
            assert found.template_id == miner.resolve(learned.template_id), (name, message)


def test_template_and_params() -> None:
    miner = TemplateMiner()
    first = miner.add("Connection to 10.0.0.1 failed after 3 retries")
    second = miner.add("Connection to db-7.example.com failed after 12 retries")
    assert first.is_new and not second.is_new
    assert second.template == "Connection to <*> failed after <*> retries"
    assert second.params == ["db-7.example.com", "12"]
    assert miner.add("Component state (HWID=1973) changed").params == ["1973"]


def test_template_id_is_stable_while_template_generalises() -> None:
    miner = TemplateMiner()
    first = miner.add("Login ok for user=alice from web_ui")
    generalised = miner.add("Login ok for user=bob from web_ui")
    assert generalised.template_id == first.template_id
    assert (first.template, generalised.template) == (
        "Login ok for user=alice from web_ui", "Login ok for user=<*> from web_ui")
    assert generalised.params == ["bob"]
    assert miner.get(first.template_id).template == generalised.template


def test_variable_length_lists_share_a_template() -> None:
    miner = TemplateMiner()
    one = miner.add("ask 10.0.0.1:50010 to delete blk_1")
    many = miner.add("ask 10.0.0.2:50010 to delete blk_2 blk_3 blk_4")
    assert one.template_id == many.template_id
    assert many.template == "ask <*>:<*> to delete <*>"
    assert many.params == ["10.0.0.2", "50010", "blk_2 blk_3 blk_4"]


def test_distinct_words_stay_distinct_until_they_look_variable() -> None:
    miner = TemplateMiner(MinerConfig(min_word_variants=4))
    begin = miner.add("The change in focus caused a layout begin")
    end = miner.add("The change in focus caused a layout end")
    assert begin.template_id != end.template_id
    users = [miner.add(f"session opened for user {name}") for name in ("root", "alice", "bob", "carol")]
    assert users[-1].template == "session opened for user <*>"
    assert miner.resolve(users[0].template_id) == users[-1].template_id
    assert miner.add("session opened for user dave").template_id == users[-1].template_id


def test_new_template_callback_fires_once_per_template(loghub) -> None:
    events: list[TemplateInfo] = []
    miner = TemplateMiner(on_new_template=events.append)
    matches = miner.add_batch(loghub["BGL"][0])
    assert len(events) == sum(m.is_new for m in matches)
    assert len({e.template_id for e in events}) == len(events)
    assert {e.template_id for e in events} == {m.template_id for m in matches if m.is_new}
    assert all(e.count == 1 for e in events)


def test_match_does_not_learn() -> None:
    miner = TemplateMiner()
    assert miner.match("disk /dev/sda1 is full") is None
    assert len(miner) == 0
    miner.add("disk /dev/sda1 is full")
    assert miner.match("disk /dev/sdb2 is full").template == "disk <*> is full"
    assert len(miner) == 1


def test_usage_statistics_follow_event_times() -> None:
    miner = TemplateMiner()
    for ts in (30.0, 10.0, 20.0):
        template_id = miner.add(f"job {int(ts)} done", timestamp=ts).template_id
    info = miner.get(template_id)
    assert (info.count, info.first_seen, info.last_seen) == (3, 10.0, 30.0)


def test_config_from_dict() -> None:
    config = MinerConfig.from_dict({"sim_threshold": 0.7, "masks": [{"name": "num", "regex": r"\d+"}]})
    assert config.sim_threshold == 0.7 and config.masks == (("num", r"\d+"),)
    assert MinerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        MinerConfig.from_dict({"no_such_setting": 1})
    with pytest.raises(ValueError):
        MinerConfig.from_dict({"sim_threshold": 1.5})


def test_short_messages_are_not_merged_as_word_variants() -> None:
    miner = TemplateMiner(MinerConfig(min_word_variants=2))
    states = ["normal", "warning", "running", "halted", "LOOKING", "FOLLOWING"]
    assert len({miner.add(state).template_id for state in states}) == len(states)


def test_failing_listener_does_not_break_mining(caplog: pytest.LogCaptureFixture) -> None:
    def broken(info: TemplateInfo) -> None:
        raise RuntimeError("listener down")

    miner = TemplateMiner(on_new_template=broken)
    assert miner.add("disk 1 full").is_new
    assert "on_new_template callback failed" in caplog.text
