"""Every shipper's protocol on the live path: real clients send to a ``logwarden up`` started by the test,
and the records reach the lake with their service, level, message and attributes; the seed detectors
fire on OTLP records as on native ones.

Clients: the OpenTelemetry Python SDK (``LoggingHandler`` + OTLP/HTTP exporter, protobuf), the official
``elasticsearch`` client's bulk helper, ``python-logging-loki``, ``splunk-handler``, ``fluent-logger``
(Fluent forward) and Python's ``SysLogHandler`` with a CEF payload."""
from __future__ import annotations

import logging
import logging.handlers
from datetime import datetime

import orjson
import pytest
import requests

from logwarden.storage import Lake, query
from logwarden.testing.cluster import free_port
from tests.e2e.cluster import StackProcess
from tests.e2e.traffic import incident_records

pytestmark = pytest.mark.cluster

CEF = ("CEF:0|Trend Micro|Deep Security Manager|10.0|600|User Signed In|10|"
       "src=10.52.116.160 suser=admin target=admin msg=User signed in from 10.52.116.160")


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def _send_otel(stack: StackProcess) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "otel-checkout"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{stack.http_url}/v1/logs")))
    logger = _logger("e2e.otel", LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    logger.warning("payment slow", extra={"order_id": 7})
    logger.error("payment declined")
    assert provider.force_flush(10_000)
    provider.shutdown()


def _send_elasticsearch(stack: StackProcess) -> None:
    from elasticsearch import Elasticsearch, helpers

    client = Elasticsearch(stack.http_url, request_timeout=30)
    docs = [{"@timestamp": "2026-11-22T10:00:00Z", "log": {"level": "warn"}, "service": {"name": "es-web"},
             "message": "upstream slow", "user": {"id": "u-1"}},
            {"@timestamp": "2026-11-22T10:00:01Z", "log.level": "error", "service.name": "es-web",
             "message": "upstream failed"}]
    ok, errors = helpers.bulk(client, ({"_index": "logs-web", "_source": doc} for doc in docs))
    assert ok == 2 and not errors


def _send_loki(stack: StackProcess) -> None:
    import logging_loki

    handler = logging_loki.LokiHandler(url=f"{stack.http_url}/loki/api/v1/push", tags={"app": "loki-billing"},
                                       version="1")
    logger = _logger("e2e.loki", handler)
    logger.info("invoice sent")
    logger.error("invoice failed")
    handler.close()


def _send_splunk(stack: StackProcess) -> None:
    from splunk_handler import SplunkHandler

    handler = SplunkHandler(host="127.0.0.1", port=stack.http_port, token="unused-without-tokens", index="main",
                            protocol="http", verify=False, source="hec-orders", sourcetype="python",
                            hostname="web-1", flush_interval=3600, retry_count=0)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = _logger("e2e.splunk", handler)
    logger.error("order rejected")
    handler.force_flush()
    handler.close()


def _send_forward(forward_port: int) -> None:
    from fluent import sender

    with sender.FluentSender("fwd-cart", port=forward_port, nanosecond_precision=True) as fluent:
        assert fluent.emit("event", {"message": "cart emptied", "level": "warning", "user_id": "u-9"})
        assert fluent.emit("event", {"message": "cart lost", "level": "error"})


def _send_syslog(stack: StackProcess, syslog_port: int) -> None:
    handler = logging.handlers.SysLogHandler(address=("127.0.0.1", syslog_port))
    logger = _logger("e2e.syslog", handler)
    logger.critical(CEF)
    handler.close()


def _rows(stack: StackProcess) -> dict[str, list[tuple]]:
    rows = query(Lake(stack.data_dir / "lake"), "SELECT service, level, message, user_id FROM logs ORDER BY 3")
    by_service: dict[str, list[tuple]] = {}
    for service, level, message, user_id in rows:
        by_service.setdefault(service, []).append((level, message, user_id))
    return by_service


def test_real_clients_of_every_protocol_reach_the_lake(tmp_path, ray_head):
    forward_port, syslog_port = free_port(), free_port()
    stack = StackProcess(tmp_path / "data", ray_head, extra=["--forward-port", str(forward_port)])
    stack.command[stack.command.index("--syslog-port") + 1] = str(syslog_port)
    stack.start()
    try:
        _send_otel(stack)
        _send_elasticsearch(stack)
        _send_loki(stack)
        _send_splunk(stack)
        _send_forward(forward_port)
        _send_syslog(stack, syslog_port)
        expected = {"otel-checkout": 2, "es-web": 2, "loki-billing": 2, "fwd-cart": 2}

        seen: list = []

        def arrived():
            rows = _rows(stack)
            seen[:] = [rows]
            done = all(len(rows.get(service, ())) >= n for service, n in expected.items())
            cef = rows.get("Deep Security Manager")
            hec = [r for s, rs in rows.items() for r in rs if "order rejected" in (r[1] or "")]
            return rows if done and cef and hec else None

        try:
            rows = stack.wait_for(arrived, timeout=90, what="records of every protocol in the lake")
        except AssertionError as exc:
            raise AssertionError(f"in the lake: {seen}") from exc
        assert set(rows["otel-checkout"]) == {("ERROR", "payment declined", None), ("WARNING", "payment slow", None)}
        assert set(rows["es-web"]) == {("ERROR", "upstream failed", None), ("WARNING", "upstream slow", "u-1")}
        assert set(rows["loki-billing"]) == {("ERROR", "invoice failed", None), ("INFO", "invoice sent", None)}
        assert set(rows["fwd-cart"]) == {("ERROR", "cart lost", None), ("WARNING", "cart emptied", "u-9")}
        # CEF over syslog: the payload's fields, not the syslog header's: product, severity 10, user
        assert rows["Deep Security Manager"] == [("CRITICAL", "User Signed In", "admin")]
        hec = [r for rs in rows.values() for r in rs if "order rejected" in r[1]]
        assert len(hec) == 1 and hec[0][0] == "ERROR", hec
        for protocol in ("otlp", "elasticsearch", "loki", "splunk", "forward", "syslog"):
            assert stack.accepted(protocol) >= 1, protocol
    finally:
        stack.stop()


def _otlp_json(records: list[dict]) -> bytes:
    """The records as one OTLP JSON export, one resource per service (as an OpenTelemetry Collector sends)."""
    severity = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
    by_service: dict[str, list[dict]] = {}
    for record in records:
        fields = {k: v for k, v in record.items() if k not in ("timestamp", "level", "service", "message")}
        at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
        nanos = round(at * 1e6) * 1000
        attributes = [{"key": k, "value": {"doubleValue": v} if isinstance(v, float) else {"stringValue": str(v)}}
                      for k, v in fields.items()]
        by_service.setdefault(record["service"], []).append({
            "timeUnixNano": str(nanos), "severityNumber": severity[record["level"]],
            "severityText": record["level"], "body": {"stringValue": record["message"]}, "attributes": attributes})
    return orjson.dumps({"resourceLogs": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
         "scopeLogs": [{"scope": {"name": "e2e"}, "logRecords": logs}]} for service, logs in by_service.items()]})


def test_the_seed_detectors_fire_on_otlp_records(tmp_path, ray_head):
    stack = StackProcess(tmp_path / "data", ray_head).start()
    try:
        records = incident_records()
        for start in range(0, len(records), 500):
            answer = requests.post(f"{stack.http_url}/v1/logs", data=_otlp_json(records[start:start + 500]),
                                   headers={"Content-Type": "application/json"}, timeout=30)
            assert answer.status_code == 200, answer.text
            assert "partialSuccess" not in answer.json() or not answer.json()["partialSuccess"], answer.text
        wanted = {"error_spike", "slow_response", "suspicious_user", "db_connection_failure", "service_down"}
        stack.wait_for(lambda: wanted <= {a["rule"] for a in stack.outbox() if a["status"] == "firing"},
                       timeout=120, what="the five seed alerts from OTLP records")
        assert stack.accepted("otlp") == len(records)
    finally:
        stack.stop()
