"""The README's "Read log files" section: its sources: example is a valid configuration that follows files,
and its DaemonSet example runs the agent with options the agent takes."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import yaml

from logwarden.cli import build_parser
from logwarden.settings import parse_settings
from tests.readme import README, fenced_blocks
from tests.sources.helpers import InProcessCollector

HEADING = "## Read log files"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(HEADING) == 1, f"README.md has no single {HEADING!r} section"
    return text.split(HEADING, 1)[1].split("\n## ", 1)[0]


def sources_example() -> str:
    (block,) = [block for block in fenced_blocks(section(), "yaml") if block.startswith("sources:")]
    return block


def test_the_sources_example_loads_and_follows_files(tmp_path: Path) -> None:
    settings = parse_settings(sources_example(), "README.md")
    app, pods, billing = settings.sources.files
    assert app.multiline.rule == "java" and app.exclude == ("*.tmp",)
    assert pods.name == "pods" and pods.service == "{container}"
    assert (billing.format, billing.service, billing.start_at, billing.max_line_bytes) == ("json", "billing", "end",
                                                                                         256 * 1024)
    # the same text with the paths moved below tmp_path: it follows files
    (tmp_path / "var/log/app").mkdir(parents=True)
    (tmp_path / "var/log/app/api.log").write_bytes(
        b"2026-11-22 10:00:00,001 ERROR [main] c.e.Api - failed\njava.lang.IllegalStateException: x\n"
        b"\tat c.e.Api.f(Api.java:1)\n2026-11-22 10:00:01,000 INFO [main] c.e.Api - ok\n")
    text = re.sub(r"(?<=[\[ ])/(var|srv)/", lambda m: f"{tmp_path}/{m.group(1)}/", sources_example())
    with InProcessCollector(tmp_path / "data", text.split("sources:\n", 1)[1]) as collector:
        rows = collector.wait_for_rows(2)
        time.sleep(1.2)
        rows = collector.rows()
    assert sorted((row["service"], row["level"]) for row in rows) == [("api", "ERROR"), ("api", "INFO")]


def test_the_agent_examples_use_options_the_agent_takes() -> None:
    text = section()
    (command,) = [block for block in fenced_blocks(text, "") if "logwarden agent" in block]
    argv = shlex.split(command.replace("\\\n", " "))[1:]
    args = build_parser("agent").parse_args(argv)
    assert args.to.startswith("https://") and args.buffer_max_bytes == "512MiB"
    documents = [doc for block in fenced_blocks(text, "yaml") if "DaemonSet" in block
                 for doc in yaml.safe_load_all(block)]
    config_map = next(doc for doc in documents if doc["kind"] == "ConfigMap")
    node = parse_settings(config_map["data"]["node.yaml"], "node.yaml")
    assert node.sources.files[0].paths == ("/var/log/pods/*/*/*.log",)
    daemon_set = next(doc for doc in documents if doc["kind"] == "DaemonSet")
    (container,) = daemon_set["spec"]["template"]["spec"]["containers"]
    args = build_parser("agent").parse_args(container["args"])
    assert args.config == "/etc/logwarden/node.yaml" and args.state_dir == "/var/lib/logwarden-agent"
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/etc/logwarden", "/var/log", "/var/lib/logwarden-agent"} <= mounts
