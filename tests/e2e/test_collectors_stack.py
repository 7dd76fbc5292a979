"""End to end with `logwarden up --collectors 2`: two collector processes on the same ports feed one stream."""
from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest
import requests

from logwarden.storage import Lake, query
from tests.e2e.cluster import StackProcess
from tests.e2e.test_stack import assert_all_five_alerts, lake_count, send_incidents

pytestmark = pytest.mark.cluster


def test_two_collectors_feed_one_stream_and_a_killed_one_is_restarted(tmp_path, ray_head):
    """`up --collectors 2`: both take connections on the shared ports, the five alerts fire, every record is
    in the lake once; a collector killed with SIGKILL is started again by `up` on its own admin port."""
    stack = StackProcess(tmp_path / "data", ray_head, collectors=2).start()
    try:
        # Slices a batch age apart, as live traffic comes: sent in one burst, one collector's batch can hold
        # 200 s of the incident while the other's holds the slices between, beyond the allowed lateness of
        # 60 s (too late: counted, and the rules do not count them; the README says so)
        sent = send_incidents(stack, pause=0.4)
        assert_all_five_alerts(stack)
        stack.wait_for(lambda: lake_count(stack) == sent, timeout=60, what=f"{sent} records in the lake")
        assert query(Lake(stack.data_dir / "lake"), "SELECT count(*) FROM logs") == [(sent,)]
        assert all(stack.accepted_by(port, "") > 0 for port in stack.admin_ports), "one collector took nothing"
        scrape = subprocess.run([sys.executable, "-m", "logwarden", "prometheus-config", "--data-dir",
                                 str(stack.data_dir)], capture_output=True, text=True, timeout=60, check=True).stdout
        for job, port in (("logwarden-collector", stack.admin_ports[0]), ("logwarden-collector-c2", stack.admin_ports[1])):
            assert f"job_name: {job}\n" in scrape and f"127.0.0.1:{port}" in scrape, scrape
        pid = json.loads((stack.data_dir / "run" / "collector-c2.pid").read_text())["pid"]
        psutil.Process(pid).kill()
        stack.wait_for(lambda: json.loads((stack.data_dir / "run" / "collector-c2.pid").read_text())["pid"] != pid,
                       timeout=60, what="collector c2 to be started again")
        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{stack.admin_ports[1]}/health", timeout=2).ok
            except requests.RequestException:
                return False

        stack.wait_for(healthy, timeout=60, what="collector c2 to answer on its admin port")
        assert stack.stop() == 0
    finally:
        stack.kill()
