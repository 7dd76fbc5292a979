"""Windows events: Event XML, EVTX records (as evtx JSON), winlogbeat/nxlog JSON, Snare syslog."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from logwarden.formats import levels, timestamps
from logwarden.formats.common import MAX_RECORD_BYTES, as_int, as_str, clip, decode, error_record
from logwarden.formats.json_app import loads
from logwarden.formats.record import ParsedRecord
from logwarden.formats.syslog3164 import split_header

NAME = "windows-event"

_NS = re.compile(r"\{[^}]*\}")
_SNARE_LEVEL = {"success audit": levels.INFO, "failure audit": levels.WARNING, "error": levels.ERROR,
                "warning": levels.WARNING, "information": levels.INFO, "critical": levels.CRITICAL,
                "verbose": levels.DEBUG}
_USER_KEYS = ("TargetUserName", "SubjectUserName", "User", "UserName", "AccountName")


def sniff(data: bytes) -> float:
    """Event XML, Snare (``MSWinEventLog`` + TAB) or an event JSON object."""
    if data.startswith(b"<Event") and data[6:7] in (b" ", b">"):
        return 0.97
    if b"MSWinEventLog\t" in data[:300]:
        return 0.95
    if data[:1] == b"{" and (b'"EventID"' in data or b'"winlog"' in data
                             or (b'"Event"' in data and b'"System"' in data)):
        return 0.9
    return 0.0


def is_event_dict(obj: dict[str, Any]) -> bool:
    """True for evtx-JSON (``Event``), winlogbeat (``winlog``) and nxlog (``EventID``+``SourceName``)."""
    event = obj.get("Event")
    return (isinstance(event, dict) and "System" in event) or isinstance(obj.get("winlog"), dict) \
        or ("EventID" in obj and ("SourceName" in obj or "ProviderName" in obj or "Channel" in obj))


def parse(data: bytes | str | dict[str, Any]) -> ParsedRecord:
    """Parse any supported Windows event representation into a record."""
    if isinstance(data, dict):
        return _from_dict(data)
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    text, _ = decode(data)
    stripped = text.lstrip()
    if stripped.startswith("<"):
        if "MSWinEventLog\t" in stripped[:300]:
            return _snare(text)
        return _from_xml(data)
    if stripped.startswith("{"):
        obj = loads(data)
        return error_record(data, obj) if isinstance(obj, str) else _from_dict(obj)
    if "MSWinEventLog\t" in text[:300]:
        return _snare(text)
    return error_record(data, "windows-event: not an event")


def _from_dict(obj: dict[str, Any]) -> ParsedRecord:
    """Dispatch on the JSON flavour."""
    if isinstance(obj.get("Event"), dict):
        event = obj["Event"]
        system = _flatten_system(event.get("System") or {})
        data = event.get("EventData") or event.get("UserData") or {}
        return _build(system, _flatten_data(data), {k: v for k, v in obj.items() if k != "Event"})
    if isinstance(obj.get("winlog"), dict):
        return _winlogbeat(obj)
    if "EventID" in obj:
        return _nxlog(obj)
    return error_record(obj, "windows-event: unknown JSON layout")


def _attr(value: Any, name: str) -> Any:
    """``{"#attributes": {name: v}}`` -> v (evtx JSON)."""
    if isinstance(value, dict):
        return (value.get("#attributes") or {}).get(name)
    return None


def _text(value: Any) -> Any:
    """``{"#text": v}`` -> v, scalars unchanged."""
    return value.get("#text") if isinstance(value, dict) else value


def _flatten_system(system: dict[str, Any]) -> dict[str, Any]:
    """evtx-JSON ``System`` -> flat keys."""
    return {"provider": _attr(system.get("Provider"), "Name"),
            "event_id": _text(system.get("EventID")), "level": _text(system.get("Level")),
            "time": _attr(system.get("TimeCreated"), "SystemTime"),
            "computer": system.get("Computer"), "channel": system.get("Channel"),
            "record_id": system.get("EventRecordID"), "task": system.get("Task"),
            "keywords": system.get("Keywords"),
            "user_sid": _attr(system.get("Security"), "UserID"),
            "process_id": _attr(system.get("Execution"), "ProcessID"),
            "activity_id": _attr(system.get("Correlation"), "ActivityID")}


def _flatten_data(data: Any) -> dict[str, Any]:
    """EventData/UserData -> flat name/value dict (one nesting level for UserData)."""
    if not isinstance(data, dict):
        return {"Data": data} if data else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "#attributes":
            continue
        if isinstance(value, dict) and "#text" in value:
            out[key] = value["#text"]
        elif isinstance(value, dict):
            out.update({k: _text(v) for k, v in value.items() if k != "#attributes"})
        else:
            out[key] = value
    return out


def _build(system: dict[str, Any], data: dict[str, Any], extra: dict[str, Any]) -> ParsedRecord:
    """The common record for XML / evtx-JSON events."""
    event_id = as_int(system.get("event_id"))
    level_n = as_int(system.get("level"))
    keywords = str(system.get("keywords") or "")
    level = levels.from_windows(level_n) if level_n is not None else levels.INFO
    if keywords.lower().startswith("0x8010"):
        level = levels.WARNING
    provider = as_str(system.get("provider"))
    summary = " ".join(f"{k}={_render(v)}" for k, v in data.items() if v not in (None, "", "-"))
    attrs = {k: v for k, v in system.items() if v is not None and k not in ("provider", "time")}
    attrs.update(event_id=event_id, level=level_n, task=as_int(system.get("task")))
    attrs["event_data"] = data
    attrs.update(extra)
    user = next((as_str(data[k]) for k in _USER_KEYS if as_str(data.get(k))), None)
    return ParsedRecord(format=NAME, message=clip(f"{event_id} {provider}: {summary}".strip()),
                        timestamp=timestamps.parse_any(system.get("time")), level=level,
                        service=provider, user_id=user or as_str(system.get("user_sid")),
                        error_code=as_str(data.get("Status") or data.get("FailureReason")),
                        attributes=attrs)


def _render(value: Any) -> str:
    """Scalars as-is, lists of unnamed ``<Data>`` values joined."""
    if isinstance(value, list):
        return " | ".join(str(v) for v in value if v not in (None, ""))
    return str(value)


def _from_xml(data: bytes | str) -> ParsedRecord:
    """One ``<Event>`` element (documents declaring a DTD or entities are refused)."""
    head = (data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)[:4096]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        return error_record(data, "windows-event: XML with DTD/entities refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return error_record(data, f"windows-event: bad XML: {exc}")
    if _NS.sub("", root.tag) != "Event":
        return error_record(data, f"windows-event: root is <{_NS.sub('', root.tag)}>")
    system: dict[str, Any] = {}
    data_map: dict[str, Any] = {}
    for child in root:
        tag = _NS.sub("", child.tag)
        if tag == "System":
            system = _xml_system(child)
        elif tag in ("EventData", "UserData"):
            data_map = _xml_data(child)
        elif tag == "RenderingInfo":
            message = child.findtext("{*}Message")
            if message:
                data_map.setdefault("RenderedMessage", message)
    return _build(system, data_map, {})


def _xml_system(node: ET.Element) -> dict[str, Any]:
    """``<System>`` children -> the flat keys used by :func:`_build`."""
    found: dict[str, ET.Element] = {_NS.sub("", c.tag): c for c in node}

    def text(tag: str) -> str | None:
        el = found.get(tag)
        return el.text.strip() if el is not None and el.text else None

    def attr(tag: str, name: str) -> str | None:
        el = found.get(tag)
        return el.get(name) if el is not None else None

    return {"provider": attr("Provider", "Name"), "event_id": text("EventID"),
            "level": text("Level"), "time": attr("TimeCreated", "SystemTime"),
            "computer": text("Computer"), "channel": text("Channel"),
            "record_id": as_int(text("EventRecordID")), "task": text("Task"),
            "keywords": text("Keywords"), "user_sid": attr("Security", "UserID"),
            "process_id": attr("Execution", "ProcessID"),
            "activity_id": attr("Correlation", "ActivityID") or None}


def _xml_data(node: ET.Element) -> dict[str, Any]:
    """``<EventData><Data Name=..>`` (or UserData's nested element) -> dict."""
    out: dict[str, Any] = {}
    items = list(node)
    if len(items) == 1 and _NS.sub("", items[0].tag) != "Data":
        items = list(items[0])
    for i, el in enumerate(items):
        name = el.get("Name") or _NS.sub("", el.tag)
        if name == "Data":
            name = f"Data{i}"
        out[name] = (el.text or "").strip()
    return out


def _winlogbeat(obj: dict[str, Any]) -> ParsedRecord:
    """Elastic winlogbeat JSON."""
    win = obj["winlog"]
    system = {"provider": win.get("provider_name"), "event_id": win.get("event_id"),
              "time": obj.get("@timestamp"), "computer": win.get("computer_name"),
              "channel": win.get("channel"), "record_id": win.get("record_id"),
              "keywords": ",".join(win.get("keywords") or []) or None,
              "user_sid": (win.get("user") or {}).get("identifier")}
    rec = _build(system, dict(win.get("event_data") or {}), {})
    level_name = (obj.get("log") or {}).get("level") or (obj.get("event") or {}).get("outcome")
    rec.level = levels.from_name(str(level_name)) or rec.level if level_name else rec.level
    if obj.get("message"):
        rec.message = clip(str(obj["message"]))
    return rec


def _nxlog(obj: dict[str, Any]) -> ParsedRecord:
    """nxlog ``im_msvistalog`` JSON."""
    rest = {k: v for k, v in obj.items() if k not in ("EventTime", "SourceName", "Message", "Severity")}
    rest.setdefault("event_id", obj.get("EventID"))
    severity = obj.get("Severity") or obj.get("EventType")
    level = levels.from_name(str(severity)) if severity else None
    user = as_str(obj.get("TargetUserName") or obj.get("SubjectUserName") or obj.get("AccountName"))
    return ParsedRecord(format=NAME, message=clip(str(obj.get("Message") or obj.get("EventID"))),
                        timestamp=timestamps.parse_any(obj.get("EventTime")),
                        level=level or levels.INFO,
                        service=as_str(obj.get("SourceName") or obj.get("ProviderName")),
                        user_id=user, attributes=rest)


def _snare(text: str) -> ParsedRecord:
    """Snare ``MSWinEventLog`` TAB-separated events behind a syslog header."""
    pos = text.find("MSWinEventLog\t")
    cols = text[pos:].rstrip("\r\n").split("\t")
    if len(cols) < 14:
        return error_record(text, "windows-event: truncated Snare record")
    header = split_header(text[:pos].strip() + " ")
    stamp = timestamps.parse_ctime(cols[4]) or (header[0].get("timestamp") if header else None)
    attrs = {"criticality": cols[1], "channel": cols[2], "record_id": as_int(cols[3]),
             "event_id": as_int(cols[5]), "sid_type": cols[8], "event_type": cols[9],
             "computer": cols[10], "category": cols[11], "snare_trailer": cols[14:]}
    user = None if cols[7] in ("N/A", "") else cols[7]
    return ParsedRecord(format=NAME, message=clip(cols[13].strip()), timestamp=stamp,
                        level=_SNARE_LEVEL.get(cols[9].lower(), levels.INFO), service=cols[6],
                        user_id=user, attributes=attrs)
