"""HTTP hardening of the collector (issue 16): a header-read timeout (slowloris), a per-client connection
limit, and the replay header honoured only for an admin."""
from __future__ import annotations

import socket
import time

import pytest
import requests

from logwarden.collector import CollectorConfig
from logwarden.collector.deadletter import DeadLetterStore
from logwarden.common.auth import AuthConfig
from logwarden.common.yamlconf import ConfigError

from tests.collector.helpers import RunningCollector, collector_config, ndjson, record

INGEST_TOKEN, ADMIN_TOKEN = "ingest-token-of-acme-0123", "admin-token-of-ops-012345"


def connect(collector: RunningCollector) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", collector.server.http_port), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed ``sock`` within ``seconds`` (and what it sent before)."""
    sock.settimeout(seconds)
    received = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True, received
            received += chunk
    except (socket.timeout, TimeoutError):
        return False, received
    except ConnectionResetError:
        return True, received


def post(collector: RunningCollector, body: bytes, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{collector.url}/v1/logs", data=body, timeout=10,
                         headers={"Content-Type": "application/x-ndjson", **(headers or {})})


def test_a_client_that_never_finishes_its_headers_is_closed_after_the_header_timeout(tmp_path):
    with RunningCollector(tmp_path, collector_config(header_timeout=0.5)) as collector:
        slow = connect(collector)
        slow.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n")
        started = time.monotonic()
        for _ in range(3):  # keeps trickling header bytes
            time.sleep(0.1)
            slow.sendall(b"X-Slow: 1\r\n")
        closed, answer = closed_within(slow, 5.0)
        assert closed and answer == b"" and time.monotonic() - started < 3.0
        silent = connect(collector)  # opens and sends nothing at all
        assert closed_within(silent, 5.0)[0]
        # a client that sends its headers in time, then a slow body, is not cut by the header timeout
        ok = connect(collector)
        body = ndjson([record(1)])
        ok.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
        time.sleep(1.0)  # twice the header timeout, inside the body
        ok.sendall(body)
        ok.settimeout(5)
        assert ok.recv(4096).startswith(b"HTTP/1.1 200")
        # and the kept-alive connection is closed once idle for the header timeout
        assert closed_within(ok, 5.0)[0]
        assert post(collector, ndjson([record(2)])).status_code == 200


def test_a_client_past_its_connection_limit_is_refused(tmp_path):
    with RunningCollector(tmp_path, collector_config(max_connections_per_client=3, header_timeout=30.0)) as collector:
        held = [connect(collector) for _ in range(3)]
        time.sleep(0.2)
        extra = connect(collector)
        closed, answer = closed_within(extra, 5.0)
        assert closed and answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
        assert collector.server.guard.open_connections("127.0.0.1") == 3
        metrics = requests.Session()
        held[0].close()
        time.sleep(0.3)
        assert collector.server.guard.open_connections("127.0.0.1") == 2
        response = post(collector, ndjson([record(1)]))  # a slot is free again
        assert response.status_code == 200
        for sock in held[1:]:
            sock.close()
        time.sleep(0.3)
        page = metrics.get(f"{collector.url}/metrics", timeout=10).text
        assert 'logwarden_collector_http_connections_closed_total{reason="limit"} 1.0' in page


def test_no_limit_with_zero(tmp_path):
    with RunningCollector(tmp_path, collector_config(max_connections_per_client=0, header_timeout=30.0)) as collector:
        held = [connect(collector) for _ in range(20)]
        assert post(collector, ndjson([record(1)])).status_code == 200
        for sock in held:
            sock.close()


def test_the_replay_header_is_honoured_for_admins_only(tmp_path):
    auth = AuthConfig.from_dict({"tokens": {ADMIN_TOKEN: {"tenant": "*", "role": "admin"}}})
    config = collector_config(tokens={INGEST_TOKEN: "acme"})
    bad = ndjson([record(1, level="LOUD"), record(2)])
    with RunningCollector(tmp_path, config, auth) as collector:
        store = DeadLetterStore(tmp_path / "deadletter")
        # an ingest token's replay header is ignored: its rejected record is dead-lettered as usual
        response = post(collector, bad, {"Authorization": f"Bearer {INGEST_TOKEN}", "X-Logwarden-Replay": "x"})
        assert response.status_code == 200 and response.json()["rejected"] == 1
        assert len(list(store)) == 1
        # an admin's replay (logwarden deadletter replay) keeps the letter from being stored twice
        response = post(collector, bad, {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Logwarden-Replay": "x"})
        assert response.status_code == 200 and response.json()["rejected"] == 1
        assert len(list(store)) == 1
        response = post(collector, bad, {"Authorization": f"Bearer {ADMIN_TOKEN}"})  # no header: stored
        assert len(list(store)) == 2


def test_the_guard_settings_are_config_keys():
    config = CollectorConfig.from_dict({"header_timeout": "2s", "max_connections_per_client": 0})
    assert config.header_timeout == 2.0 and config.max_connections_per_client == 0
    defaults = CollectorConfig.from_dict(None)
    assert defaults.header_timeout == 10.0 and defaults.max_connections_per_client == 256
    with pytest.raises(ConfigError, match="max_connections_per_client"):
        CollectorConfig.from_dict({"max_connections_per_client": -1})
    with pytest.raises(ConfigError, match="header_timeout"):
        CollectorConfig.from_dict({"header_timeout": "0s"})
