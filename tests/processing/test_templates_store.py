"""Persistence, snapshots and the multi-worker (match in parallel, learn in one place) path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from logwarden.processing.templates import FileTemplateStore, MinerConfig, TemplateMiner, grouping_accuracy
from logwarden.processing.templates.distributed import BatchCoordinator, match_partition
from tests.processing.test_templates import load_loghub


@pytest.fixture(scope="module")
def thunderbird(shared_data: Path) -> tuple[list[str], list[str]]:
    messages, truth, _ = load_loghub(shared_data / "loghub", "Thunderbird")
    return messages, truth


def test_save_load_round_trip_keeps_ids(tmp_path: Path, thunderbird) -> None:
    messages, _ = thunderbird
    half = len(messages) // 2
    continuous = TemplateMiner()
    expected = [m.template_id for m in continuous.add_batch(messages)]

    first = TemplateMiner()
    ids = [m.template_id for m in first.add_batch(messages[:half])]
    store = FileTemplateStore(tmp_path / "state")
    store.save(first)
    restored = store.load()
    assert restored is not None
    assert restored.templates() == first.templates()
    ids += [m.template_id for m in restored.add_batch(messages[half:])]
    assert ids == expected
    assert restored.templates() == continuous.templates()


def test_store_files(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    store = FileTemplateStore(tmp_path)
    assert store.load() is None
    miner = TemplateMiner()
    miner.add("user 1 logged in", timestamp=5.0)
    store.save(miner)
    state = json.loads(store.state_path.read_text(encoding="utf-8"))
    assert state["clusters"][0]["tokens"] == ["user", "<*>", "logged", "in"]
    table = pq.read_table(tmp_path / "templates.parquet").to_pylist()
    assert table == [{"template_id": miner.templates()[0].template_id, "template": "user <*> logged in",
                      "count": 1, "first_seen": 5.0, "last_seen": 5.0}]
    assert store.load_or_create(TemplateMiner).templates() == miner.templates()


def test_snapshot_round_trip_keeps_config_and_state(thunderbird) -> None:
    miner = TemplateMiner(MinerConfig(sim_threshold=0.7))
    miner.add_batch(thunderbird[0][:500])
    clone = TemplateMiner.from_snapshot(miner.snapshot())
    assert clone.config == miner.config
    assert clone.templates() == miner.templates()
    rest = thunderbird[0][500:]
    assert [m.template_id for m in clone.add_batch(rest)] == [m.template_id for m in miner.add_batch(rest)]
    with pytest.raises(ValueError):
        TemplateMiner.from_snapshot(b"garbage")


def test_worker_matching_does_not_learn() -> None:
    miner = TemplateMiner()
    miner.add("disk 1 full")
    snapshot = miner.snapshot()
    matches = match_partition(snapshot, ["disk 2 full", "fan 3 failed"])
    assert matches[0] is not None and matches[0].template == "disk <*> full"
    assert matches[1] is None
    assert TemplateMiner.from_snapshot(snapshot).templates() == miner.templates()


def run_distributed(
    messages: list[str], batch: int = 250, workers: int = 4
) -> tuple[TemplateMiner, list[str]]:
    """Simulate the per-batch cycle with interleaved partitions; returns the ids per line in order."""
    coordinator = BatchCoordinator(TemplateMiner())
    ids: list[str] = []
    for start in range(0, len(messages), batch):
        chunk = messages[start:start + batch]
        partitions = [chunk[w::workers] for w in range(workers)]
        results = coordinator.run_batch(partitions)
        ordered = [""] * len(chunk)
        for w, rows in enumerate(results):
            for j, match in enumerate(rows):
                ordered[w + workers * j] = match.template_id
        ids += ordered
    return coordinator.miner, ids


def test_distributed_batches_are_consistent_and_accurate(thunderbird) -> None:
    messages, truth = thunderbird
    miner_a, ids_a = run_distributed(messages)
    miner_b, ids_b = run_distributed(messages)
    assert ids_a == ids_b
    assert miner_a.snapshot() == miner_b.snapshot()
    assert grouping_accuracy(truth, [miner_a.resolve(i) for i in ids_a]) >= 0.95
    assert sum(info.count for info in miner_a.templates()) == len(messages)


def test_merge_independent_miner() -> None:
    central, worker = TemplateMiner(), TemplateMiner()
    central.add("job 1 started")
    worker.add_batch(["job 2 started", "job 3 started", "fan 4 failed"])
    mapping = central.merge(worker)
    assert mapping[worker.templates()[0].template_id] == central.templates()[0].template_id
    assert central.get(mapping[worker.templates()[1].template_id]).template == "fan <*> failed"
    assert [info.count for info in central.templates()] == [3, 1]


def test_odd_messages_survive_persistence(tmp_path: Path) -> None:
    miner = TemplateMiner()
    odd = ["", "   ", "héllo wörld 42", "\udcff undecodable byte 7", "x" * 5000 + " 1"]
    ids = [m.template_id for m in miner.add_batch(odd)]
    store = FileTemplateStore(tmp_path)
    store.save(miner)
    restored = store.load()
    assert restored is not None and restored.templates() == miner.templates()
    assert [restored.match(message).template_id for message in odd] == ids
    assert TemplateMiner.from_snapshot(miner.snapshot()).templates() == miner.templates()
