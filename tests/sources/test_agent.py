"""The node agent: a real ``logwarden agent`` process ships a growing file to a real collector that is
killed and restarted (and is away for a while): nothing is lost; the agent is killed too and goes on from
its checkpoint and its disk buffer. It stays small and imports no Arrow, Dask or Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from logwarden.commands.agent import KNOWN_SECTIONS, load_sources
from logwarden.settings import SECTIONS
from tests.sources.helpers import REPO, free_port, spooled_rows, start_collector


def start_agent(config: Path, url: str, state: Path, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "logwarden", "--log-level", "INFO", "agent", "--config", str(config),
               "--to", url, "--state-dir", str(state), "--buffer-max-bytes", "64MiB"]
    return subprocess.Popen(command, cwd=REPO, stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


class Writer(threading.Thread):
    def __init__(self, path: Path, total: int) -> None:
        super().__init__(daemon=True)
        self.path, self.total, self.written = path, total, 0

    def run(self) -> None:
        while self.written < self.total:
            with open(self.path, "a") as handle:
                handle.write("".join(f"2026-11-22T10:00:00Z WARN job {self.written + i:06d} slow\n" for i in range(50)))
            self.written += 50
            time.sleep(0.01)


def test_the_agent_survives_collector_restarts_and_its_own_kill(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    collector_config = tmp_path / "collector.yaml"
    collector_config.write_text("collector:\n  batch: {max_age: 100ms}\n"
                                "  timestamp_skew: {max_future: 3650d, max_past: 3650d}\n")
    agent_config = tmp_path / "agent.yaml"
    agent_config.write_text(f"sources:\n  - type: file\n    paths: ['{logs}/*.log']\n    service: '{{file}}-job'\n")
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    collector = start_collector(data, port, collector_config, tmp_path / "collector.log")
    agent = start_agent(agent_config, url, tmp_path / "state", tmp_path / "agent.log")
    writer = Writer(logs / "batch.log", 20_000)
    writer.start()
    peak_rss = 0
    try:
        time.sleep(1.0)
        collector.send_signal(signal.SIGKILL)  # the collector dies...
        collector.wait()
        time.sleep(2.0)  # ...and stays away a while: the agent buffers on disk
        buffered = list((tmp_path / "state" / "buffer").glob("*.batch"))
        collector = start_collector(data, port, collector_config, tmp_path / "collector.log")
        time.sleep(1.0)
        peak_rss = max(peak_rss, psutil.Process(agent.pid).memory_info().rss)
        agent.send_signal(signal.SIGKILL)  # the agent dies too, and starts again from its state
        agent.wait()
        agent = start_agent(agent_config, url, tmp_path / "state", tmp_path / "agent.log")
        collector.send_signal(signal.SIGTERM)  # a clean collector restart
        assert collector.wait(30) == 0
        collector = start_collector(data, port, collector_config, tmp_path / "collector.log")
        writer.join(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len({row["message"] for row in spooled_rows(data)}) < writer.total:
            peak_rss = max(peak_rss, psutil.Process(agent.pid).memory_info().rss)
            time.sleep(0.25)
        time.sleep(1.0)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent_exit = agent.wait(30)
        collector.send_signal(signal.SIGTERM)
        collector.wait(30)
    assert buffered, "nothing was buffered while the collector was away"
    rows = spooled_rows(data)
    counts = Counter(int(row["message"].split()[1]) for row in rows)
    lost = sorted(set(range(writer.total)) - set(counts))
    assert not lost, f"{len(lost)} lines lost, e.g. {lost[:5]}"
    repeated = sum(count - 1 for count in counts.values())
    # At least once between agent and collector: only a batch acknowledged by the collector but whose answer
    # the agent did not get (the collector killed in between, or the agent killed before it deleted the
    # batch) can come twice.
    assert repeated <= 2 * 2000, f"{repeated} lines repeated"
    row = rows[0]
    assert (row["service"], row["level"]) == ("batch-job", "WARNING")
    assert set(__import__("orjson").loads(row["attributes"])) == {"host", "file"}
    assert agent_exit == 0
    assert peak_rss < 100 * 1024 * 1024, f"agent RSS {peak_rss / 1e6:.0f} MB"
    print(f"agent peak RSS {peak_rss / 1e6:.1f} MB; {repeated} lines sent twice")


def test_the_agent_imports_no_arrow_dask_or_ray() -> None:
    code = ("import sys; from logwarden.cli import main; "
            "sys.argv = ['logwarden', 'agent', '--help']\n"
            "try:\n    main(['agent', '--help'])\nexcept SystemExit:\n    pass\n"
            "import logwarden.collector.sources.agent, logwarden.commands.agent\n"
            "heavy = [m for m in ('pyarrow', 'numpy', 'pandas', 'dask', 'distributed', 'ray', 'duckdb', 'aiohttp',"
            " 'logwarden.processing', 'logwarden.storage') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]"), out.stdout


def test_the_agent_reads_the_sources_of_a_full_configuration(tmp_path: Path) -> None:
    assert set(KNOWN_SECTIONS) == set(SECTIONS), "logwarden.commands.agent.KNOWN_SECTIONS is behind settings"
    config = tmp_path / "logwarden.yaml"
    config.write_text("collector: {http_port: 9000}\nsources:\n  - type: file\n    paths: [/var/log/*.log]\n")
    assert load_sources(str(config)).files[0].paths == ("/var/log/*.log",)
    config.write_text("sources:\n  - type: file\n    paths: [/var/log/*.log]\n    start_at: middle\n")
    out = subprocess.run([sys.executable, "-m", "logwarden", "agent", "--config", str(config), "--to",
                          "http://127.0.0.1:1"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2
    assert f"{config}:4: sources.0.start_at: expected one of beginning, end" in out.stderr
    assert os.path.exists(config)
