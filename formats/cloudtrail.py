"""AWS CloudTrail events (one element of a ``{"Records": [...]}`` file, or one event per line)."""
from __future__ import annotations

from typing import Any

from logwarden.formats import levels, timestamps
from logwarden.formats.common import as_str, clip, error_record
from logwarden.formats.json_app import loads
from logwarden.formats.record import ParsedRecord

NAME = "cloudtrail"

_MARKERS = (b'"eventVersion"', b'"eventTime"', b'"eventSource"')


def is_event(obj: dict[str, Any]) -> bool:
    """True for CloudTrail API/management/data events and Insights events."""
    return "eventTime" in obj and ("eventVersion" in obj or "awsRegion" in obj) and (
        "eventSource" in obj or "insightDetails" in obj)


def sniff(data: bytes) -> float:
    """CloudTrail key names inside a JSON object (confirmed by the JSON parse in the detector)."""
    if data[:1] != b"{":
        return 0.0
    found = sum(1 for marker in _MARKERS if marker in data)
    return 0.97 if found == 3 else 0.0


def _user(identity: Any) -> str | None:
    """The acting principal: ARN, else user name, else principal id."""
    if not isinstance(identity, dict):
        return None
    for key in ("arn", "userName", "principalId"):
        if identity.get(key):
            return str(identity[key])
    return as_str(identity.get("type"))


def parse(data: bytes | str | dict[str, Any]) -> ParsedRecord:
    """Map a CloudTrail event: eventSource is the service, errorCode makes it a WARNING."""
    obj = loads(data)
    if isinstance(obj, str):
        return error_record(data, obj)
    if not is_event(obj):
        return error_record(data, "cloudtrail: missing eventTime/eventSource")
    attrs = {k: v for k, v in obj.items() if k not in ("eventTime", "eventSource", "errorCode",
                                                        "requestID", "errorMessage")}
    error_code = as_str(obj.get("errorCode"))
    insight = obj.get("insightDetails") if isinstance(obj.get("insightDetails"), dict) else {}
    source = obj.get("eventSource") or insight.get("eventSource")
    message = str(obj.get("eventName") or insight.get("eventName") or obj.get("eventType"))
    if insight:
        message = f"{message} {insight.get('insightType', 'insight')} {insight.get('state', '')}".strip()
    if obj.get("errorMessage"):
        message = f"{message}: {obj['errorMessage']}"
        attrs["errorMessage"] = obj["errorMessage"]
    return ParsedRecord(format=NAME, message=clip(message),
                        timestamp=timestamps.parse_any(obj.get("eventTime")),
                        level=levels.WARNING if error_code else levels.INFO,
                        service=as_str(source), user_id=_user(obj.get("userIdentity")),
                        request_id=as_str(obj.get("requestID")), error_code=error_code,
                        attributes=attrs)
