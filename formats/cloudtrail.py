"""AWS CloudTrail events, in the shapes in which they arrive.

- ``event``: one event as CloudTrail writes it (an element of a trail's ``{"Records": [...]}`` file, or
  one event per line: CloudTrail Lake exports, S3 -> Firehose deliveries).
- ``lookup-events``: an element of ``aws cloudtrail lookup-events`` (API ``LookupEvents``), whose
  ``CloudTrailEvent`` string is the event (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_Event.html).
- ``eventbridge``: an EventBridge event whose ``detail-type`` ends in ``via CloudTrail`` and whose
  ``detail`` is the event (https://docs.aws.amazon.com/eventbridge/latest/ref/events-structure.html).
- ``envelope:KEY``: a shipper's record around the event, as an object or a JSON string: Beats'
  ``event.original``, Splunk's ``_raw`` and HEC ``event``, Fluent Bit's ``log``, Vector's ``message``.
- ``ecs``: Filebeat's / Elastic Agent's mapping without the original (``event.provider``,
  ``event.action``, ``aws.cloudtrail.*``).
- ``loose``: a record clearly of the family in none of those shapes (a CloudTrail Lake result row,
  an event whose shipper dropped or renamed fields): ``eventSource`` on ``.amazonaws.com`` with
  ``eventName`` or ``eventTime``, or three of the event's own field names.

:func:`find` names the shape and its confidence; :func:`parse` maps whichever it is.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from logwarden.formats import levels, timestamps
from logwarden.formats.common import as_str, clip, embedded, error_record, field, without
from logwarden.formats.json_app import loads
from logwarden.formats.record import ParsedRecord

NAME = "cloudtrail"

#: Confidence of an event in its documented shape.
EXACT = 0.97
#: Of an event inside a documented wrapper (lookup-events, EventBridge, a shipper's envelope).
WRAPPED = 0.9
#: Of a record clearly of the family in no documented shape.
LOOSE = 0.75

_MARKERS = (b'"eventVersion"', b'"eventTime"', b'"eventSource"')
#: Where services and shippers put the event (see the module docstring).
_WRAPPERS = ("detail", "event.original", "_raw", "event", "message", "log")
#: Field names of CloudTrail events that other logs do not use (the loose rule counts them; the generic
#: ``eventID``, ``eventType``, ``requestID``, ``errorCode`` are left out).
_OWN_KEYS = frozenset(("eventVersion", "eventSource", "awsRegion", "userIdentity", "sourceIPAddress",
                       "requestParameters", "responseElements", "recipientAccountId", "eventCategory",
                       "managementEvent"))
_AWS_DOMAIN = ".amazonaws.com"
_WRAPPER_HEADS = frozenset(_WRAPPERS) | {key.split(".")[0] for key in _WRAPPERS}
#: Every top-level key that can make a record CloudTrail's (a record with none of them is not looked into).
_TRIGGERS = _OWN_KEYS | _WRAPPER_HEADS | {"eventTime", "eventName", "insightDetails", "CloudTrailEvent",
                                          "EventSource", "event.dataset", "event.provider"}


class Found(NamedTuple):
    """A CloudTrail event found in a record: the event, the wrapper's other fields, how sure, which shape."""

    event: dict[str, Any]
    envelope: dict[str, Any]
    confidence: float
    shape: str


def is_event(obj: dict[str, Any]) -> bool:
    """True for CloudTrail API/management/data events and Insights events in their documented shape."""
    return "eventTime" in obj and ("eventVersion" in obj or "awsRegion" in obj) and (
        "eventSource" in obj or "insightDetails" in obj)


def looks_like(obj: dict[str, Any]) -> bool:
    """The loose rule: ``eventSource`` on ``.amazonaws.com`` with ``eventName``/``eventTime``, an Insights
    event, or ``eventTime``/``eventName`` with three field names only CloudTrail uses."""
    source = obj.get("eventSource")
    if isinstance(source, str) and source.endswith(_AWS_DOMAIN) and ("eventName" in obj or "eventTime" in obj):
        return True
    if isinstance(obj.get("insightDetails"), dict):
        return True
    return ("eventTime" in obj or "eventName" in obj) and len(_OWN_KEYS.intersection(obj)) >= 3


def find(obj: dict[str, Any]) -> Found | None:
    """The CloudTrail event in ``obj`` and its shape, or None when ``obj`` is not of the family."""
    if _TRIGGERS.isdisjoint(obj):
        return None
    if is_event(obj):
        return Found(obj, {}, EXACT, "event")
    found = _lookup_event(obj) or _wrapped(obj)
    if found is not None:
        return found
    if _is_ecs(obj):
        return Found(obj, {}, LOOSE, "ecs")
    return Found(obj, {}, LOOSE, "loose") if looks_like(obj) else None


def _lookup_event(obj: dict[str, Any]) -> Found | None:
    """An element of ``lookup-events``: the ``CloudTrailEvent`` string, else the element's own fields."""
    if "CloudTrailEvent" not in obj and "EventSource" not in obj:
        return None
    envelope = {k: v for k, v in obj.items() if k != "CloudTrailEvent"}
    inner = loads(obj["CloudTrailEvent"]) if isinstance(obj.get("CloudTrailEvent"), str) else None
    if isinstance(inner, dict) and (is_event(inner) or looks_like(inner)):
        return Found(inner, envelope, WRAPPED if is_event(inner) else LOOSE, "lookup-events")
    source = obj.get("EventSource")
    if isinstance(source, str) and source.endswith(_AWS_DOMAIN) and isinstance(obj.get("EventName"), str):
        event = {"eventTime": obj.get("EventTime"), "eventSource": source, "eventName": obj["EventName"],
                 "eventID": obj.get("EventId"), "userIdentity": {"userName": obj.get("Username")}}
        return Found(event, envelope, LOOSE, "lookup-events")
    return None


def _wrapped(obj: dict[str, Any]) -> Found | None:
    """An event under one of the wrapper keys, as an object or a JSON string."""
    if _WRAPPER_HEADS.isdisjoint(obj):
        return None
    for key, inner in embedded(obj, _WRAPPERS, ('"eventSource"',)):
        exact = is_event(inner)
        if exact or looks_like(inner):
            detail_type = obj.get("detail-type")
            shape = "eventbridge" if key == "detail" and isinstance(detail_type, str) \
                and detail_type.endswith("via CloudTrail") else f"envelope:{key}"
            return Found(inner, without(obj, key), WRAPPED if exact else LOOSE, shape)
    return None


def _is_ecs(obj: dict[str, Any]) -> bool:
    """Filebeat's / Elastic Agent's CloudTrail mapping: ``event.dataset`` ``aws.cloudtrail``, or an AWS
    ``event.provider`` and ``event.action`` beside ``aws.cloudtrail`` fields (other AWS datasets have the
    first two too)."""
    if "event" not in obj and "event.dataset" not in obj and "event.provider" not in obj:
        return False
    if field(obj, "event.dataset") == "aws.cloudtrail":
        return True
    provider = field(obj, "event.provider")
    if not (isinstance(provider, str) and provider.endswith(_AWS_DOMAIN)
            and isinstance(field(obj, "event.action"), str)):
        return False
    return isinstance(field(obj, "aws.cloudtrail"), dict) or any(k.startswith("aws.cloudtrail.") for k in obj)


def sniff(data: bytes) -> float:
    """CloudTrail key names inside a JSON object (confirmed by the JSON parse in the detector)."""
    if data[:1] != b"{":
        return 0.0
    found = sum(1 for marker in _MARKERS if marker in data)
    return EXACT if found == 3 else 0.0


def parse(data: bytes | str | dict[str, Any]) -> ParsedRecord:
    """Map a CloudTrail event in any shape of :func:`find`: eventSource is the service, an error code or
    message makes it a WARNING, the wrapper's other fields are kept under ``envelope``."""
    obj = loads(data)
    if isinstance(obj, str):
        return error_record(data, obj)
    found = find(obj)
    if found is None:
        return error_record(data, "cloudtrail: no CloudTrail event in the record")
    if found.shape == "ecs":
        return _from_ecs(obj)
    record = _from_event(found.event)
    if found.envelope:
        record.attributes["envelope"] = found.envelope
    if found.shape != "event":
        record.attributes["cloudtrail_shape"] = found.shape
    return record


def _from_event(obj: dict[str, Any]) -> ParsedRecord:
    """The record of one event (fields absent from a loose one stay empty)."""
    attrs = {k: v for k, v in obj.items() if k not in ("eventTime", "eventSource", "errorCode",
                                                        "requestID", "errorMessage")}
    error_code = as_str(obj.get("errorCode"))
    insight = obj.get("insightDetails") if isinstance(obj.get("insightDetails"), dict) else {}
    source = obj.get("eventSource") or insight.get("eventSource")
    message = str(obj.get("eventName") or insight.get("eventName") or obj.get("eventType") or source or "")
    if insight:
        message = f"{message} {insight.get('insightType', 'insight')} {insight.get('state', '')}".strip()
    if obj.get("errorMessage"):
        message = f"{message}: {obj['errorMessage']}"
        attrs["errorMessage"] = obj["errorMessage"]
    return ParsedRecord(format=NAME, message=clip(message),
                        timestamp=timestamps.parse_any(obj.get("eventTime")),
                        level=levels.WARNING if error_code or obj.get("errorMessage") else levels.INFO,
                        service=as_str(source), user_id=_user(obj), request_id=as_str(obj.get("requestID")),
                        error_code=error_code, attributes=attrs)


def _user(obj: dict[str, Any]) -> str | None:
    """The acting principal: ARN, else user name, else principal id (a Lake row names its columns as selected)."""
    identity = obj.get("userIdentity")
    if isinstance(identity, dict):
        for key in ("arn", "userName", "principalId"):
            if identity.get(key):
                return str(identity[key])
        return as_str(identity.get("type"))
    for key in ("arn", "userName", "username", "principalId", "principalid"):
        if isinstance(obj.get(key), str) and obj[key]:
            return obj[key]
    return None


def _from_ecs(obj: dict[str, Any]) -> ParsedRecord:
    """Filebeat's mapping: the event's fields are read back from their ECS names; the record is kept whole."""
    failed = field(obj, "event.outcome") == "failure"
    event = {"eventTime": field(obj, "@timestamp"), "eventSource": field(obj, "event.provider"),
             "eventName": field(obj, "event.action"), "errorCode": field(obj, "aws.cloudtrail.error_code"),
             "errorMessage": field(obj, "aws.cloudtrail.error_message"),
             "userIdentity": {"arn": field(obj, "aws.cloudtrail.user_identity.arn"),
                              "userName": field(obj, "user.name"), "principalId": field(obj, "user.id")}}
    record = _from_event(event)
    if failed and record.level == levels.INFO:
        record.level = levels.WARNING
    record.attributes = {**obj, "cloudtrail_shape": "ecs"}
    return record
