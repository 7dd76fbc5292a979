"""Forward over HTTP: NDJSON (one record a line) or OTLP JSON logs (``/v1/logs``).

    storage:
      forward:
        - type: http
          url: https://siem.example.com/ingest   # posted to as is (otlp: /v1/logs added when no path is given)
          format: ndjson                         # ndjson | otlp
          token: ${SIEM_TOKEN}                   # optional: "Authorization: Bearer <token>"
          headers: {X-Source: logwarden}         # optional, sent with every request
          verify: true                           # ca_file: a private CA

NDJSON lines are the records, flat: their fields and attributes, ``timestamp`` in RFC 3339. OTLP
groups records by service (resource attribute ``service.name``); each log record has
``timeUnixNano``, ``severityNumber``/``severityText`` (DEBUG 5, INFO 9, WARNING 13, ERROR 17,
CRITICAL 21), the message as a string ``body``, and every other field as an attribute.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pyarrow as pa
import requests

from logwarden.common.yamlconf import ConfigError, check_choice, check_mapping, check_str, describe
from logwarden.storage.forward.base import (
    COMMON_KEYS, Predicate, Retriable, Sink, SinkOptions, check_url, check_verify, flat_rows, http_outcome,
)

TYPE = "http"
FORMATS = ("ndjson", "otlp")
OTLP_SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "otlp": "application/json"}


@dataclass(frozen=True)
class HttpConfig:
    """``storage.forward[i]`` with ``type: http``."""

    options: SinkOptions
    format: str = "ndjson"
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool | str = True

    KEYS = (*COMMON_KEYS, "format", "token", "headers", "verify", "ca_file")

    @classmethod
    def from_dict(cls, section: Any, where: tuple) -> "HttpConfig":
        """The sink's settings; ConfigError with the key path on a bad value."""
        section = check_mapping(section, where, cls.KEYS)
        url = check_url(section.get("url"), (*where, "url"), ("http", "https"))
        form = check_choice(section.get("format", "ndjson"), (*where, "format"), FORMATS)
        if form == "otlp" and urlsplit(url).path in ("", "/"):
            url += "/v1/logs"
        headers = check_mapping(section.get("headers"), (*where, "headers"))
        for name, value in headers.items():
            if not isinstance(value, str):
                raise ConfigError.at((*where, "headers", name), f"expected a string, got {describe(value)}")
        kwargs: dict[str, Any] = {"format": form, "headers": headers, "verify": check_verify(section, where)}
        if section.get("token") is not None:
            kwargs["token"] = check_str(section["token"], (*where, "token"), secret=True)
        return cls(SinkOptions.from_dict(section, where, url), **kwargs)

    def build(self, data_dir: Path, predicate: Predicate | None = None) -> "HttpSink":
        """The sink (not started)."""
        return HttpSink(self, data_dir, predicate)


def _any_value(value: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue``."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": str(k), "value": _any_value(v)} for k, v in value.items()]}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": orjson.dumps(value, default=str).decode()}


def otlp_record(row: dict[str, Any]) -> dict[str, Any]:
    """One OTLP JSON log record of a flat record (its ``service`` goes to the resource)."""
    level = str(row.get("level") or "INFO").upper()
    skip = {"timestamp", "_time_us", "level", "message", "service"}
    return {"timeUnixNano": str(row["_time_us"] * 1000), "severityNumber": OTLP_SEVERITY.get(level, 9),
            "severityText": level, "body": {"stringValue": str(row.get("message") or "")},
            "attributes": [{"key": k, "value": _any_value(v)} for k, v in row.items() if k not in skip]}


def otlp_body(items: list[bytes]) -> bytes:
    """An ``ExportLogsServiceRequest`` in OTLP JSON from items ``{"service", "record"}``, grouped by service."""
    by_service: dict[str, list[Any]] = {}
    for item in items:
        entry = orjson.loads(item)
        by_service.setdefault(entry["service"], []).append(entry["record"])
    return orjson.dumps({"resourceLogs": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
         "scopeLogs": [{"scope": {"name": "logwarden"}, "logRecords": records}]}
        for service, records in by_service.items()]})


class HttpSink(Sink):
    """Posts NDJSON or OTLP JSON bodies."""

    def __init__(self, config: HttpConfig, data_dir: Path, predicate: Predicate | None = None) -> None:
        super().__init__(config.options, data_dir, predicate)
        self.config = config
        self.session = requests.Session()
        self.session.headers.update({**config.headers, "Content-Type": CONTENT_TYPES[config.format]})
        if config.token:
            self.session.headers["Authorization"] = f"Bearer {config.token}"

    def encode(self, table: pa.Table) -> list[bytes]:
        """An NDJSON line per record, or (OTLP) the record with its service, grouped when sent."""
        option = orjson.OPT_NON_STR_KEYS
        if self.config.format == "ndjson":
            return [orjson.dumps({k: v for k, v in row.items() if k != "_time_us"}, default=str, option=option)
                    for row in flat_rows(table)]
        return [orjson.dumps({"service": str(row.get("service") or "unknown_service"), "record": otlp_record(row)},
                             default=str, option=option) for row in flat_rows(table)]

    def send(self, items: list[bytes]) -> None:
        """One POST of the items."""
        body = b"".join(item + b"\n" for item in items) if self.config.format == "ndjson" else otlp_body(items)
        try:
            answer = self.session.post(self.config.options.url, data=body, timeout=self.options.timeout_seconds,
                                       verify=self.config.verify)
        except requests.RequestException as exc:
            raise Retriable(f"{self.config.options.url}: {exc}") from None
        http_outcome(answer.status_code, answer.text)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()
