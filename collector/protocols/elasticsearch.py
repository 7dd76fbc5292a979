"""Elasticsearch's bulk API, so that Filebeat, Logstash, Fluent Bit's and Vector's Elasticsearch outputs
and the official clients' bulk helpers can ship here.

Routes: ``POST|PUT /_bulk`` and ``/{index}/_bulk`` (NDJSON action/document pairs), and what the
shippers probe before they send: ``GET|HEAD /`` (a version document of an 8.x cluster), ``GET
/_license`` (Logstash) and ``GET /_cluster/health`` (Vector's health check). Every answer carries
``X-Elastic-Product: Elasticsearch``, which the official clients check.

Actions: ``index`` and ``create`` carry a log record; ``delete`` and ``update`` are answered per
item with an error (and dead-lettered: a log is not edited). A malformed action line refuses the
whole request (400), as Elasticsearch does; a document that is not a JSON object, or a record the
collector refuses, is answered per item (``status`` 400 with ``error.type`` and ``reason``), the
other items being kept. The answer is Elasticsearch's: ``{"took", "errors", "items"}``.

ECS fields are mapped onto the record: ``@timestamp`` -> ``timestamp`` (epoch milliseconds as
numbers; the time of receipt when absent), ``log.level`` -> ``level`` (INFO when absent),
``service.name`` -> ``service`` (else a ``service`` text, else the index name), ``message``
(else ``event.original``), ``user.id``/``user.name`` -> ``user_id``, ``trace.id`` ->
``request_id``, ``error.code`` -> ``error_code``, ``event.duration`` (nanoseconds) ->
``duration_ms``. Dotted keys and nested objects are both read. Every other field is kept as an
attribute, as sent; a field named like a record field that the mapping did not use is kept as
``<name>_original``.

The fast path (``decode_batch``) is compiled (``_esbulk.pyx``): when every item of the body is a
``create``/``index`` pair whose document the compiled scanner vouches for, the documents are read
straight into the declared columns, the attributes text and the NDJSON lines, exactly what
``ecs_record`` and ``orjson`` make of them (same table, same payload bytes, same attribute order),
then validated column by column. Any other body (an unknown or ``delete``/``update`` action, a
malformed pair, a document that is not a JSON object, duplicate keys, a mapped field the mapping
would convert, a record the batch validation would check on its own...) takes the Python decoder,
which also answers every error case. Without the compiled module, the Python decoder runs always.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from logwarden.collector.decoding import BOM, BodyError, RawRecord
from logwarden.collector.ingest import IngestResult
from logwarden.collector.mapping import (
    MAX_MESSAGE, as_text, duration_ms, message_text, now_rfc3339, service_text, timestamp_text,
)
from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.protocols.base import HttpProtocol, ProtocolAnswer, ProtocolRequest, register_protocol
from logwarden.collector.protocols.peritem import decode_items_batch, items_of
from logwarden.collector.protocols.records import columns_batch
from logwarden.common.records import load_log_schema

try:
    from logwarden.collector.protocols._esbulk import bulk_documents
except ImportError:  # built without a C compiler: the Python decoder does it all
    bulk_documents = None

#: The version this endpoint reports (an 8.x cluster: the clients and Beats of 8.x accept it).
VERSION = "8.19.0"
LUCENE_VERSION = "9.12.2"
PRODUCT_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
RECORD_ACTIONS = ("index", "create")
OTHER_ACTIONS = ("delete", "update")
#: Elasticsearch's error types for a refused request, by status.
ERROR_TYPES = {
    400: "illegal_argument_exception",
    401: "security_exception",
    403: "security_exception",
    408: "timeout_exception",
    413: "content_too_long_exception",
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
}
#: The record fields the schema declares (a document field of the same name is kept as ``<name>_original``).
DECLARED = tuple(load_log_schema().get("properties", {}))
_ACTION_CACHE = 256  # distinct action lines remembered per request (shippers repeat one action line)
_FAST_ITEMS = "_logwarden_bulk_items"  # where the compiled fast path keeps the items for the answer
_SHARDS = b'"_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":'


@dataclass(frozen=True)
class FastItems:
    """The items of a body the compiled fast path decoded: ``(op, index, id)`` each (``id`` None when
    generated: ``<prefix><number in hex>``), for the answer."""

    items: list[tuple[str, str, str | None]]
    id_prefix: str
    started: float

    def bulk_items(self) -> list["BulkItem"]:
        """The items as :class:`BulkItem` objects (what the per-item answer reads)."""
        out = []
        for number, (op, es_index, es_id) in enumerate(self.items):
            out.append(BulkItem(number, b"", op=op, es_index=es_index,
                                es_id=f"{self.id_prefix}{number:x}" if es_id is None else es_id))
        if out:
            out[0].started = self.started
        return out

    def created(self) -> bytes:
        """The ``items`` of the answer when every item was created, as ``orjson`` writes them."""
        heads: dict[tuple[str, str], bytes] = {}
        prefix = self.id_prefix
        parts = []
        for number, (op, es_index, es_id) in enumerate(self.items):
            head = heads.get((op, es_index))
            if head is None:
                head = heads[(op, es_index)] = b'{"' + op.encode() + b'":{"_index":' + orjson.dumps(es_index)
            text = f'"{prefix}{number:x}"'.encode() if es_id is None else orjson.dumps(es_id)
            parts.append(b"%b,\"_id\":%b,%b%d,\"_primary_term\":1,\"status\":201}}" % (head, text, _SHARDS, number))
        return b",".join(parts)


@dataclass
class BulkItem(RawRecord):
    """One bulk item: a record (``index``/``create``) or a refused action, with what the answer names."""

    op: str = "index"
    es_index: str | None = None
    es_id: str | None = None
    started: float | None = None  # on the first item: when decoding began (the answer's ``took``)
    attributes_text: str | None = None  # the JSON text of the fields the schema does not declare


def _pop(doc: dict[str, Any], parent: str, child: str, dotted: bool) -> Any:
    """Remove and return ``parent.child`` (a nested object's member, or the dotted key when the document
    has dotted keys); the parent goes when it is left empty. None when absent."""
    nested = doc.get(parent)
    if nested.__class__ is dict and child in nested:
        value = nested.pop(child)
        if not nested:
            del doc[parent]
        return value
    if dotted:
        return doc.pop(f"{parent}.{child}", None)
    return None


def _pop_text(doc: dict[str, Any], parent: str, child: str, dotted: bool) -> str | None:
    """``parent.child`` as text, removed from ``doc``; a value that is no text stays (as a dotted key)."""
    value = _pop(doc, parent, child, dotted)
    if value is None or value.__class__ is str:
        return value
    text = as_text(value)
    if text is None:
        doc[f"{parent}.{child}"] = value
    return text


def ecs_record(doc: dict[str, Any], index: str, received: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The declared fields and the attributes of one ECS document (``doc`` is consumed: what the mapping
    does not use is the attributes)."""
    dotted = False
    for key in doc:
        if "." in key:
            dotted = True
            break
    stamp = doc.pop("@timestamp", None)
    if stamp is None:
        stamp = doc.pop("timestamp", None)
    level = _pop(doc, "log", "level", dotted)
    if level is None:
        level = doc.pop("level", None)
    service = _pop_text(doc, "service", "name", dotted)
    if not service and doc.get("service").__class__ is str:
        service = doc.pop("service")
    user = _pop_text(doc, "user", "id", dotted) or _pop_text(doc, "user", "name", dotted)
    if user is None and doc.get("user_id").__class__ is str:
        user = doc.pop("user_id")
    request = _pop_text(doc, "trace", "id", dotted)
    if request is None and doc.get("request_id").__class__ is str:
        request = doc.pop("request_id")
    error = _pop_text(doc, "error", "code", dotted)
    if error is None and doc.get("error_code").__class__ is str:
        error = doc.pop("error_code")
    nanoseconds = _pop(doc, "event", "duration", dotted)
    duration = duration_ms(nanoseconds, 1e-6) if nanoseconds is not None else None
    if nanoseconds is not None and duration is None:
        doc["event.duration"] = nanoseconds
    if duration is None and "duration_ms" in doc:
        duration = duration_ms(doc["duration_ms"])
        if duration is not None:
            del doc["duration_ms"]
    message = doc.pop("message", None)
    if message is None:
        message = _pop(doc, "event", "original", dotted)
    record: dict[str, Any] = {
        "timestamp": received if stamp is None else timestamp_text(stamp, "ms"),
        "level": "INFO" if level is None else level,
        "service": service if service else service_text(index),
        "message": message if message.__class__ is str and len(message) <= MAX_MESSAGE else "",
    }
    extras: dict[str, Any] = {}
    if record["message"] is not message and message is not None:
        record["message"] = message_text(extras, message)
    if user is not None:
        record["user_id"] = user
    if request is not None:
        record["request_id"] = request
    if error is not None:
        record["error_code"] = error
    if duration is not None:
        record["duration_ms"] = duration
    nested = doc.get("service")
    if nested.__class__ is dict:  # the rest of ECS's service.* (version, environment...) as dotted keys
        del doc["service"]
        for key, value in nested.items():
            doc[f"service.{key}"] = value
    for name in DECLARED:  # a record field the mapping did not use stays, renamed
        if name in doc:
            doc[f"{name}_original"] = doc.pop(name)
    if extras:
        extras.update(doc)
        return record, extras
    return record, doc


def _action_of(line: bytes, number: int) -> tuple[str, dict]:
    """An action line read as the Python decoder reads it (BodyError when malformed)."""
    return ElasticsearchBulk._action(line, number, {})


@register_protocol
class ElasticsearchBulk(HttpProtocol):
    """``POST /_bulk``: Elasticsearch's bulk API for log shippers."""

    name = "elasticsearch"
    routes = (
        ("POST", "/_bulk"),
        ("PUT", "/_bulk"),
        ("POST", "/{index}/_bulk"),
        ("PUT", "/{index}/_bulk"),
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/_license"),
        ("GET", "/_cluster/health"),
    )

    def __init__(self, cluster_name: str = "logwarden", version: str = VERSION) -> None:
        self.cluster_name = cluster_name
        self.version = version
        self.cluster_uuid = secrets.token_urlsafe(16)[:22]

    def decode(self, request: ProtocolRequest) -> list[RawRecord]:
        """The bulk items of the body, in order (no records for the probing routes)."""
        if not request.path.endswith("/_bulk"):
            return []
        return self.items(request.body, request.match_info.get("index"))

    def decode_batch(self, request: ProtocolRequest, decoder: BatchDecoder) -> DecodedBatch:
        """The items validated as one batch: compiled when the body allows, else ``BatchDecoder.mapped``
        on the Python decoder's items; the items are kept for the per-item answer."""
        if bulk_documents is not None and decoder.columnar is not None and request.path.endswith("/_bulk"):
            batch = self.compiled_batch(request, decoder)
            if batch is not None:
                return batch
        return decode_items_batch(self, request, decoder)

    def compiled_batch(self, request: ProtocolRequest, decoder: BatchDecoder) -> DecodedBatch | None:
        """The batch of the compiled decoder, or None when the body needs the Python decoder."""
        started = time.monotonic()
        body = request.body
        if body.startswith(BOM):
            body = body[3:]
        limits = decoder.validator.limits
        decoded = bulk_documents(
            body, request.match_info.get("index"), now_rfc3339(), limits.max_fields, limits.max_depth, _action_of
        )
        if decoded is None:
            return None
        columns, attributes, payload, items = decoded
        batch = columns_batch(decoder, len(items), columns, attributes, payload, merge="absent")
        if batch is not None:
            fast = FastItems(items, secrets.token_urlsafe(9), started)
            object.__setattr__(request, _FAST_ITEMS, fast)  # the request is frozen; the answer reads them
        return batch

    def items(self, body: bytes, default_index: str | None) -> list[RawRecord]:
        """The items of an NDJSON bulk body; BodyError when an action line is malformed."""
        started = time.monotonic()
        if body.startswith(BOM):
            body = body[3:]
        lines = body.split(b"\n")
        received = now_rfc3339()
        id_prefix = secrets.token_urlsafe(9)
        actions: dict[bytes, tuple[str, dict]] = {}
        items: list[RawRecord] = []
        position = 0
        count = len(lines)
        while position < count:
            line = lines[position]
            position += 1
            if not line or line.isspace():
                continue
            op, meta = self._action(line, position, actions)
            es_index = meta.get("_index") or default_index
            es_id = meta.get("_id")
            if es_index is not None and es_index.__class__ is not str:
                raise BodyError(f"action line {position}: _index must be a string")
            number = len(items)
            if es_id is not None:
                es_id = str(es_id)
            elif op in RECORD_ACTIONS:
                es_id = f"{id_prefix}{number:x}"
            if op == "delete":
                items.append(BulkItem(number, line, op=op, es_index=es_index, es_id=es_id,
                                      error="action delete is not supported: logwarden keeps logs as sent"))
                continue
            if position >= count or not lines[position]:
                raise BodyError(f"action line {position} ({op}) is not followed by a document line; "
                                "the bulk request must be terminated by a newline")
            source = lines[position]
            position += 1
            if op == "update":
                items.append(BulkItem(number, line + b"\n" + source, op=op, es_index=es_index, es_id=es_id,
                                      error="action update is not supported: logwarden keeps logs as sent"))
                continue
            if not es_index:
                items.append(BulkItem(number, source, op=op, es_index=es_index, es_id=es_id,
                                      error="index is missing"))
                continue
            try:
                doc = orjson.loads(source)
            except orjson.JSONDecodeError as exc:
                items.append(BulkItem(number, source, op=op, es_index=es_index, es_id=es_id,
                                      error=f"document is not JSON: {exc}"))
                continue
            if doc.__class__ is not dict:
                items.append(BulkItem(number, source, op=op, es_index=es_index, es_id=es_id,
                                      error=f"a document must be a JSON object, not {type(doc).__name__}"))
                continue
            record, extras = ecs_record(doc, es_index, received)
            try:
                head = orjson.dumps(record)
                attributes = orjson.dumps(extras) if extras else None
            except TypeError as exc:  # e.g. nesting deeper than JSON writers go
                items.append(BulkItem(number, source, op=op, es_index=es_index, es_id=es_id,
                                      error=f"document cannot be kept: {exc}"))
                continue
            if attributes is None:
                items.append(BulkItem(number, source, record, line=head, op=op, es_index=es_index, es_id=es_id))
                continue
            record.update(extras)
            items.append(BulkItem(number, source, record, line=head[:-1] + b"," + attributes[1:], op=op,
                                  es_index=es_index, es_id=es_id, attributes_text=attributes.decode()))
        if not items:
            raise BodyError("request body is required: no bulk items")
        items[0].started = started
        return items

    @staticmethod
    def _action(line: bytes, number: int, cache: dict[bytes, tuple[str, dict]]) -> tuple[str, dict]:
        known = cache.get(line)
        if known is not None:
            return known
        try:
            action = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise BodyError(f"Malformed action/metadata line [{number}], expected a JSON object") from None
        if action.__class__ is not dict or len(action) != 1:
            raise BodyError(f"Malformed action/metadata line [{number}], expected one action such as "
                            '{"create":{}}')
        op, meta = next(iter(action.items()))
        if op not in RECORD_ACTIONS and op not in OTHER_ACTIONS:
            raise BodyError(f"Malformed action/metadata line [{number}], unknown action [{op[:40]}]")
        if meta.__class__ is not dict:
            raise BodyError(f"Malformed action/metadata line [{number}], the metadata of [{op}] must be an object")
        if len(cache) < _ACTION_CACHE:
            cache[line] = (op, meta)
        return op, meta

    def answer(self, request: ProtocolRequest, records: list[RawRecord], result: IngestResult) -> ProtocolAnswer:
        """Elasticsearch's bulk answer, one item per action; the probing routes' documents."""
        path = request.path
        if not path.endswith("/_bulk"):
            return self._probe(request)
        fast = getattr(request, _FAST_ITEMS, None) if not records else None
        if fast is not None:
            if not result.rejected_indexes:
                took = int((time.monotonic() - fast.started) * 1000)
                body = b'{"took":%d,"errors":false,"items":[%b]}' % (took, fast.created())
                return ProtocolAnswer(200, body, headers=dict(PRODUCT_HEADERS))
            records = fast.bulk_items()
        records = items_of(request, records)
        started = getattr(records[0], "started", None) if records else None
        rejected = set(result.rejected_indexes)
        reasons = {error["index"]: error for error in result.errors}
        items = []
        for record in records:
            op = getattr(record, "op", "index")
            es_index = getattr(record, "es_index", None)
            es_id = getattr(record, "es_id", None)
            if record.index in rejected:
                items.append({op: self._item_error(record, reasons.get(record.index))})
            else:
                items.append({op: {
                    "_index": es_index, "_id": es_id, "_version": 1, "result": "created",
                    "_shards": {"total": 1, "successful": 1, "failed": 0},
                    "_seq_no": record.index, "_primary_term": 1, "status": 201,
                }})
        took = 0 if started is None else int((time.monotonic() - started) * 1000)
        body = {"took": took, "errors": bool(rejected), "items": items}
        return ProtocolAnswer(200, orjson.dumps(body), headers=dict(PRODUCT_HEADERS))

    @staticmethod
    def _item_error(record: RawRecord, reason: dict | None) -> dict[str, Any]:
        op = getattr(record, "op", "index")
        if op in OTHER_ACTIONS:
            error_type, status = "action_request_validation_exception", 400
        elif record.error == "index is missing":
            error_type, status = "action_request_validation_exception", 400
        else:
            error_type, status = "document_parsing_exception", 400
        if reason is not None:
            text = f"[{reason['field']}] {reason['error']}" if reason.get("field") else reason["error"]
        else:
            text = record.error or "refused by the collector's validation (kept in its dead-letter store)"
        return {
            "_index": getattr(record, "es_index", None),
            "_id": getattr(record, "es_id", None),
            "status": status,
            "error": {"type": error_type, "reason": text},
        }

    def _probe(self, request: ProtocolRequest) -> ProtocolAnswer:
        path = request.path
        if path == "/_license":
            body: dict[str, Any] = {"license": {
                "status": "active", "uid": self.cluster_uuid, "type": "basic", "issue_date_in_millis": 0,
                "max_nodes": 1000, "issued_to": self.cluster_name, "issuer": "logwarden",
                "start_date_in_millis": -1,
            }}
        elif path == "/_cluster/health":
            body = {
                "cluster_name": self.cluster_name, "status": "green", "timed_out": False, "number_of_nodes": 1,
                "number_of_data_nodes": 1, "active_primary_shards": 0, "active_shards": 0,
                "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
                "number_of_pending_tasks": 0, "active_shards_percent_as_number": 100.0,
            }
        else:
            body = {
                "name": self.cluster_name,
                "cluster_name": self.cluster_name,
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "number": self.version, "build_flavor": "default", "build_type": "logwarden",
                    "build_hash": "logwarden", "build_date": "2025-01-01T00:00:00.000Z", "build_snapshot": False,
                    "lucene_version": LUCENE_VERSION, "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0",
                },
                "tagline": "You Know, for Search",
            }
        content = b"" if request.method == "HEAD" else orjson.dumps(body)
        return ProtocolAnswer(200, content, headers=dict(PRODUCT_HEADERS))

    def error(self, request: ProtocolRequest | None, status: int, message: str) -> ProtocolAnswer:
        """Elasticsearch's error document (``{"error": {"root_cause", "type", "reason"}, "status"}``)."""
        kind = ERROR_TYPES.get(status, "exception" if status >= 500 else "illegal_argument_exception")
        cause = {"type": kind, "reason": message}
        body = {"error": {"root_cause": [cause], **cause}, "status": status}
        headers = dict(PRODUCT_HEADERS)
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="logwarden", Basic realm="logwarden", ApiKey'
        return ProtocolAnswer(status, orjson.dumps(body), headers=headers)
