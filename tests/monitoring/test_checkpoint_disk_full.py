"""A detector whose checkpoint cannot be written (a full data disk) still answers the call it applied,
with its anomalies, keeps its previous checkpoint and tries again later (``DetectorActor``). Without
that, ENOSPC on a checkpoint raised out of the call: its alert was lost, and ``logwarden up`` died."""
from __future__ import annotations

import errno

import pytest

from logwarden.monitoring import load_rules
from logwarden.monitoring.checkpoint import CheckpointStore
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from tests.monitoring.helpers import rec, table

ray = pytest.importorskip("ray")


def _actor(tmp_path):
    from logwarden.monitoring.actors import DetectorActor

    rules = load_rules(ANOMALY_SCHEMA_PATH)
    spec = next(rule for rule in rules.rules if rule.name == "error_spike")
    # the class itself, in this process (no Ray cluster needed)
    return DetectorActor.__ray_actor_class__([spec], 0, "s1", str(tmp_path), checkpoint_every=1, checkpoint_seconds=0)


def _errors(start: float, count: int):
    return table([rec(start + n * 0.1, service="pay", level="ERROR", message="boom") for n in range(count)])


def test_a_full_disk_on_checkpoint_keeps_the_anomalies_of_the_call(tmp_path, monkeypatch):
    actor = _actor(tmp_path)
    first = actor.call(1, "b1", _errors(0, 10), None)
    assert first["checkpointed"] == 1

    def full(self, checkpoint):
        raise OSError(errno.ENOSPC, "No space left on device")

    saved = CheckpointStore.save
    monkeypatch.setattr(CheckpointStore, "save", full)
    reply = actor.call(2, "b2", _errors(1.0, 120), None)
    assert reply["anomalies"], reply  # the error spike fired in this call and is answered
    assert reply["checkpointed"] == 1 and actor.checkpoint_failures == 1
    monkeypatch.setattr(CheckpointStore, "save", saved)
    actor._checkpoint_at = 0.0
    assert actor.call(3, "b3", _errors(20.0, 1), None)["checkpointed"] == 3


def test_a_failed_checkpoint_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from logwarden.monitoring.checkpoint import Checkpoint

    store = CheckpointStore(tmp_path, "rule", 0)

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", fsync)
    with pytest.raises(OSError):
        store.save(Checkpoint("f", "s", 1, {}))
    assert list(store.folder.iterdir()) == []
