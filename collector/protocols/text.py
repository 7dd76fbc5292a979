"""Raw text: ``POST /v1/logs`` with ``Content-Type: text/plain``, one record per line.

Each line's format is detected (``logwarden.formats``: JSON, logfmt, CEF, LEEF, syslog, access logs,
free text...) and its fields land in the record: time (else the time of receipt), level (else
INFO), service (else the ``service`` query parameter, else ``unknown_service``), message, user,
request id, and the rest as attributes, with ``log_format`` naming the format. Invalid UTF-8 is kept
with replacement characters and ``invalid_utf8: true``. A line longer than the collector's
``max_line_bytes`` is rejected (its first 64 KiB go to the dead-letter store).

The answer is the native API's: ``{"accepted", "rejected", "errors"}``, 200 when anything was
accepted, else 400.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BOM, KEPT_BYTES_OF_LONG_LINE, RawRecord
from logwarden.collector.ingest import IngestResult
from logwarden.collector.protocols.base import HttpProtocol, ProtocolAnswer, ProtocolRequest, register_protocol
from logwarden.collector.protocols.lines import RESERVED, micros_of, parse_line, parsed_fields
from logwarden.collector.protocols.records import (
    NO_SHARED,
    UNKNOWN_SERVICE,
    NativeRecords,
    Schema,
    now_us,
    rfc3339_of_us,
)

TEXT = "text/plain"
DEFAULT_MAX_LINE = 1 << 20
_SERVICE = re.compile(r"^[^\x00-\x1f]{1,128}$")


@register_protocol
class RawText(HttpProtocol):
    """Plain text lines, any format per line."""

    name = "text"
    routes = (("POST", "/v1/logs"),)

    def __init__(self, schema: Schema | None = None, max_line_bytes: int = DEFAULT_MAX_LINE) -> None:
        self.schema = schema or Schema(reserved=RESERVED)
        self.max_line_bytes = max_line_bytes

    def accepts(self, request: ProtocolRequest) -> bool:
        return request.content_type == TEXT

    def decode(self, request: ProtocolRequest) -> list[RawRecord]:
        return self._read(request, self.max_line_bytes).raw_records(bytes)

    def decode_batch(self, request: ProtocolRequest, decoder: BatchDecoder) -> DecodedBatch:
        return self._read(request, decoder.max_line_bytes).batch(decoder, bytes)

    def _read(self, request: ProtocolRequest, max_line: int) -> NativeRecords:
        body = request.body[3:] if request.body.startswith(BOM) else request.body
        service = request.query.get("service") or UNKNOWN_SERVICE
        if not _SERVICE.match(service):
            service = UNKNOWN_SERVICE
        received = now_us()
        records = NativeRecords()
        for line in body.split(b"\n"):
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            if len(line) > max_line:
                records.add_error(
                    f"line of {len(line)} bytes exceeds the {max_line}-byte limit "
                    f"(first {KEPT_BYTES_OF_LONG_LINE} bytes kept)",
                    line[:KEPT_BYTES_OF_LONG_LINE],
                )
                continue
            parsed = parse_line(line)
            micros = micros_of(parsed.timestamp) if parsed.timestamp is not None else received
            try:
                stamp = rfc3339_of_us(micros)
            except (ValueError, OverflowError, OSError):
                records.add_error(f"timestamp out of range: {parsed.timestamp}", line)
                continue
            declared: dict[str, Any] = {
                "timestamp": stamp,
                "level": parsed.level,
                "service": parsed.service or service,
                "message": parsed.message,
            }
            extras: dict[str, Any] = {}
            parsed_fields(parsed, self.schema, declared, extras)
            records.add(declared, extras, NO_SHARED, line, any(isinstance(v, (dict, list)) for v in extras.values()))
        return records

    def answer(self, request: ProtocolRequest, records: list[RawRecord], result: IngestResult) -> ProtocolAnswer:
        if not result.accepted and not result.rejected:
            return self.error(request, 400, "no records in the body")
        return ProtocolAnswer(200 if result.accepted else 400, orjson.dumps(result.to_dict()))

    def error(self, request: ProtocolRequest | None, status: int, message: str) -> ProtocolAnswer:
        body = {"accepted": 0, "rejected": 0, "errors": [{"index": None, "field": "", "error": message}]}
        headers = {"Retry-After": "1"} if status in (429, 503) else {}
        return ProtocolAnswer(status, orjson.dumps(body), headers=headers)
