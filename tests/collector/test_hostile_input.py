"""Hostile input gets a clear error and costs nothing else: no crash, and the valid records of the
same batch are kept. The decoders are fuzzed directly (fast); a running collector gets the worst cases."""

from __future__ import annotations

import gzip
import socket
import time

import orjson
import pytest
import requests
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.collector.batch import BatchDecoder
from logwarden.collector.streams import NdjsonSession, SyslogSession
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits
from tests.collector.helpers import RunningCollector, collector_config, ndjson, record, spooled_rows

NOW = 1_795_334_400.0  # 2026-11-22T08:00:00Z
VALIDATOR = RecordValidator(
    skew=SkewLimits(max_future=3600, max_past=86400),
    clock=lambda: NOW,
    limits=RecordLimits(max_fields=1000, max_depth=32),
)
DECODER = BatchDecoder(VALIDATOR, max_line_bytes=256 * 1024, max_body_bytes=8 << 20)

HOSTILE_LINES = st.sampled_from(
    [
        b'{"timestamp": "2026-11-22T08:00:00Z", "level": ',  # truncated JSON
        b"\xff\xfe\xfd invalid utf-8",
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","service":"s","message":"\xc3\x28"}',
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","service":"s","message":"a\x00b"}',
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","service":"s","message":"'
        + b"x" * 300_000
        + b'"}',
        b"{" + b",".join(b'"f%d":1' % i for i in range(20_000)) + b"}",  # 20k fields (line under the limit)
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","service":"s","message":"m","x":'
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",  # deep nesting
        b"[" * 200_000,
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","service":"s","message":"m","d":'
        + b'{"a":' * 50
        + b"1"
        + b"}" * 50
        + b"}",
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","service":5,"message":"m"}',  # wrong type
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"LOUD","service":"s","message":"m"}',  # unknown level
        b'{"timestamp":"2126-11-22T08:00:00Z","level":"INFO","service":"s","message":"m"}',  # far future
        b'{"timestamp":"1926-11-22T08:00:00Z","level":"INFO","service":"s","message":"m"}',  # far past
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","service":"s","message":"m","duration_ms":NaN}',
        b'{"timestamp":"2026-11-22T08:00:00Z","level":"INFO","level":7,"service":"s","message":"m"}',
        b'{"a":1}{"b":2}',
        b"null",
        b"42",
        b'"text"',
        b"[]",
        b"{}",
    ]
)
VALID = st.builds(
    lambda n: orjson.dumps(
        {"timestamp": "2026-11-22T08:00:00Z", "level": "INFO", "service": "ok", "message": f"valid-{n}"}
    ),
    st.integers(0, 10**9),
)
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@FUZZ
@given(st.lists(VALID | HOSTILE_LINES | st.binary(max_size=200), min_size=1, max_size=12))
def test_ndjson_decoder_survives_anything_and_keeps_every_valid_record(lines):
    body = b"\n".join(lines)
    batch = DECODER.ndjson(body)
    accepted = set(batch.table.column("message").to_pylist())
    expected = {
        orjson.loads(line)["message"]
        for line in lines
        if line.startswith(b'{"timestamp":"2026-11-22T08')
        and line.endswith(b'"}')
        and b'"service":"ok"' in line
    }
    assert expected <= accepted
    counted = sum(1 for line in body.split(b"\n") if line.strip())
    assert batch.accepted + len(batch.rejected) == counted
    assert all(rejection.error for _, rejection in batch.rejected)


@FUZZ
@given(
    st.lists(VALID | HOSTILE_LINES | st.binary(max_size=100), min_size=1, max_size=8),
    st.lists(st.integers(1, 70_000), min_size=1, max_size=8),
)
def test_tcp_sessions_survive_any_chunking(lines, cuts):
    stream = b"\n".join(lines) + b"\n"
    for session in (NdjsonSession(DECODER), SyslogSession(DECODER)):
        position, kept = 0, 0
        for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
            if position >= len(stream):
                break
            batch = session.feed(stream[position : position + cut])
            position += cut
            kept += batch.accepted if batch else 0
        last = session.finish()
        kept += last.accepted if last else 0
        if isinstance(session, NdjsonSession):
            assert kept >= sum(1 for line in lines if b'"service":"ok"' in line and line.startswith(b'{"t'))


@pytest.fixture(scope="module")
def shared_collector(tmp_path_factory):
    config = collector_config(max_line_bytes=256 * 1024)
    with RunningCollector(tmp_path_factory.mktemp("fuzz"), config) as running:
        yield running


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    st.lists(VALID | HOSTILE_LINES | st.binary(max_size=100), min_size=1, max_size=8),
    st.sampled_from(["application/x-ndjson", "application/json", "text/plain"]),
    st.sampled_from([None, "gzip", "zstd"]),
)
def test_the_server_answers_every_hostile_body_and_keeps_the_valid_records(
    shared_collector, lines, content_type, encoding
):
    body = b"\n".join(lines)
    headers = {"Content-Type": content_type}
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    elif encoding == "zstd":
        body, headers["Content-Encoding"] = zstandard.ZstdCompressor().compress(body), "zstd"
    response = requests.post(f"{shared_collector.url}/v1/logs", data=body, headers=headers, timeout=30)
    assert response.status_code in (200, 400), response.text
    answer = response.json()
    valid = sum(
        1
        for line in lines
        if line.startswith(b'{"timestamp":"2026-11-22T08')
        and b'"service":"ok"' in line
        and line.endswith(b'"}')
    )
    if content_type != "application/json" or len(lines) > 1:
        assert answer["accepted"] >= valid
    assert all(error["error"] for error in answer["errors"])


def test_a_running_collector_answers_hostile_bodies_and_keeps_serving(tmp_path):
    config = collector_config(max_line_bytes=1 << 20, idle_timeout=0.5, body_timeout=1.0)
    with RunningCollector(tmp_path, config) as collector:
        url = f"{collector.url}/v1/logs"
        ten_mb_line = b'{"message":"' + b"x" * (10 << 20) + b'"}'
        mixed = b"\n".join([orjson.dumps(record(1)), ten_mb_line, b"\x00\xff{", orjson.dumps(record(2))])
        answer = requests.post(url, data=mixed, timeout=30).json()
        assert (answer["accepted"], answer["rejected"]) == (2, 2)
        assert "exceeds" in answer["errors"][0]["error"]
        deep = b'{"x":' + b"[" * 500_000 + b"]" * 500_000 + b"}\n" + orjson.dumps(record(3))
        assert requests.post(url, data=deep, timeout=30).json()["accepted"] == 1

        # a slow-drip TCP client is cut after the idle timeout; others are served meanwhile
        drip = socket.create_connection(("127.0.0.1", collector.server.tcp_port))
        drip.sendall(b'{"timestamp":')
        assert requests.post(url, data=ndjson([record(4)]), timeout=5).json()["accepted"] == 1
        time.sleep(1.0)
        drip.settimeout(5)
        assert drip.recv(10) == b""  # closed by the collector
        drip.close()

        # a slow-drip HTTP body times out with 408
        with socket.create_connection(("127.0.0.1", collector.server.http_port)) as slow:
            slow.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            slow.settimeout(10)
            assert b" 408 " in slow.recv(200)
        assert requests.get(f"{collector.url}/health", timeout=5).ok
    assert sorted(r["message"] for r in spooled_rows(tmp_path)) == ["m1", "m2", "m3", "m4"]
