"""The HTTP API end to end: formats, compression, status codes, auth, readiness, metrics, OpenAPI."""

from __future__ import annotations

import gzip

import orjson
import pytest
import requests
import zstandard

from logwarden.collector.openapi import openapi_document
from tests.collector.helpers import RunningCollector, collector_config, ndjson, record, spooled_rows

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def collector(tmp_path):
    with RunningCollector(tmp_path, collector_config()) as running:
        yield running


def post(collector, body: bytes, headers: dict | None = None) -> requests.Response:
    return requests.post(
        f"{collector.url}/v1/logs", data=body, headers={**NDJSON, **(headers or {})}, timeout=10
    )


def test_clean_ndjson_is_accepted_durably_and_spooled_with_tenant_and_utc(tmp_path):
    body = ndjson([record(n) for n in range(100)] + [record(100, timestamp="2026-11-22T12:00:00+02:00")])
    with RunningCollector(tmp_path, collector_config()) as collector:
        response = post(collector, body)
        assert response.status_code == 200
        assert response.json() == {"accepted": 101, "rejected": 0, "errors": []}
    rows = spooled_rows(tmp_path)
    assert len(rows) == 101 and {r["tenant"] for r in rows} == {"default"}
    assert rows[-1]["timestamp"].isoformat() == "2026-11-22T10:00:00+00:00"
    assert len({r["record_id"] for r in rows}) == 101


def test_mixed_batch_names_each_bad_record_and_keeps_the_good_ones(collector):
    body = b"\n".join(
        [
            orjson.dumps(record(0)),
            b'{"timestamp": broken',
            orjson.dumps(record(2, level="LOUD")),
            orjson.dumps(record(3, duration_ms=-5)),
            orjson.dumps(record(4)),
        ]
    )
    answer = post(collector, body).json()
    assert (answer["accepted"], answer["rejected"]) == (2, 3)
    assert [(e["index"], e["field"]) for e in answer["errors"]] == [(1, ""), (2, "level"), (3, "duration_ms")]


def test_json_array_gzip_and_zstd_bodies(collector):
    array = orjson.dumps([record(n) for n in range(5)])
    assert post(collector, array, {"Content-Type": "application/json"}).json()["accepted"] == 5
    assert (
        post(collector, gzip.compress(ndjson([record(1)] * 7)), {"Content-Encoding": "gzip"}).json()[
            "accepted"
        ]
        == 7
    )
    packed = zstandard.ZstdCompressor().compress(ndjson([record(1)] * 9))
    assert post(collector, packed, {"Content-Encoding": "zstd"}).json()["accepted"] == 9


def test_nothing_valid_is_400_and_bad_compression_is_400(collector):
    assert post(collector, b'{"level": "INFO"}\n').status_code == 400
    assert post(collector, b"").status_code == 400
    assert post(collector, b"not gzip", {"Content-Encoding": "gzip"}).status_code == 400


def test_body_over_the_limit_is_413_even_when_compressed(tmp_path):
    with RunningCollector(tmp_path, collector_config(max_body_bytes=10_000)) as collector:
        assert post(collector, b"x" * 20_000).status_code == 413
        bomb = gzip.compress(b"\n" * 1_000_000)
        assert post(collector, bomb, {"Content-Encoding": "gzip"}).status_code == 413
        assert post(collector, ndjson([record(1)])).status_code == 200


def test_backpressure_answers_429_with_retry_after(tmp_path):
    with RunningCollector(tmp_path, collector_config(memory_budget_bytes=1000)) as collector:
        collector.server.ingestor.budget.force(10_000)  # as if batches were waiting for the spool writer
        response = post(collector, ndjson([record(1)]))
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
        collector.server.ingestor.budget.release(10_000)
        assert post(collector, ndjson([record(1)])).status_code == 200


def test_tokens_map_to_tenants_and_the_body_cannot_choose_one(tmp_path):
    config = collector_config(tokens={"token-of-acme-0123456789": "acme"})
    with RunningCollector(tmp_path, config) as collector:
        body = ndjson([record(1, tenant="evil")])
        missing = post(collector, body)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert missing.json()["accepted"] == 0 and missing.json()["errors"][0]["error"]
        assert post(collector, body, {"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        ok = post(collector, body, {"Authorization": "Bearer token-of-acme-0123456789"})
        assert ok.status_code == 200
    rows = spooled_rows(tmp_path)
    assert [r["tenant"] for r in rows] == ["acme"]
    assert orjson.loads(rows[0]["attributes"]) == {"tenant": "evil"}


def test_ready_turns_false_over_the_spool_high_water_mark(tmp_path):
    with RunningCollector(tmp_path, collector_config(spool_high_water=1)) as collector:
        assert requests.get(f"{collector.url}/ready", timeout=5).json()["ready"] is True
        collector.server.ingestor.spool_depth = 2
        response = requests.get(f"{collector.url}/ready", timeout=5)
        assert response.status_code == 503 and "high-water" in response.json()["problems"][0]
        assert requests.get(f"{collector.url}/health", timeout=5).json() == {"status": "ok"}


def test_metrics_count_accepted_rejected_by_reason_and_bytes(collector):
    post(collector, ndjson([record(1), record(2, level="LOUD")]))
    text = requests.get(f"{collector.url}/metrics", timeout=5).text
    assert 'logwarden_collector_records_accepted_total{protocol="http"} 1.0' in text
    assert 'logwarden_collector_records_rejected_total{protocol="http",reason="schema_enum"} 1.0' in text
    assert "logwarden_collector_bytes_total" in text and "logwarden_collector_request_seconds_bucket" in text
    assert "logwarden_collector_spool_depth" in text


def test_openapi_describes_every_route(collector):
    document = openapi_document()
    served = requests.get(f"{collector.url}/openapi.yaml", timeout=5)
    assert served.status_code == 200 and served.text.startswith("openapi: 3.1")
    app_routes = {route.resource.canonical for route in collector.server._runner.app.router.routes()}
    assert app_routes == set(document["paths"])
    assert {"200", "400", "401", "403", "413", "429"} <= set(
        document["paths"]["/v1/logs"]["post"]["responses"]
    )


def test_a_compressed_body_too_big_for_the_memory_budget_is_refused_after_decompression(tmp_path):
    with RunningCollector(tmp_path, collector_config(memory_budget_bytes=1 << 20)) as collector:
        small = gzip.compress(ndjson([record(1)] * 20))
        assert post(collector, small, {"Content-Encoding": "gzip"}).json()["accepted"] == 20
        held = collector.server.ingestor.budget.used  # the open batch
        bomb = gzip.compress(ndjson([record(1)] * 20_000))  # ~1.7 MB once decompressed
        response = post(collector, bomb, {"Content-Encoding": "gzip"})
        assert response.status_code == 429 and collector.server.ingestor.budget.used == held


def test_ndjson_labelled_application_json_and_a_single_pretty_printed_object(collector):
    as_json = {"Content-Type": "application/json"}
    assert post(collector, ndjson([record(1), record(2)]), as_json).json()["accepted"] == 2
    pretty = orjson.dumps(record(3), option=orjson.OPT_INDENT_2)
    assert post(collector, pretty, as_json).json()["accepted"] == 1
    truncated = post(collector, b"[1, 2", as_json)
    assert truncated.status_code == 400 and "invalid JSON" in truncated.json()["errors"][0]["error"]
