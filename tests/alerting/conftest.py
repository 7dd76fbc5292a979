"""Fixtures of the alerting tests: local protocol servers and a service factory with short timings."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
import yaml

from logwarden.alerting import AlertService, ConsoleNotifier, build_alerting
from logwarden.monitoring.anomaly import FIRING, Anomaly
from logwarden.testing.cluster import free_port
from logwarden.testing.receivers import ProtocolServer, SmtpServer, self_signed

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

ROUTING = {"CRITICAL": ["pagerduty"], "HIGH": ["slack"], "MEDIUM": ["email"], "LOW": ["dashboard"]}
FAST = {
    "poll_interval": 0.05,
    "group_wait": 0,
    "flush_timeout": 3,
    "delivery": {
        "max_attempts": 100,
        "initial_backoff": 0.1,
        "max_backoff": 0.5,
        "breaker_failures": 3,
        "breaker_reset": 0.5,
    },
}


def anomaly(
    rule: str = "error_spike",
    key: str = "api",
    severity: str = "HIGH",
    status: str = FIRING,
    minute: int = 0,
    value: float = 150,
    **extra: Any,
) -> Anomaly:
    """An anomaly as a detector makes it (window of 5 minutes ending at 10:<minute>)."""
    end = f"2026-03-02T10:{minute:02d}:00Z"
    start = f"2026-03-02T09:{55 + minute:02d}:00Z" if minute < 5 else f"2026-03-02T10:{minute - 5:02d}:00Z"
    fields = dict(
        rule=rule,
        kind="frequency",
        severity=severity,
        key=key,
        window_start=start,
        window_end=end,
        value=value,
        threshold="> 100",
        status=status,
        samples=[f"2026-03-02T10:{minute:02d}:00Z ERROR {key}: upstream timeout #{i}" for i in range(3)],
        action="Investigate the error burst of the service.",
        description="More than 100 ERROR/CRITICAL logs of one service in 5 minutes.",
    )
    fields.update(extra)
    return Anomaly(**fields)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def http_server():
    """A local server speaking Slack, PagerDuty Events v2 and webhook protocols."""
    server = ProtocolServer()
    server.up()
    yield server
    server.down()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server(tls_files):
    """aiosmtpd requiring STARTTLS and authentication."""
    server = SmtpServer(*tls_files, mode="starttls").start()
    yield server
    server.stop()


@pytest.fixture
def make_service(tmp_path):
    """Build (and start) services with the fast timings; all are closed at the end of the test."""
    services: list[AlertService] = []

    def make(
        section: dict | None = None,
        routing: dict | None = None,
        start: bool = True,
        alerts_dir: Path | None = None,
        dashboard_url: str | None = "http://127.0.0.1:5006/alerts",
    ) -> AlertService:
        config = {**FAST, **(section or {})}
        service = build_alerting(
            config,
            routing or ROUTING,
            alerts_dir or tmp_path / "alerts",
            dashboard_url=dashboard_url,
            console=ConsoleNotifier(io.StringIO()),
        )
        services.append(service)
        if start:
            service.start()
        return service

    yield make
    for service in services:
        service.close(timeout=0.5)


@pytest.fixture
def start_alertmanager(tmp_path) -> Callable[[dict], str]:
    """Start the real ``prometheus-alertmanager`` on 127.0.0.1 with a configuration; its base URL (skips
    the test when it is not installed). Stopped at the end of the test."""
    processes: list[subprocess.Popen] = []

    def start(config: dict) -> str:
        if ALERTMANAGER is None:
            pytest.skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
        path = tmp_path / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        with open(tmp_path / "alertmanager.log", "wb") as log:
            processes.append(subprocess.Popen(
                [ALERTMANAGER, f"--config.file={path}", f"--storage.path={tmp_path / 'am-data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                stdout=log, stderr=subprocess.STDOUT,
            ))
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return requests.get(f"{url}/-/ready", timeout=0.5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=15, interval=0.1)
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
