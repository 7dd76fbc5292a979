"""Real clients, unmodified, against ``mount_protocols``: the OpenTelemetry Python SDK (its ``LoggingHandler``
and OTLP/HTTP exporter, protobuf; the same export as OTLP JSON), ``python-logging-loki`` (Loki JSON) and a
snappy protobuf body encoded from Loki's ``push.proto``. The records are read back from the spool."""

from __future__ import annotations

import logging
import time

import cramjam
import pytest
import requests
from google.protobuf.json_format import MessageToJson
from google.protobuf.timestamp_pb2 import Timestamp

from tests.collector.loki_push_pb2 import EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter
from tests.collector.protocol_server import ProtocolServer, attributes

otel_logs = pytest.importorskip("opentelemetry.sdk._logs")
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402


def otel_logger(name: str, processor, service: str) -> tuple[logging.Logger, object]:
    provider = otel_logs.LoggerProvider(resource=Resource.create({"service.name": service, "host.name": "web-1"}))
    provider.add_log_record_processor(processor)
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(otel_logs.LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    return logger, provider


def emit(logger: logging.Logger) -> float:
    before = time.time()
    logger.debug("cache warm")
    logger.info("order placed", extra={"user_id": "u-42", "order_id": 1001})
    logger.warning("payment slow", extra={"duration_ms": 812.5})
    try:
        raise ValueError("card declined")
    except ValueError:
        logger.exception("payment failed")
    logger.critical("ledger corrupted")
    return before


def check_sdk_rows(rows: list[dict], service: str, logger_name: str, before: float) -> None:
    by_message = {row["message"]: row for row in rows if row["service"] == service}
    assert {message: row["level"] for message, row in by_message.items()} == {
        "cache warm": "DEBUG",
        "order placed": "INFO",
        "payment slow": "WARNING",
        "payment failed": "ERROR",
        "ledger corrupted": "CRITICAL",
    }
    placed = by_message["order placed"]
    assert placed["user_id"] == "u-42"
    extra = attributes(placed)
    assert extra["order_id"] == 1001 and extra["scope.name"] == logger_name
    assert extra["resource.host.name"] == "web-1" and extra["resource.telemetry.sdk.language"] == "python"
    assert "code.function.name" in extra or "code.function" in extra
    assert by_message["payment slow"]["duration_ms"] == 812.5
    failed = attributes(by_message["payment failed"])
    assert failed["exception.type"] == "ValueError" and "card declined" in failed["exception.message"]
    for row in by_message.values():
        assert before - 1 <= row["timestamp"].timestamp() <= time.time() + 1


def test_the_opentelemetry_sdk_exporter_sends_protobuf_and_gzip(tmp_path, monkeypatch):
    with ProtocolServer(tmp_path) as server:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
        logger, provider = otel_logger("shop.checkout", BatchLogRecordProcessor(OTLPLogExporter()), "checkout")
        before = emit(logger)
        provider.shutdown()
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        logger, provider = otel_logger("shop.cart", SimpleLogRecordProcessor(OTLPLogExporter()), "cart")
        emit(logger)
        provider.shutdown()
    rows = server.rows()
    check_sdk_rows(rows, "checkout", "shop.checkout", before)
    check_sdk_rows(rows, "cart", "shop.cart", before)
    assert len(rows) == 10 and server.letters() == []


def test_the_same_export_as_otlp_json(tmp_path):
    memory = InMemoryLogRecordExporter()
    logger, provider = otel_logger("shop.search", SimpleLogRecordProcessor(memory), "search")
    before = emit(logger)
    provider.shutdown()
    body = MessageToJson(encode_logs(memory.get_finished_logs()))
    with ProtocolServer(tmp_path) as server:
        response = requests.post(f"{server.url}/v1/logs", data=body, headers={"Content-Type": "application/json"},
                                 timeout=10)
        assert response.status_code == 200 and response.json() == {}
    check_sdk_rows(server.rows(), "search", "shop.search", before)


def test_python_logging_loki_pushes_json(tmp_path):
    logging_loki = pytest.importorskip("logging_loki")
    with ProtocolServer(tmp_path) as server:
        handler = logging_loki.LokiHandler(
            url=f"{server.url}/loki/api/v1/push", tags={"app": "billing", "env": "prod"}, version="1"
        )
        logger = logging.getLogger("billing.worker")
        logger.handlers.clear()
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        before = time.time()
        logger.warning('level=warn msg="disk almost full" user_id=u-7 duration_ms=12')
        logger.error('{"msg": "charge failed", "request_id": "r-1", "error_code": "CARD_DECLINED"}')
        logger.info("plain words from billing", extra={"tags": {"region": "eu"}})
        handler.close()
    rows = {row["message"]: row for row in server.rows()}
    assert set(rows) == {"disk almost full", "charge failed", "plain words from billing"}
    disk = rows["disk almost full"]
    assert (disk["service"], disk["level"], disk["user_id"], disk["duration_ms"]) == ("billing", "WARNING", "u-7", 12.0)
    assert attributes(disk) == {
        "level_original": "warning", "log_format": "logfmt", "env": "prod", "logger": "billing.worker"
    }
    charge = rows["charge failed"]
    assert (charge["level"], charge["request_id"], charge["error_code"]) == ("ERROR", "r-1", "CARD_DECLINED")
    plain = rows["plain words from billing"]
    assert plain["level"] == "INFO" and attributes(plain)["region"] == "eu"
    for row in rows.values():
        assert before - 1 <= row["timestamp"].timestamp() <= time.time() + 1


def test_a_loki_protobuf_body_from_push_proto(tmp_path):
    now = time.time_ns()
    request = PushRequest(streams=[
        StreamAdapter(labels='{service_name="gateway", detected_level="error", cluster="eu-1"}', entries=[
            EntryAdapter(timestamp=Timestamp(seconds=now // 10**9, nanos=now % 10**9),
                         line='time=2026-11-22T10:00:00Z msg="upstream timeout" duration_ms=5012',
                         structuredMetadata=[LabelPairAdapter(name="trace_id", value="abc123")]),
        ]),
        StreamAdapter(labels='{job="varlogs"}', entries=[
            EntryAdapter(timestamp=Timestamp(seconds=now // 10**9, nanos=now % 10**9 + 1), line="WARN low disk"),
        ]),
    ])
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    with ProtocolServer(tmp_path) as server:
        response = requests.post(f"{server.url}/loki/api/v1/push", data=body,
                                 headers={"Content-Type": "application/x-protobuf"}, timeout=10)
        assert response.status_code == 204, response.text
    rows = {row["service"]: row for row in server.rows()}
    gateway = rows["gateway"]
    assert (gateway["level"], gateway["message"], gateway["duration_ms"]) == ("ERROR", "upstream timeout", 5012.0)
    assert gateway["timestamp"].timestamp() == pytest.approx(now / 1e9, abs=1e-5)
    assert attributes(gateway) == {
        "level_original": "error", "trace_id": "abc123", "log_format": "logfmt", "cluster": "eu-1"
    }
    varlogs = rows["varlogs"]
    assert varlogs["level"] == "WARNING" and "low disk" in varlogs["message"]
