"""The README's "Send logs from…" snippets work as written: every fenced Python block of the section runs, in
a fresh interpreter, against one ``logwarden collector`` child process (free ports put in place of 8080,
24224 and 5514; ``LOGWARDEN_TOKEN`` and the ``export`` lines of the section's shell blocks in its
environment), and the collector's ``/metrics`` then counts the records it sent as accepted under its
protocol's label, none rejected. The spool holds them under the service, levels and tenant the snippet
implies: the HTTP protocols carry the token (Bearer, Basic or Splunk scheme), so their records are the
token's tenant's."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from logwarden.testing.cluster import free_port
from tests.readme import fenced_blocks, send_logs_section, with_ports

REPO = Path(__file__).resolve().parents[1]
INGEST_TOKEN = "readme-ingest-token-0123456789"
ADMIN_TOKEN = "readme-admin-token-0123456789"
TENANT = "readme"


# A snippet is recognised by the client it uses: protocol label, service, levels of the records it sends,
# tenant (the token's for HTTP, the stream tenant for TCP).
CLIENTS = {
    "OTLPLogExporter": ("otlp", "checkout", ["WARNING", "ERROR"], TENANT),
    "helpers.bulk": ("elasticsearch", "shipping", ["WARNING", "ERROR"], TENANT),
    "logging_loki": ("loki", "search", ["WARNING", "ERROR"], TENANT),
    "SplunkHandler": ("splunk", "payments", ["WARNING", "ERROR"], TENANT),
    "FluentSender": ("forward", "cart", ["WARNING", "ERROR"], "default"),
    "SysLogHandler": ("syslog-tcp", "inventory", ["WARNING", "ERROR"], "default"),
}


def snippets() -> dict[str, str]:
    """The section's Python blocks by the client they use (each block uses exactly one)."""
    found: dict[str, str] = {}
    for block in fenced_blocks(send_logs_section(), "python"):
        clients = [client for client in CLIENTS if client in block]
        assert len(clients) == 1, f"a README Python block uses {clients or 'none'} of {list(CLIENTS)}:\n{block}"
        assert clients[0] not in found, f"two README blocks use {clients[0]}"
        found[clients[0]] = block
    missing = set(CLIENTS) - set(found)
    assert not missing, f"the README has no Python snippet for {sorted(missing)}"
    return found


def exported() -> dict[str, str]:
    """``export NAME=VALUE`` lines of the section's shell blocks (shell quoting undone, not yet expanded)."""
    variables = {}
    for block in fenced_blocks(send_logs_section(), "sh"):
        for line in block.splitlines():
            if line.startswith("export "):
                name, _, value = shlex.split(line.split("#", 1)[0])[1].partition("=")
                variables[name] = value
    return variables


def metric(text: str, name: str, protocol: str) -> float:
    pattern = rf'^logwarden_collector_{name}_total\{{protocol="{re.escape(protocol)}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


class Collector:
    """``logwarden collector`` in a child process, with ingest and admin tokens."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.http, self.forward, self.syslog = free_port(), free_port(), free_port()
        config = root / "logwarden.yaml"
        config.write_text(
            "collector:\n"
            f"  tokens: {{\"{INGEST_TOKEN}\": {TENANT}}}\n"
            "auth:\n"
            f"  tokens: {{\"{ADMIN_TOKEN}\": {{tenant: \"*\", role: admin}}}}\n"
        )
        self.log = (root / "collector.log").open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "logwarden", "collector", "--config", str(config), "--data-dir", str(self.data),
             "--host", "127.0.0.1", "--http-port", str(self.http), "--no-tcp", "--syslog-port", str(self.syslog),
             "--forward-port", str(self.forward)],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{self.http}/health", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "the collector did not start:\n" + self.output()
            time.sleep(0.2)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-5000:]

    def metrics(self) -> str:
        answer = requests.get(f"http://127.0.0.1:{self.http}/metrics", timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        answer.raise_for_status()
        return answer.text

    def wait_accepted(self, protocol: str, count: int, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.metrics()
            seen = metric(text, "records_accepted", protocol)
            if seen >= count or time.monotonic() > deadline:
                return text
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


@pytest.fixture
def collector(tmp_path):
    running = Collector(tmp_path)
    yield running
    running.stop()


def test_the_readme_python_snippets_ship_to_a_collector(collector, tmp_path):
    blocks = snippets()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["LOGWARDEN_TOKEN"] = INGEST_TOKEN
    for name, value in exported().items():  # the OpenTelemetry SDK's variables, as the README sets them
        env[name] = with_ports(os.path.expandvars(value.replace("${LOGWARDEN_TOKEN}", INGEST_TOKEN)),
                               collector.http, collector.forward, collector.syslog)
    assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == f"http://127.0.0.1:{collector.http}", env
    for client, code in blocks.items():
        protocol, _, levels, _ = CLIENTS[client]
        script = tmp_path / f"readme_snippet_{protocol.replace('-', '_')}.py"
        script.write_text(with_ports(code, collector.http, collector.forward, collector.syslog))
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"the README's {client} snippet failed:\n{done.stdout}\n{done.stderr}"
        text = collector.wait_accepted(protocol, len(levels))
        accepted = metric(text, "records_accepted", protocol)
        assert accepted == len(levels), (
            f"{client}: {accepted} records accepted under protocol={protocol!r}, expected {len(levels)}\n"
            f"{done.stderr}\n{collector.output()}")
        assert metric(text, "records_rejected", protocol) == 0, text
    collector.stop()
    rows = [row for path in sorted((collector.data / "spool").glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()]
    for client, (protocol, service, levels, tenant) in CLIENTS.items():
        mine = [row for row in rows if row["service"] == service]
        assert sorted(row["level"] for row in mine) == sorted(levels), (client, mine)
        assert {row["tenant"] for row in mine} == {tenant}, (client, mine)
        assert {row["source"].split(":", 1)[0] for row in mine} == {protocol}, (client, mine)
    assert len(rows) == sum(len(levels) for _, _, levels, _ in CLIENTS.values()), rows
