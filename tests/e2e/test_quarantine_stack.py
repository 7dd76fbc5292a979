"""End to end (issue 16): a running ``logwarden up`` quarantines a corrupt spool batch, raises a CRITICAL
self-alert through its router, counts it on the API's ``/metrics``, and processes a batch that
``logwarden spool failed retry`` moves back into the spool."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.storage import Lake, query
from tests.e2e.cluster import StackProcess

pytestmark = pytest.mark.cluster
VALIDATOR = RecordValidator(skew=SkewLimits(max_future=1e10, max_past=1e10))
CORRUPT, WAITING = "1700000000000-corrupt-000001", "1700000000001-test-000001"


def quarantined_gauge(stack: StackProcess) -> float | None:
    text = requests.get(f"{stack.api_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("logwarden_spool_quarantined_batches "):
            return float(line.split()[1])
    return None


def test_corrupt_batch_quarantined_alerted_counted_and_a_retried_batch_processed(tmp_path, ray_head):
    stack = StackProcess(tmp_path / "data", ray_head).start()
    try:
        spool = stack.data_dir / "spool"
        staged = spool / f".{CORRUPT}.parquet.tmp"
        staged.write_bytes(b"PAR1 this is not a parquet file")
        os.replace(staged, spool / f"{CORRUPT}.parquet")

        def alert():
            return [a for a in stack.outbox() if a["rule"] == "batch_quarantined" and a["key"] == CORRUPT]

        fired = stack.wait_for(alert, timeout=60, what="the self-alert of the corrupt batch")
        assert fired[0]["severity"] == "CRITICAL" and fired[0]["channel"] == "pagerduty"
        assert fired[0]["status"] == "firing" and fired[0]["tenant"] == "*"
        assert (spool / "failed" / f"{CORRUPT}.reason.json").exists()
        assert quarantined_gauge(stack) == 1.0

        # a batch left in quarantine earlier, whose cause is gone: retried, the running stack commits it
        rows = [VALIDATOR.normalize({"timestamp": f"2026-11-22T10:00:{i:02d}Z", "level": "INFO", "service": "svc",
                                     "message": f"job {i} finished"}, f"w-{i}", "default", "test", 0)
                for i in range(12)]
        Spool(spool / "failed").write(WAITING, rows)
        assert quarantined_gauge(stack) == 2.0
        done = subprocess.run([sys.executable, "-m", "logwarden", "spool", "failed", "retry", WAITING,
                               "--data-dir", str(stack.data_dir)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        lake = Lake(stack.data_dir / "lake")
        stack.wait_for(lambda: lake.is_committed(WAITING), timeout=60, what="the retried batch in the lake")
        assert query(lake, "SELECT count(*) FROM logs WHERE batch_id = ?", [WAITING]) == [(12,)]
        assert quarantined_gauge(stack) == 1.0
        assert stack.stop() == 0
    finally:
        stack.kill()
