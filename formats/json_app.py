"""JSON application logs: bunyan, pino, ECS, zap, logstash, journald, GELF, OTLP, rust tracing...

Well-known time/level/message/service keys are mapped onto the normalized record; every
other key stays in ``attributes`` as-is.
"""
from __future__ import annotations

from typing import Any

import orjson

from logwarden.formats import levels, timestamps
from logwarden.formats.common import (MAX_RECORD_BYTES, as_float, as_str, clip, drop, error_record, pick)
from logwarden.formats.record import ParsedRecord

NAME = "json"

TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "t", "date", "datetime", "eventTime",
             "EventTime", "__REALTIME_TIMESTAMP", "instant", "timeUnixNano", "timeMillis",
             "started_at", "EdgeStartTimestamp", "_time", "asctime", "logged_at", "@t")
LEVEL_KEYS = ("level", "log.level", "lvl", "severity", "loglevel", "log_level", "levelname",
              "severityText", "severity_text", "PRIORITY", "@l", "@fields.lvl", "@fields.level",
              "syslog.severity", "severityNumber", "Severity")
MESSAGE_KEYS = ("msg", "message", "MESSAGE", "@message", "@m", "@mt", "fields.message",
                "short_message", "body", "log", "text", "@fields.msg", "@fields.message")
SERVICE_KEYS = ("service", "service.name", "app", "application", "appname", "app_name", "name",
                "SYSLOG_IDENTIFIER", "logger", "logger_name", "log.logger", "target", "component",
                "_SYSTEMD_UNIT", "_COMM", "program", "source")
USER_KEYS = ("user_id", "userId", "user.id", "usr.id", "user", "username", "user.name",
             "userName", "@fields.user")
REQUEST_KEYS = ("request_id", "requestId", "req_id", "reqId", "request.id", "http.request.id",
                "x_request_id", "correlation_id", "correlationId", "trace_id", "traceId",
                "trace.id", "RayID")
ERROR_KEYS = ("error_code", "errorCode", "error.code", "err.code", "err_code")
DURATION_MS_KEYS = ("duration_ms", "durationMs", "elapsed_ms", "latency_ms", "responseTime",
                    "response_time_ms", "took_ms", "time_ms")
STATUS_KEYS = ("status", "statusCode", "status_code", "response.status", "res.statusCode",
               "http.response.status_code", "EdgeResponseStatus", "http.status_code")


def sniff(data: bytes) -> float:
    """Confidence that ``data`` is one JSON application record (full parse as confirmation)."""
    if data[:1] != b"{":
        return 0.0
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return 0.4
    return 0.95 if isinstance(obj, dict) else 0.3


def loads(data: bytes | str | dict[str, Any]) -> dict[str, Any] | str:
    """Decode a JSON object, or return an error string."""
    if isinstance(data, dict):
        return data
    if len(data) > MAX_RECORD_BYTES:
        return f"record too large ({len(data)} bytes)"
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {str(exc).splitlines()[0][:80]}"
    return obj if isinstance(obj, dict) else f"JSON {type(obj).__name__} is not an object"


def parse(data: bytes | str | dict[str, Any]) -> ParsedRecord:
    """Parse one JSON application record; broken JSON becomes a ``text`` record with parse_error."""
    obj = loads(data)
    if isinstance(obj, str):
        return error_record(data, obj)
    obj = dict(obj)
    if "resourceLogs" in obj:
        return _parse_otlp(obj)
    nested = obj.pop("@fields", None)
    if isinstance(nested, dict):
        obj = {**nested, **obj}
    return map_fields(obj, NAME)


def map_fields(obj: dict[str, Any], fmt: str) -> ParsedRecord:
    """Map well-known keys of a flat-ish dict onto a record; the rest become attributes."""
    rec = ParsedRecord(format=fmt, message="")
    tkey, tval = pick(obj, TIME_KEYS)
    rec.timestamp = timestamps.parse_any(tval)
    if tkey == "__REALTIME_TIMESTAMP" and isinstance(tval, str) and tval.isdigit():
        rec.timestamp = timestamps.parse_epoch(int(tval) / 1e6)
    lkey, lval = pick(obj, LEVEL_KEYS)
    level = _level(lkey, lval)
    mkey, mval = pick(obj, MESSAGE_KEYS)
    skey, sval = pick(obj, SERVICE_KEYS)
    ukey, uval = pick(obj, USER_KEYS)
    rkey, rval = pick(obj, REQUEST_KEYS)
    ekey, eval_ = pick(obj, ERROR_KEYS)
    dkey, dval = pick(obj, DURATION_MS_KEYS)
    status = _status(obj)
    if level is None and status is not None:
        level = levels.from_http_status(status)
    rec.level = level or levels.INFO
    rec.message = clip(_message(mval)) if mval is not None else _fallback_message(obj)
    rec.service, rec.user_id = as_str(sval), as_str(uval)
    rec.request_id, rec.error_code = as_str(rval), as_str(eval_)
    rec.duration_ms = as_float(dval)
    used = [tkey, lkey, mkey, skey, ukey, rkey, ekey, dkey]
    for key in used:
        if key and (key != mkey or isinstance(mval, str)):
            drop(obj, key)
    rec.attributes = obj
    return rec


def _level(key: str | None, value: Any) -> str | None:
    """Level from a level field; PRIORITY is syslog severity, severityNumber is OTel."""
    if value is None:
        return None
    if key in ("PRIORITY", "syslog.severity") and str(value).isdigit():
        return levels.from_syslog_severity(int(value))
    if key == "severityNumber" and isinstance(value, int):
        return levels.from_otel(value)
    return levels.from_any(value)


def _status(obj: dict[str, Any]) -> int | None:
    """An HTTP status code from the usual keys, when it looks like one."""
    _, value = pick(obj, STATUS_KEYS)
    try:
        status = int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return status if status is not None and 100 <= status <= 599 else None


def _message(value: Any) -> str:
    """Render the message field (strings as-is, OTLP ``{"stringValue": ...}``, else JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("stringValue"), str):
        return value["stringValue"]
    return orjson.dumps(value, default=str).decode()


_HTTP_METHOD = ("method", "request.method", "ClientRequestMethod", "http.request.method", "req.method")
_HTTP_PATH = ("path", "uri", "url", "request.uri", "request.url", "ClientRequestURI", "url.path",
              "req.url")


def _fallback_message(obj: dict[str, Any]) -> str:
    """No message field: ``METHOD path status`` for HTTP-like records, else compact JSON."""
    _, method = pick(obj, _HTTP_METHOD)
    _, path = pick(obj, _HTTP_PATH)
    if isinstance(method, str) and isinstance(path, str):
        status = _status(obj)
        return f"{method} {path}" + (f" {status}" if status else "")
    return clip(orjson.dumps(obj, default=str).decode())[:512]


def _parse_otlp(obj: dict[str, Any]) -> ParsedRecord:
    """An OTLP/JSON export line: the first log record is mapped, all records kept in attributes."""
    records, resource = _otlp_records(obj)
    if not records:
        return map_fields(obj, NAME)
    first = dict(records[0])
    body = first.pop("body", None)
    rec = ParsedRecord(format=NAME, message=clip(_message(body)))
    rec.timestamp = timestamps.parse_any(first.pop("timeUnixNano", None))
    number, text = first.pop("severityNumber", None), first.pop("severityText", None)
    rec.level = (levels.from_otel(number) if isinstance(number, int) else None) \
        or (levels.from_name(text) if isinstance(text, str) else None) or levels.INFO
    rec.service = as_str(resource.get("service.name"))
    rec.request_id = as_str(first.pop("traceId", None))
    rec.attributes = {"resource": resource, **first, "otlp_record_count": len(records),
                      "otlp_records": records[1:]}
    return rec


def _otlp_records(obj: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Flatten resourceLogs/scopeLogs/logRecords; resource attributes of the first resource."""
    records: list[dict[str, Any]] = []
    resource: dict[str, Any] = {}
    for res in obj.get("resourceLogs") or []:
        if not isinstance(res, dict):
            continue
        attrs = (res.get("resource") or {}).get("attributes") or []
        if not resource:
            resource = {a.get("key"): _message(a.get("value")) for a in attrs if isinstance(a, dict)}
        for scope in res.get("scopeLogs") or []:
            if isinstance(scope, dict):
                records.extend(r for r in scope.get("logRecords") or [] if isinstance(r, dict))
    return records, resource
