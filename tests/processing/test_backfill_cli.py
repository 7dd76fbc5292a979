"""``logwarden backfill --config``: the batches are rebuilt with the configuration's inventory and masking,
so enrichment is what the live stack gave them."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from distributed import Client, LocalCluster

from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.processing.pipeline import SpoolProcessor
from logwarden.settings import load_settings
from logwarden.storage import Lake, query


@pytest.fixture
def lake_from_config(tmp_path):
    """A lake of 3 batches of ``billing`` records, processed with the inventory and masking of a config."""
    (tmp_path / "inventory.yaml").write_text(
        "default: {team: unassigned, tier: 3, environment: production}\n"
        "services:\n  billing: {team: ledger, tier: 1, environment: staging}\n")
    config = tmp_path / "logwarden.yaml"
    config.write_text(f"processing:\n  inventory: {tmp_path / 'inventory.yaml'}\n"
                      "  masking: {emails: true}\n")
    settings = load_settings(config)
    paths = DataDir.at(tmp_path / "data").create()
    validator = RecordValidator(skew=SkewLimits.unlimited())
    spool = Spool(paths.spool)
    for batch in range(3):
        rows = [validator.normalize({"timestamp": f"2026-11-22T10:0{batch}:{i % 60:02d}Z", "level": "INFO",
                                     "service": "billing", "message": f"invoice {i} mailed to ann@example.com"},
                                    f"b{batch}-{i:06d}", "default", "test", 0) for i in range(100)]
        spool.write(f"000000000000{batch}-test-{batch:06d}", rows)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        processor = SpoolProcessor(client, paths, lambda output: None, masking=settings.processing.masking,
                                   inventory=settings.processing.inventory)
        processor.start()
        deadline = time.monotonic() + 60
        while processor.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        processor.stop()
    return config, paths


def backfill(paths: DataDir, *extra: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "logwarden", "backfill", "--since", "2026-11-01",
                           "--data-dir", str(paths.root), *extra], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def enrichment(paths: DataDir) -> list[tuple]:
    return query(Lake(paths.lake), "SELECT team, tier, environment, count(*), count(DISTINCT record_id), "
                                   "count(*) FILTER (WHERE message LIKE '%ann@example.com%') FROM logs "
                                   "GROUP BY ALL")


def test_backfill_keeps_the_configured_enrichment_and_masking(lake_from_config):
    config, paths = lake_from_config
    before = enrichment(paths)
    assert before == [("ledger", 1, "staging", 300, 300, 0)]  # e-mail addresses masked
    summary = backfill(paths, "--config", str(config))
    assert (summary["batches"], summary["records"]) == (3, 300)
    assert enrichment(paths) == before
    backfill(paths)  # without the config: the shipped inventory, as before --config existed
    assert enrichment(paths) == [("unassigned", 3, "production", 300, 300, 0)]
