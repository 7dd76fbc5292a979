"""TCP NDJSON, syslog over TCP (both RFC 6587 framings) and UDP, TLS, and who may connect."""

from __future__ import annotations

import datetime
import socket
import ssl
import time

import orjson
import pytest
import requests

from logwarden.collector.config import TlsConfig
from logwarden.collector.syslog import SyslogFramer
from tests.collector.helpers import RunningCollector, collector_config, ndjson, record, spooled_rows

RFC5424 = b'<34>1 2026-11-22T10:00:00.123Z web01 billing 42 ID7 [meta k="v"] payment failed'
RFC3164 = b"<13>Nov 22 10:00:00 web02 sshd[99]: accepted key"


def send_tcp(port: int, data: bytes, wrap: ssl.SSLContext | None = None) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = wrap.wrap_socket(raw, server_hostname="localhost") if wrap else raw
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        try:
            sock.recv(1)  # wait until the collector closes: everything read is durable by then
        except ConnectionResetError:
            pass


def test_tcp_ndjson_including_a_last_line_without_newline_and_an_overlong_line(tmp_path):
    with RunningCollector(tmp_path, collector_config(max_line_bytes=4096)) as collector:
        port = collector.server.tcp_port
        body = ndjson([record(n) for n in range(50)]) + b'{"x": "' + b"y" * 10_000 + b'"}\n'
        send_tcp(port, body + orjson.dumps(record(99)))
    rows = spooled_rows(tmp_path)
    assert sorted(int(r["message"][1:]) for r in rows) == list(range(50)) + [99]
    assert {r["source"].split(":")[0] for r in rows} == {"ndjson-tcp"}
    letters = list(collector.server.ingestor.deadletter)
    assert [(d.reason, d.index) for d in letters] == [("malformed", 50)]


def test_syslog_tcp_octet_counting_and_newline_framing(tmp_path):
    with RunningCollector(tmp_path, collector_config()) as collector:
        framed = b"%d %s" % (len(RFC5424), RFC5424) + RFC3164 + b"\n" + b"not syslog at all\n"
        send_tcp(collector.server.syslog_port, framed)
    rows = sorted(spooled_rows(tmp_path), key=lambda r: r["service"])
    assert [(r["service"], r["level"], r["message"]) for r in rows] == [
        ("billing", "CRITICAL", "payment failed"),
        ("sshd", "INFO", "accepted key"),
    ]
    assert rows[0]["timestamp"] == datetime.datetime(
        2026, 11, 22, 10, 0, 0, 123000, tzinfo=datetime.timezone.utc
    )
    assert orjson.loads(rows[0]["attributes"])["syslog"]["hostname"] == "web01"
    letters = list(collector.server.ingestor.deadletter)
    assert [d.raw for d in letters] == [b"not syslog at all"] and letters[0].reason == "malformed"


def test_syslog_udp(tmp_path):
    with RunningCollector(tmp_path, collector_config()) as collector:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(3):
                sock.sendto(RFC3164, ("127.0.0.1", collector.server.syslog_port))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            text = requests.get(f"{collector.url}/metrics", timeout=5).text
            if 'records_accepted_total{protocol="syslog-udp"} 3.0' in text:
                break
            time.sleep(0.05)
    assert len(spooled_rows(tmp_path)) == 3


def test_framer_handles_split_frames_and_skips_oversized_ones_without_buffering():
    framer = SyslogFramer(max_message=64)
    message = b"<13>Nov 22 10:00:00 h t: x"
    stream = b"%d %s" % (len(message), message) + b"1000000 " + b"z" * 200 + b"a" * 999_800 + message + b"\n"
    frames = []
    for start in range(0, len(stream), 7_001):
        frames += framer.feed(stream[start : start + 7_001])
        assert len(framer._buffer) < 8_000
    assert [f.data for f in frames if f.error is None] == [message, message]
    assert [f.error is not None for f in frames] == [False, True, False]


def test_stream_peers_outside_the_allowed_networks_are_refused(tmp_path):
    with RunningCollector(tmp_path, collector_config(stream_networks=("10.0.0.0/8",))) as collector:
        try:
            send_tcp(collector.server.tcp_port, ndjson([record(1)]))
        except OSError:  # broken pipe, reset, not connected
            pass  # closed by the collector before or while the client was sending
    assert spooled_rows(tmp_path) == []


@pytest.fixture
def certificate(tmp_path):
    from logwarden.testing.receivers import self_signed

    return TlsConfig(*self_signed(tmp_path))


def test_tls_on_http_and_tcp(tmp_path, certificate):
    data = tmp_path / "data"
    with RunningCollector(data, collector_config(tls=certificate)) as collector:
        url = f"https://localhost:{collector.server.http_port}/v1/logs"
        response = requests.post(url, data=ndjson([record(1)]), verify=str(certificate.cert_file), timeout=10)
        assert response.json()["accepted"] == 1
        with pytest.raises(requests.ConnectionError):
            requests.post(f"http://127.0.0.1:{collector.server.http_port}/v1/logs", data=b"{}", timeout=5)
        client = ssl.create_default_context(cafile=str(certificate.cert_file))
        send_tcp(collector.server.tcp_port, ndjson([record(2)]), wrap=client)
    assert sorted(r["message"] for r in spooled_rows(data)) == ["m1", "m2"]


def test_tcp_reads_pause_while_the_memory_budget_is_spent(tmp_path):
    with RunningCollector(tmp_path, collector_config(memory_budget_bytes=1000)) as collector:
        budget = collector.server.ingestor.budget
        collector.call(_force(budget, 10_000))  # as if batches were waiting for the spool writer
        sender = socket.create_connection(("127.0.0.1", collector.server.tcp_port))
        sender.sendall(ndjson([record(n) for n in range(10)]))
        time.sleep(0.3)
        text = requests.get(f"{collector.url}/metrics", timeout=5).text
        assert 'records_accepted_total{protocol="ndjson-tcp"}' not in text
        assert 'logwarden_collector_throttled_total{protocol="ndjson-tcp"}' in text
        collector.call(_release(budget, 10_000))
        sender.shutdown(socket.SHUT_WR)
        sender.settimeout(10)
        assert sender.recv(1) == b""
        sender.close()
    assert len(spooled_rows(tmp_path)) == 10


async def _force(budget, size: int) -> None:
    budget.force(size)


async def _release(budget, size: int) -> None:
    budget.release(size)
