"""OTLP/HTTP logs: ``POST /v1/logs`` with an ``ExportLogsServiceRequest`` in protobuf or in OTLP JSON.

The native API serves ``POST /v1/logs`` too; this protocol takes the request when its content type
is ``application/x-protobuf``, or when it is JSON whose top-level object has ``resourceLogs``.

Each log record becomes one record:

- ``service``: the resource attribute ``service.name`` (``unknown_service`` without one, as the SDKs say);
- ``level``: ``severity_number`` (1..24), else ``severity_text`` (normalized), else INFO; the severity as
  sent is kept in ``level_original`` when it differs from the level word (the text, else the number);
- ``message``: a string body as is; a structured body (map, array) as its JSON text, the structure kept
  in the ``body`` attribute; a scalar body as its JSON text; bytes in base64;
- ``timestamp``: ``time_unix_nano``, or ``observed_time_unix_nano`` when 0, or the time of receipt;
- attributes: the record's attributes under their own names (an attribute named like an optional
  declared field, e.g. ``user_id``, fills it), ``trace_id``/``span_id`` in lowercase hex,
  ``trace_flags``, ``event_name``; the scope as ``scope.name``, ``scope.version``, ``scope.<attribute>``;
  the other resource attributes as ``resource.<name>`` (e.g. ``resource.host.name``).

OTLP JSON follows the OTLP specification: lowerCamelCase keys (snake_case accepted), trace and span ids
in hex (base64, as ``MessageToJson`` writes them, accepted by their length), 64-bit integers as
strings or numbers, enums as integers or names.

Hostile input: values nesting past the collector's ``max_depth`` reject their record (a resource or
scope attribute nesting too deep is replaced, its records kept); a body nesting past the protobuf
runtime's or orjson's own limit, a truncated protobuf, or a string that is not UTF-8 (proto3 strings
must be; the OpenTelemetry Collector refuses them too) is a 400.

Speed: a body first goes to the compiled decoder (``_otlp_wire.pyx``, when built): for protobuf it walks
the wire bytes, for JSON the log records orjson parsed, and makes the columns, attributes text and
write-ahead lines of the Python fast path byte for byte; resources and scopes are still converted here,
once per group. It covers scalar values and bodies (strings, integers, booleans, doubles, bytes); it
leaves the body to the Python decoders below (same answers, slower) for structured values or bodies,
anything malformed or not UTF-8, a field sent twice, one attribute name twice in a record, an attribute
named ``attributes.*``, a record over the field limit, OTLP JSON lines, JSON values in unusual forms
(see the module), and whatever the columnar checks doubt.

Answers follow the OTLP/HTTP specification: 200 with an ``ExportLogsServiceResponse`` in the request's
encoding, with ``partial_success`` (``rejected_log_records``, ``error_message``) when records were
rejected, even all of them (they are in the dead-letter store: retrying would not help); 400 with a
``google.rpc.Status`` for a body that cannot be read; 413 for a body over the limit; 429 and 503,
retryable, with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Iterator

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import BOM, BodyError, RawRecord
from logwarden.collector.ingest import IngestResult
from logwarden.collector.protocols.base import HttpProtocol, ProtocolAnswer, ProtocolRequest, register_protocol
from logwarden.collector.protocols.records import (
    UNKNOWN_SERVICE,
    NativeRecords,
    Schema,
    Shared,
    columns_batch,
    now_us,
    rfc3339_of_us,
)
from logwarden.formats.levels import INFO, LEVEL_ORIGINAL, from_otel, normalize

try:
    from logwarden.collector.protocols._otlp_wire import JsonLogs, decode_logs
except ImportError:  # installed without a C compiler: the Python decoder alone
    JsonLogs = decode_logs = None

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_MAX_DEPTH = 32
RETRY_AFTER_SECONDS = "1"
MAX_ERRORS_IN_MESSAGE = 5
#: Names the decoder gives attributes of its own; a record attribute so named is kept as ``attributes.<name>``.
RESERVED = ("trace_id", "span_id", "trace_flags", "event_name", LEVEL_ORIGINAL, "body")
_RESERVED_PREFIXES = ("resource.", "scope.")
_OTLP_JSON_START = re.compile(rb'\A(?:\xef\xbb\xbf)?[ \t\r\n]*\{[ \t\r\n]*"(?:resourceLogs|resource_logs)"')
#: ``SeverityNumber`` names (OTLP JSON may send them) and their numbers.
_SEVERITIES = dict(SeverityNumber.items())
#: The declared fields every record has (an attribute so named never fills them).
_USUAL = frozenset(("timestamp", "level", "service", "message"))
# gRPC status codes of the HTTP statuses this protocol answers (google.rpc.Code)
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 413: 3, 415: 3, 429: 8, 500: 13, 503: 14}


class _TooDeep(Exception):
    """A structured value nests deeper than the collector's limit."""


class _BadRecord(Exception):
    """One log record cannot be read (the others can)."""


def _level(number: int, text: str) -> tuple[str, Any]:
    """The level of a severity number and text, and the severity as sent when it differs (else None)."""
    if 1 <= number <= 24:
        level = from_otel(number)
    else:
        level = (normalize(text) if text else None) or INFO
    if text:
        return level, (None if text == level else text)
    return level, (number if 1 <= number <= 24 else None)


_LEVELS: dict[tuple[int, str], tuple[str, Any]] = {}


def _cached_level(number: int, text: str) -> tuple[str, Any]:
    key = (number, text)
    found = _LEVELS.get(key)
    if found is None:
        found = _level(number, text)
        if len(_LEVELS) < 4096:
            _LEVELS[key] = found
    return found


# protobuf --------------------------------------------------------------------------------------
def _pb_value(value: Any, depth: int, limit: int) -> Any:
    """An ``AnyValue`` as a JSON value (bytes in base64); raises _TooDeep past ``limit`` levels."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if depth >= limit:
        raise _TooDeep()
    if kind == "array_value":
        return [_pb_value(item, depth + 1, limit) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _pb_value(pair.value, depth + 1, limit) for pair in value.kvlist_value.values}
    return None


def _pb_attributes(pairs: Any, limit: int) -> tuple[dict[str, Any], bool]:
    """Key/value pairs as a dict, and whether any value is structured."""
    out: dict[str, Any] = {}
    nested = False
    for pair in pairs:
        value = pair.value
        text = value.string_value
        if text:
            out[pair.key] = text
            continue
        converted = _pb_value(value, 1, limit)
        nested = nested or isinstance(converted, (dict, list))
        out[pair.key] = converted
    return out, nested


#: The value of a resource or scope attribute nesting past the limit (the records are kept).
TOO_DEEP = "[dropped: nests too deep]"


def _lenient(convert: Any, pairs: Any, limit: int) -> dict[str, Any]:
    """Resource or scope attributes: a value nesting too deep is replaced, the others kept."""
    out: dict[str, Any] = {}
    for pair in pairs:
        try:
            out[pair.key] = convert(pair.value, 1, limit)
        except _TooDeep:
            out[pair.key] = TOO_DEEP
    return out


def _pb_resource(resource: Resource, limit: int) -> tuple[str, dict[str, Any]]:
    """The service of a resource and its other attributes as ``resource.<name>`` fields."""
    attributes = _lenient(_pb_value, resource.attributes, limit)
    service = attributes.pop("service.name", None)
    if not isinstance(service, str) or not service:
        if service is not None:
            attributes["service.name"] = service
        service = UNKNOWN_SERVICE
    return service, {f"resource.{key}": value for key, value in attributes.items()}


def _pb_shared(scope: InstrumentationScope, resource_fields: dict[str, Any], limit: int) -> Shared:
    """The attributes a scope's records share: ``scope.*``, then the resource's."""
    fields: dict[str, Any] = {}
    if scope.name:
        fields["scope.name"] = scope.name
    if scope.version:
        fields["scope.version"] = scope.version
    if scope.attributes:
        scope_attributes = _lenient(_pb_value, scope.attributes, limit)
        fields.update((f"scope.{key}", value) for key, value in scope_attributes.items())
    return Shared.of({**fields, **resource_fields})


def _structured(pairs: Any) -> bool:
    return any(pair.value.WhichOneof("value") in ("array_value", "kvlist_value") for pair in pairs)


class _Groups:
    """The resource and scope parts for the compiled decoder, converted by the helpers above (None: the
    Python path decides, e.g. for structured values, whose nesting the protobuf runtime limits over the
    whole request)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def resource(self, data: bytes) -> tuple[str, dict[str, Any]] | None:
        """A serialized ``Resource``'s service and ``resource.*`` fields."""
        try:
            resource = Resource.FromString(data)
        except (DecodeError, RecursionError, ValueError):
            return None
        if _structured(resource.attributes):
            return None
        return _pb_resource(resource, self.limit)

    def shared(self, data: bytes, resource_fields: dict[str, Any]) -> Shared | None:
        """The shared attributes of a serialized ``InstrumentationScope`` and its resource's fields."""
        try:
            scope = InstrumentationScope.FromString(data)
        except (DecodeError, RecursionError, ValueError):
            return None
        if _structured(scope.attributes):
            return None
        shared = _pb_shared(scope, resource_fields, self.limit)
        return None if shared.nested else shared


# JSON ------------------------------------------------------------------------------------------
def _get(obj: dict, camel: str, snake: str, default: Any = None) -> Any:
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake, default)
    return default if value is None else value


_JSON_KINDS = (
    ("stringValue", "string_value"),
    ("intValue", "int_value"),
    ("boolValue", "bool_value"),
    ("doubleValue", "double_value"),
    ("bytesValue", "bytes_value"),
    ("arrayValue", "array_value"),
    ("kvlistValue", "kvlist_value"),
)


def _json_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _BadRecord(f"{what} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 24:
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _BadRecord(f"{what} must be an integer, not {str(value)[:40]!r}")


def _json_value(value: Any, depth: int, limit: int) -> Any:
    """An OTLP JSON ``AnyValue`` as a JSON value; raises _BadRecord or _TooDeep."""
    if not isinstance(value, dict):
        raise _BadRecord("an AnyValue must be an object")
    for camel, snake in _JSON_KINDS:
        item = value.get(camel, value.get(snake))
        if item is None:
            continue
        if camel == "stringValue":
            if not isinstance(item, str):
                raise _BadRecord("stringValue must be a string")
            return item
        if camel == "intValue":
            return _json_int(item, "intValue")
        if camel == "boolValue":
            if not isinstance(item, bool):
                raise _BadRecord("boolValue must be true or false")
            return item
        if camel == "doubleValue":
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                return float(item)
            if item in ("NaN", "Infinity", "-Infinity"):
                return float(item.replace("Infinity", "inf"))
            raise _BadRecord("doubleValue must be a number")
        if camel == "bytesValue":
            if not isinstance(item, str):
                raise _BadRecord("bytesValue must be base64 text")
            return item
        if depth >= limit:
            raise _TooDeep()
        values = item.get("values", []) if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise _BadRecord(f"{camel}.values must be a list")
        if camel == "arrayValue":
            return [_json_value(entry, depth + 1, limit) for entry in values]
        return _json_pairs(values, depth + 1, limit)
    return None


def _json_pairs(pairs: Any, depth: int, limit: int) -> dict[str, Any]:
    if not isinstance(pairs, list):
        raise _BadRecord("attributes must be a list of key/value objects")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise _BadRecord("an attribute needs a string key")
        out[pair["key"]] = _json_value(pair.get("value", {}), depth, limit)
    return out


def _json_shared(pairs: Any, limit: int) -> dict[str, Any]:
    """Resource or scope attributes in OTLP JSON (a value nesting too deep replaced; _BadRecord if malformed)."""
    if not isinstance(pairs, list):
        raise _BadRecord("attributes must be a list of key/value objects")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise _BadRecord("an attribute needs a string key")
        try:
            out[pair["key"]] = _json_value(pair.get("value", {}), 1, limit)
        except _TooDeep:
            out[pair["key"]] = TOO_DEEP
    return out


def _json_id(value: Any, size: int) -> str | None:
    """A trace or span id as lowercase hex: hex as the OTLP spec writes it, base64 as proto3 JSON does."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise _BadRecord("traceId and spanId must be strings")
    if len(value) == 2 * size:
        try:
            return bytes.fromhex(value).hex()
        except ValueError:
            pass
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == size:
        return decoded.hex()
    return value  # neither: kept as sent


def _json_severity(value: Any) -> int:
    if isinstance(value, str) and not value.isdigit():
        try:
            return SeverityNumber.Value(value)
        except ValueError:
            return 0
    return _json_int(value, "severityNumber") if value is not None else 0


# the protocol ----------------------------------------------------------------------------------
@register_protocol
class OtlpLogs(HttpProtocol):
    """OTLP/HTTP logs, protobuf and JSON."""

    name = "otlp"
    routes = (("POST", "/v1/logs"),)

    def __init__(self, schema: Schema | None = None, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.schema = schema or Schema(reserved=RESERVED)
        self.max_depth = max_depth
        self._plain_keys: set[str] = set()  # attribute names seen that clash with nothing
        self._kinds: dict[str, int] | None = None

    def accepts(self, request: ProtocolRequest) -> bool:
        if request.content_type == PROTOBUF:
            return True
        if request.content_type not in (JSON, "", "text/json"):
            return False
        if _OTLP_JSON_START.match(request.body):
            return True
        if b'"resourceLogs"' not in request.body and b'"resource_logs"' not in request.body:
            return False
        try:  # the key is not the first one: read the whole document
            document = orjson.loads(request.body[3:] if request.body.startswith(BOM) else request.body)
        except orjson.JSONDecodeError:
            return False
        return isinstance(document, dict) and ("resourceLogs" in document or "resource_logs" in document)

    # decoding ------------------------------------------------------------------------------------
    def decode(self, request: ProtocolRequest) -> list[RawRecord]:
        records, raw_of = self._read(request, self.max_depth)
        return records.raw_records(raw_of)

    def decode_batch(self, request: ProtocolRequest, decoder: BatchDecoder) -> DecodedBatch:
        if decode_logs is not None and decoder.columnar is not None:
            if request.content_type == PROTOBUF:
                batch = self._compiled_batch(request.body, decoder)
            else:
                batch = self._compiled_json(request.body, decoder)
            if batch is not None:
                return batch
        records, raw_of = self._read(request, decoder.validator.limits.max_depth)
        return records.batch(decoder, raw_of)

    def _compiled_batch(self, body: bytes, decoder: BatchDecoder) -> DecodedBatch | None:
        """The batch of a protobuf body made by the compiled decoder, or None (the Python path decides)."""
        limits = decoder.validator.limits
        groups = _Groups(limits.max_depth + 2)
        decoded = decode_logs(
            bytes(body), now_us(), groups.resource, groups.shared, _cached_level, self._fill_kinds(), limits.max_fields
        )
        if decoded is None:
            return None
        count, columns, attributes, payload = decoded
        return columns_batch(decoder, count, columns, attributes, payload)

    def _compiled_json(self, body: bytes, decoder: BatchDecoder) -> DecodedBatch | None:
        """The batch of an OTLP JSON body, its records made by the compiled decoder, or None (the Python path
        decides: JSON lines, anything malformed or unusual)."""
        try:
            document = orjson.loads(body[3:] if body.startswith(BOM) else body)
        except orjson.JSONDecodeError:
            return None
        resource_logs = _get(document, "resourceLogs", "resource_logs") if isinstance(document, dict) else None
        if not isinstance(resource_logs, list):
            return None
        limits = decoder.validator.limits
        logs = JsonLogs(now_us(), _cached_level, self._fill_kinds(), limits.max_fields, 2 * len(body))
        try:
            for entry in resource_logs:
                for service, shared, log_records in self._json_groups(entry, limits.max_depth + 2):
                    if shared.nested or not logs.add_scope(service, shared, log_records, _SEVERITIES):
                        return None
        except BodyError:
            return None
        decoded = logs.columns()
        return None if decoded is None else columns_batch(decoder, *decoded)

    def _fill_kinds(self) -> dict[str, int]:
        """The reserved names, each with how an attribute so named may fill a declared field (the compiled
        decoder's codes: 0 it may not, 1 a string, 2 a number, 3 an integer)."""
        if self._kinds is None:
            codes = {"string": 1, "number": 2, "integer": 3}
            fillable = self.schema.fillable
            self._kinds = {
                name: 0 if name in _USUAL else codes.get(fillable.get(name) or "", 0) for name in self.schema.reserved
            }
        return self._kinds

    def _read(self, request: ProtocolRequest, max_depth: int) -> tuple[NativeRecords, Any]:
        # values nesting past max_depth + 1 levels are refused while converting (the validator
        # decides exactly below that), which also bounds the recursion
        limit = max_depth + 2
        if request.content_type == PROTOBUF:
            return self._read_protobuf(request.body, limit), _serialized
        return self._read_json(request.body, limit), orjson.dumps

    def _read_protobuf(self, body: bytes, limit: int) -> NativeRecords:
        try:
            message = ExportLogsServiceRequest.FromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise BodyError(f"not an OTLP ExportLogsServiceRequest: {exc}") from None
        records = NativeRecords()
        received = now_us()
        for resource_logs in message.resource_logs:
            service, resource_fields = _pb_resource(resource_logs.resource, limit)
            for scope_logs in resource_logs.scope_logs:
                shared = _pb_shared(scope_logs.scope, resource_fields, limit)
                for log_record in scope_logs.log_records:
                    try:
                        self._add_pb(records, log_record, service, shared, received, limit)
                    except _TooDeep:
                        records.add_error(f"a value nests deeper than {limit - 2} levels", log_record)
                    except (ValueError, OverflowError) as exc:
                        records.add_error(f"cannot read the log record: {exc}", log_record)
        return records

    def _add_pb(
        self, records: NativeRecords, log_record: Any, service: str, shared: Shared, received: int, limit: int
    ) -> None:
        nanos = log_record.time_unix_nano or log_record.observed_time_unix_nano
        micros = nanos // 1000 if nanos else received
        level, original = _cached_level(log_record.severity_number, log_record.severity_text)
        body = log_record.body
        message = body.string_value
        structured = None
        nested = False
        if not message and body.WhichOneof("value") not in (None, "string_value"):
            structured = _pb_value(body, 1, limit)
            message = orjson.dumps(structured).decode() if not isinstance(structured, str) else structured
            nested = isinstance(structured, (dict, list))
        declared = {"timestamp": rfc3339_of_us(micros), "level": level, "service": service, "message": message}
        extras: dict[str, Any] = {}
        if log_record.attributes:
            attributes, nested_attributes = _pb_attributes(log_record.attributes, limit)
            nested = nested or nested_attributes
            self._place(attributes, declared, extras)
        if log_record.trace_id:
            extras["trace_id"] = log_record.trace_id.hex()
        if log_record.span_id:
            extras["span_id"] = log_record.span_id.hex()
        if log_record.flags:
            extras["trace_flags"] = log_record.flags
        if log_record.event_name:
            extras["event_name"] = log_record.event_name
        if original is not None:
            extras[LEVEL_ORIGINAL] = original
        if nested and structured is not None and not isinstance(structured, str):
            extras["body"] = structured
        records.add(declared, extras, shared, log_record, nested)

    def _place(self, attributes: dict[str, Any], declared: dict[str, Any], extras: dict[str, Any]) -> None:
        plain = self._plain_keys
        for key, value in attributes.items():
            if key in plain:
                extras[key] = value
            elif key in self.schema.reserved or key.startswith(_RESERVED_PREFIXES):
                self.schema.place(key, value, declared, extras, frozenset((key,)))
            else:
                if len(plain) < 10_000:
                    plain.add(key)
                extras[key] = value

    def _read_json(self, body: bytes, limit: int) -> NativeRecords:
        text = body[3:] if body.startswith(BOM) else body
        try:
            documents = [orjson.loads(text)]
        except orjson.JSONDecodeError as exc:
            # OTLP JSON lines (one export request per line, as file exporters write them)
            lines = [line for line in text.split(b"\n") if line.strip()]
            if len(lines) < 2:
                raise BodyError(f"invalid OTLP JSON body: {exc}") from None
            try:
                documents = [orjson.loads(line) for line in lines]
            except orjson.JSONDecodeError:
                raise BodyError(f"invalid OTLP JSON body: {exc}") from None
        records = NativeRecords()
        received = now_us()
        for document in documents:
            resource_logs = _get(document, "resourceLogs", "resource_logs") if isinstance(document, dict) else None
            if not isinstance(resource_logs, list):
                raise BodyError("an OTLP JSON body is an object with a resourceLogs list")
            for entry in resource_logs:
                self._read_json_resource(records, entry, received, limit)
        return records

    def _read_json_resource(self, records: NativeRecords, entry: Any, received: int, limit: int) -> None:
        for service, shared, log_records in self._json_groups(entry, limit):
            for log_record in log_records:
                try:
                    self._add_json(records, log_record, service, shared, received, limit)
                except _TooDeep:
                    records.add_error(f"a value nests deeper than {limit - 2} levels", log_record)
                except (_BadRecord, ValueError, OverflowError, TypeError, AttributeError) as exc:
                    records.add_error(f"cannot read the log record: {exc}", log_record)

    def _json_groups(self, entry: Any, limit: int) -> Iterator[tuple[str, Shared, list]]:
        """Each scope of one ``resourceLogs`` entry: its service, the attributes its records share and its
        log records (BodyError when the entry is malformed)."""
        if not isinstance(entry, dict):
            raise BodyError("each resourceLogs entry must be an object")
        resource = entry.get("resource") or {}
        try:
            attributes = _json_shared(resource.get("attributes") or [] if isinstance(resource, dict) else [], limit)
        except _BadRecord as exc:
            raise BodyError(f"resource: {exc}") from None
        service = attributes.pop("service.name", None)
        if not isinstance(service, str) or not service:
            if service is not None:
                attributes["service.name"] = service
            service = UNKNOWN_SERVICE
        resource_fields = {f"resource.{key}": value for key, value in attributes.items()}
        scope_logs_list = _get(entry, "scopeLogs", "scope_logs", [])
        if not isinstance(scope_logs_list, list):
            raise BodyError("scopeLogs must be a list")
        for scope_logs in scope_logs_list:
            if not isinstance(scope_logs, dict):
                raise BodyError("each scopeLogs entry must be an object")
            scope = scope_logs.get("scope") or {}
            fields: dict[str, Any] = {}
            if isinstance(scope, dict):
                for key in ("name", "version"):
                    if isinstance(scope.get(key), str) and scope[key]:
                        fields[f"scope.{key}"] = scope[key]
                try:
                    scope_attributes = _json_shared(scope.get("attributes") or [], limit)
                except _BadRecord as exc:
                    raise BodyError(f"scope: {exc}") from None
                fields.update((f"scope.{key}", value) for key, value in scope_attributes.items())
            shared = Shared.of({**fields, **resource_fields})
            log_records = _get(scope_logs, "logRecords", "log_records", [])
            if not isinstance(log_records, list):
                raise BodyError("logRecords must be a list")
            yield service, shared, log_records

    def _add_json(
        self, records: NativeRecords, log_record: Any, service: str, shared: Shared, received: int, limit: int
    ) -> None:
        if not isinstance(log_record, dict):
            raise _BadRecord("a log record must be an object")
        nanos = _json_int(_get(log_record, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano")
        if not nanos:
            nanos = _json_int(_get(log_record, "observedTimeUnixNano", "observed_time_unix_nano", 0), "observedTime")
        if nanos < 0:
            raise _BadRecord("timeUnixNano must not be negative")
        micros = nanos // 1000 if nanos else received
        text = _get(log_record, "severityText", "severity_text", "")
        if not isinstance(text, str):
            raise _BadRecord("severityText must be a string")
        level, original = _cached_level(_json_severity(_get(log_record, "severityNumber", "severity_number")), text)
        body = log_record.get("body")
        structured = _json_value(body, 1, limit) if body is not None else None
        nested = isinstance(structured, (dict, list))
        if isinstance(structured, str):
            message = structured
        elif structured is None:
            message = ""
        else:
            message = orjson.dumps(structured).decode()
        declared = {"timestamp": rfc3339_of_us(micros), "level": level, "service": service, "message": message}
        extras: dict[str, Any] = {}
        attributes = log_record.get("attributes")
        if attributes:
            converted = _json_pairs(attributes, 1, limit)
            nested = nested or any(isinstance(v, (dict, list)) for v in converted.values())
            self._place(converted, declared, extras)
        trace_id = _json_id(_get(log_record, "traceId", "trace_id"), 16)
        if trace_id:
            extras["trace_id"] = trace_id
        span_id = _json_id(_get(log_record, "spanId", "span_id"), 8)
        if span_id:
            extras["span_id"] = span_id
        flags = log_record.get("flags")
        if flags:
            extras["trace_flags"] = _json_int(flags, "flags")
        event_name = _get(log_record, "eventName", "event_name")
        if isinstance(event_name, str) and event_name:
            extras["event_name"] = event_name
        if original is not None:
            extras[LEVEL_ORIGINAL] = original
        if nested and isinstance(structured, (dict, list)):
            extras["body"] = structured
        records.add(declared, extras, shared, log_record, nested)

    # answers -------------------------------------------------------------------------------------
    def answer(self, request: ProtocolRequest, records: list[RawRecord], result: IngestResult) -> ProtocolAnswer:
        rejected, message = result.rejected, ""
        if rejected:
            shown = "; ".join(
                f"log record {error['index']}: {error['field'] + ': ' if error['field'] else ''}{error['error']}"
                for error in result.errors[:MAX_ERRORS_IN_MESSAGE]
            )
            message = (
                f"{rejected} of {result.accepted + rejected} log records rejected (kept in the dead-letter "
                f"store): {shown}"
            )
        if _is_json(request):
            body = {"partialSuccess": {"rejectedLogRecords": str(rejected), "errorMessage": message}} if rejected else {}
            return ProtocolAnswer(200, orjson.dumps(body), JSON)
        response = ExportLogsServiceResponse()
        if rejected:
            response.partial_success.CopyFrom(
                ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
            )
        return ProtocolAnswer(200, response.SerializeToString(), PROTOBUF)

    def error(self, request: ProtocolRequest | None, status: int, message: str) -> ProtocolAnswer:
        code = _GRPC_CODES.get(status, 2)
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if status in (429, 502, 503, 504) else {}
        if request is not None and _is_json(request):
            return ProtocolAnswer(status, orjson.dumps({"code": code, "message": message}), JSON, headers)
        return ProtocolAnswer(status, encode_status(code, message), PROTOBUF, headers)


def _is_json(request: ProtocolRequest | None) -> bool:
    return request is not None and request.content_type != PROTOBUF


def _serialized(log_record: Any) -> bytes:
    """The original bytes of one protobuf log record (what the dead-letter store keeps)."""
    return log_record.SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_status(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` message (code = 1, message = 2) in protobuf."""
    text = message.encode("utf-8", "replace")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
