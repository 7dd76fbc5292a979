"""Windows events from the exporters that ship them.

- Event XML (``<Event xmlns=...><System><Provider Name=.../><EventID>...``; ``wevtutil qe /f:xml``, Event
  Viewer's "Save as XML", Splunk's ``XmlWinEventLog``) and EVTX records as evtx JSON (``Event.System``).
- Winlogbeat / Elastic Agent: ``winlog.event_id``, ``winlog.channel``, ``winlog.provider_name``,
  ``event.code``, ``log.level``, nested or with flattened dotted keys; Winlogbeat before 7 wrote
  ``event_id``, ``log_name``, ``source_name``, ``level`` at the top.
- The OpenTelemetry Collector's ``windowseventlog`` receiver body (``event_id.id``, ``provider.name``,
  ``channel``, ``system_time``, ``level``, ``keywords``, ``event_data``).
- Fluentd's ``in_windows_eventlog2`` (``EventID``, ``ProviderName``, ``Channel``, ``Description``) and
  ``in_windows_eventlog`` (``event_id``, ``source_name``, ``channel``, ``event_type``, ``time_generated``,
  ``description``).
- Flat JSON exports: NXLog ``im_msvistalog`` (``EventID``, ``SourceName``, ``Channel``, ``Severity``,
  ``EventType``, ``EventTime``, ``Hostname``, ``Keywords``, the EventData fields at the top),
  ``Get-WinEvent | ConvertTo-Json`` (``Id``, ``ProviderName``, ``LogName``, ``LevelDisplayName``,
  ``TimeCreated`` as ``/Date(ms)/`` in Windows PowerShell 5.1, ISO 8601 in PowerShell 7), Splunk's
  ``WinEventLog`` fields (``EventCode``, ``LogName``, ``SourceName``, ``Type``).
- Any of these inside a shipper's envelope: Splunk's ``_raw``, Beats' ``event.original``, Fluent Bit's
  ``log``, ``message``, HEC ``event``.
- Splunk's multiline ``WinEventLog`` text: a ``MM/DD/YYYY h:mm:ss AM`` line, ``Key=Value`` lines
  (``LogName``, ``SourceName``, ``EventCode``, ``Type``, ``Keywords``...), then ``Message=`` and the
  rendered message to the end (https://help.splunk.com/en/security-offerings/splunk-user-behavior-analytics/get-data-in/5.3.0/add-windows-events-to-splunk-uba/add-windows-events-to-splunk-uba).
- Snare (``MSWinEventLog`` + TAB fields) behind a syslog header.

A flat record is an event when it has an event id (a number up to 65535) and a provider or a channel;
with both it is one of the exporters above (0.9), with one of them it is clearly of the family in no
documented shape (0.75).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from logwarden.formats import levels, timestamps
from logwarden.formats.common import (MAX_RECORD_BYTES, as_int, as_str, clip, decode, error_record, field,
                                     json_in, without)
from logwarden.formats.json_app import loads
from logwarden.formats.record import ParsedRecord
from logwarden.formats.syslog3164 import split_header

NAME = "windows-event"

_NS = re.compile(r"\{[^}]*\}")
_US_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d\d):(\d\d)(?: ?([AaPp][Mm]))?")
_SNARE_LEVEL = {"success audit": levels.INFO, "failure audit": levels.WARNING, "error": levels.ERROR,
                "warning": levels.WARNING, "information": levels.INFO, "critical": levels.CRITICAL,
                "verbose": levels.DEBUG}
_USER_KEYS = ("TargetUserName", "SubjectUserName", "User", "UserName", "AccountName")
#: Confidences: a documented exporter's shape, an event inside a shipper's envelope, a record clearly
#: of the family in no documented shape.
EXACT, WRAPPED, LOOSE = 0.95, 0.9, 0.75
#: Flat exports' names for the System fields, first found wins (see the module docstring).
_ID_KEYS = ("EventID", "EventId", "EventCode", "event_id", "winlog.event_id", "Id")
_PROVIDER_KEYS = ("SourceName", "ProviderName", "source_name", "provider_name", "winlog.provider_name",
                  "Provider", "provider.name")
_CHANNEL_KEYS = ("Channel", "LogName", "log_name", "channel", "winlog.channel")
_COMPUTER_KEYS = ("Hostname", "Computer", "MachineName", "ComputerName", "computer_name", "computer",
                  "winlog.computer_name", "host.name")
_TIME_KEYS = ("TimeCreated", "EventTime", "TimeGenerated", "SystemTime", "system_time", "time_generated",
              "@timestamp", "timestamp", "_time", "time")
_LEVEL_KEYS = ("LevelDisplayName", "Severity", "log.level", "level", "Level", "Type", "EventType", "event_type")
_MESSAGE_KEYS = ("Message", "message", "RenderedMessage", "Description", "description")
_KEYWORD_KEYS = ("Keywords", "KeywordsDisplayNames", "keywords", "winlog.keywords")
_DATA_KEYS = ("EventData", "event_data", "winlog.event_data")
_SID_KEYS = ("UserID", "UserId", "winlog.user.identifier")
#: Names that a JSON string holding a Windows event contains (the test before decoding it).
_JSON_MARKERS = ('"EventID"', '"winlog"', '"System"', '"EventCode"')
#: Where shippers put the event, as an object or a string (JSON or Event XML).
_WRAPPERS = ("_raw", "event.original", "log", "message", "event")
#: The id and wrapper keys, flattened or as their top-level heads (a record with none is not looked into).
_ID_HEADS = frozenset(_ID_KEYS) | {key.split(".")[0] for key in _ID_KEYS}
_WRAPPER_HEADS = frozenset(_WRAPPERS) | {key.split(".")[0] for key in _WRAPPERS}
_TRIGGERS = _ID_HEADS | _WRAPPER_HEADS | {"Event", "winlog"}
#: The ``Keywords`` bit of an audit failure (``0x8010000000000000`` is audit failure + classic).
_AUDIT_FAILURE = 1 << 52


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


def confidence(obj: dict[str, Any]) -> float:
    """How sure it is that a decoded object is a Windows event (0 when it is none; see the module docstring)."""
    if _TRIGGERS.isdisjoint(obj):
        return 0.0
    if _is_evtx_json(obj) or isinstance(obj.get("winlog"), dict):
        return EXACT
    flat = _flat_confidence(obj)
    if flat:
        return flat
    return WRAPPED if _inner(obj) is not None else 0.0


def is_event_dict(obj: dict[str, Any]) -> bool:
    """True for any Windows event object :func:`confidence` recognises."""
    return confidence(obj) > 0


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """The first of ``keys`` (flattened or nested) with a value in ``obj``."""
    for key in keys:
        value = field(obj, key)
        if value is not None and value != "":
            return key, value
    return None, None


def _event_id(obj: dict[str, Any]) -> int | None:
    """The event id of a flat record (``Id`` counts only beside Get-WinEvent's ``ProviderName``/``LogName``)."""
    return _event_id_of(obj)[1]


def _event_id_of(obj: dict[str, Any]) -> tuple[str | None, int | None]:
    """``(key, id)`` of a flat record's event id; the id is None when it is no number up to 65535."""
    key, value = _first(obj, _ID_KEYS)
    if key == "Id" and "ProviderName" not in obj and "LogName" not in obj:
        return key, None
    number = as_int(value.get("id") if isinstance(value, dict) else value)
    return key, number if number is not None and 0 <= number <= 0xFFFF else None


def _flat_confidence(obj: dict[str, Any]) -> float:
    """EXACT for NXLog's ``EventID`` beside ``SourceName``/``Channel``, 0.9 for an id with a provider and a
    channel, LOOSE with one of them, else 0 (an ``event_id`` beside only a ``channel`` is any application's)."""
    if _ID_HEADS.isdisjoint(obj):
        return 0.0
    key, event_id = _event_id_of(obj)
    if event_id is None:
        return 0.0
    provider = isinstance(_first(obj, _PROVIDER_KEYS)[1], str)
    channel = isinstance(_first(obj, _CHANNEL_KEYS)[1], str)
    if "EventID" in obj and "SourceName" in obj and "Channel" in obj:
        return EXACT
    if provider and channel:
        return WRAPPED
    return LOOSE if (provider or channel) and key != "event_id" else 0.0


def _inner(obj: dict[str, Any]) -> tuple[str, Any] | None:
    """``(key, event)`` of an event inside a shipper's envelope: an Event XML string or an event object."""
    if _WRAPPER_HEADS.isdisjoint(obj):
        return None
    for key in _WRAPPERS:
        value = field(obj, key)
        if isinstance(value, str):
            if _is_event_text(value):
                return key, value
            value = json_in(value, _JSON_MARKERS)
        if isinstance(value, dict) and _is_event_object(value):
            return key, value
    return None


def _is_event_text(value: str) -> bool:
    """Event XML or Splunk's multiline event in a string."""
    first = value[:1]
    if first in ("<", " ", "\t", "\r", "\n"):
        return value[:256].lstrip()[:6] == "<Event" and "<EventID" in value
    return first.isdigit() and is_splunk_multiline(value)


def _is_event_object(obj: dict[str, Any]) -> bool:
    """evtx JSON, Winlogbeat or a flat export."""
    return _is_evtx_json(obj) or isinstance(obj.get("winlog"), dict) or bool(_flat_confidence(obj))


def _is_evtx_json(obj: dict[str, Any]) -> bool:
    """An EVTX record rendered as JSON: ``{"Event": {"System": {...}, ...}}``."""
    event = obj.get("Event")
    return isinstance(event, dict) and isinstance(event.get("System"), dict)


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
    if is_splunk_multiline(text):
        return _splunk_multiline(text)
    return error_record(data, "windows-event: not an event")


def is_splunk_multiline(text: str | bytes) -> bool:
    """Whether ``text`` starts like Splunk's multiline ``WinEventLog`` event (a date line, then fields)."""
    if not text[:1].isdigit():
        return False
    head = text[:400]
    if isinstance(head, bytes):
        return b"\nLogName=" in head and b"\nEventCode=" in head
    return "\nLogName=" in head and "\nEventCode=" in head


def _splunk_multiline(text: str) -> ParsedRecord:
    """Splunk's multiline ``WinEventLog`` event: the fields before ``Message=`` are read as a flat export's."""
    head, _, message = text.partition("\nMessage=")
    lines = head.replace("\r\n", "\n").split("\n")
    fields: dict[str, Any] = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    if message:
        fields["Message"] = message.strip()
    record = _flat(fields)
    record.timestamp = _us_time(lines[0].strip())
    return record


def _us_time(text: str) -> datetime | None:
    """``MM/DD/YYYY h:mm:ss AM`` (the forwarder's local time, taken as UTC like other times without a zone)."""
    found = _US_TIME.fullmatch(text)
    if found is None:
        return None
    month, day, year, hour, minute, second, half = found.groups()
    hour_n = int(hour) % 12 + (12 if half and half.upper() == "PM" else 0) if half else int(hour)
    return timestamps.parse_iso(f"{year}-{int(month):02d}-{int(day):02d}T{hour_n:02d}:{minute}:{second}Z")


def _from_dict(obj: dict[str, Any]) -> ParsedRecord:
    """Dispatch on the JSON flavour; an event in an envelope keeps the envelope's other fields."""
    if isinstance(obj.get("Event"), dict):
        event = obj["Event"]
        system = _flatten_system(event["System"] if isinstance(event.get("System"), dict) else {})
        data = event.get("EventData") or event.get("UserData") or {}
        return _build(system, _flatten_data(data), {k: v for k, v in obj.items() if k != "Event"})
    if isinstance(obj.get("winlog"), dict):
        return _winlogbeat(obj)
    if _flat_confidence(obj):
        return _flat(obj)
    inner = _inner(obj)
    if inner is None:
        return error_record(obj, "windows-event: unknown JSON layout")
    key, event = inner
    if isinstance(event, dict):
        record = _from_dict(event)
    else:
        record = _splunk_multiline(event) if is_splunk_multiline(event) else _from_xml(event)
    if record.parse_error is None:
        record.attributes["envelope"] = without(obj, key)
    return record


def _attr(value: Any, name: str) -> Any:
    """An XML attribute of a System element: ``{"#attributes": {name: v}}`` (the Rust evtx crate) or
    ``{name: v}`` (golang-evtx, Velociraptor) -> v."""
    if isinstance(value, dict):
        attributes = value.get("#attributes")
        return attributes.get(name) if isinstance(attributes, dict) else value.get(name)
    return None


def _text(value: Any) -> Any:
    """An element's text: ``{"#text": v}`` (evtx crate, when the element has attributes) or ``{"Value": v}``
    (golang-evtx, EventID beside its Qualifiers) -> v; scalars unchanged."""
    if isinstance(value, dict):
        return value.get("#text", value.get("Value"))
    return value


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
    level = levels.from_windows(level_n) if level_n is not None else levels.INFO
    if audit_failure(system.get("keywords")) and level == levels.INFO:
        level = levels.WARNING
    provider = as_str(system.get("provider")) or as_str(system.get("channel"))
    summary = " ".join(f"{k}={_render(v)}" for k, v in data.items() if v not in (None, "", "-"))
    attrs = {k: v for k, v in system.items() if v is not None and k not in ("provider", "time")}
    attrs.update(event_id=event_id, level=level_n, task=as_int(system.get("task")))
    attrs["event_data"] = data
    attrs.update(extra)
    user = next((as_str(data[k]) for k in _USER_KEYS if as_str(data.get(k))), None)
    headline = f"{event_id} {provider}"
    return ParsedRecord(format=NAME, message=clip(f"{headline}: {summary}" if summary else headline),
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


def audit_failure(keywords: Any) -> bool:
    """Whether ``Keywords`` mark an audit failure: the number (an int, signed as NXLog writes it, or a hex
    or decimal string) has bit 52 set, or a keyword name (Winlogbeat, Get-WinEvent) says so."""
    if isinstance(keywords, list):
        return any(audit_failure(k) for k in keywords)
    if isinstance(keywords, str):
        text = keywords.strip()
        try:
            number = int(text, 16) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            return text.lower().replace("_", " ") in ("audit failure", "failure audit", "failureaudit")
        return bool(number & _AUDIT_FAILURE)
    return isinstance(keywords, int) and not isinstance(keywords, bool) and bool(keywords & _AUDIT_FAILURE)


def _winlogbeat(obj: dict[str, Any]) -> ParsedRecord:
    """Elastic Winlogbeat / Elastic Agent JSON (``winlog`` object)."""
    win = obj["winlog"]
    system = {"provider": win.get("provider_name"), "event_id": win.get("event_id") or field(obj, "event.code"),
              "time": obj.get("@timestamp"), "computer": win.get("computer_name"),
              "channel": win.get("channel"), "record_id": win.get("record_id"),
              "keywords": win.get("keywords"), "user_sid": (win.get("user") or {}).get("identifier")}
    rec = _build(system, dict(win.get("event_data") or {}), {})
    level_name = field(obj, "log.level")
    named = levels.from_name(level_name) if isinstance(level_name, str) else None
    if named is not None and (named != levels.INFO or rec.level == levels.INFO):
        rec.level = named
    if audit_failure(win.get("keywords")) and rec.level == levels.INFO:
        rec.level = levels.WARNING
    if not rec.user_id or rec.user_id == rec.attributes.get("user_sid"):
        rec.user_id = as_str(field(obj, "user.name")) or rec.user_id
    action = field(obj, "event.action")
    if obj.get("message"):
        rec.message = clip(str(obj["message"]))
    elif isinstance(action, str) and not win.get("event_data"):
        rec.message = clip(f"{rec.message}: {action}")
    return rec


def _flat(obj: dict[str, Any]) -> ParsedRecord:
    """A flat export (NXLog, Get-WinEvent, Splunk's fields, Winlogbeat before 7 or flattened)."""
    event_id = _event_id(obj)
    provider = as_str(_first(obj, _PROVIDER_KEYS)[1])
    channel = as_str(_first(obj, _CHANNEL_KEYS)[1])
    time_key, time_value = _first(obj, _TIME_KEYS)
    message_key, message = _first(obj, _MESSAGE_KEYS)
    data = _first(obj, _DATA_KEYS)[1]
    data = data if isinstance(data, dict) else {}
    attrs = {k: v for k, v in obj.items() if k not in (time_key, message_key)}
    attrs.update(event_id=event_id, channel=channel, computer=as_str(_first(obj, _COMPUTER_KEYS)[1]))
    if not isinstance(message, str):
        summary = " ".join(f"{k}={_render(v)}" for k, v in data.items() if v not in (None, "", "-"))
        headline = f"{event_id} {provider or channel}"
        message = f"{headline}: {summary}" if summary else headline
    return ParsedRecord(format=NAME, message=clip(message), timestamp=timestamps.parse_any(time_value),
                        level=_flat_level(obj), service=provider or channel, user_id=_flat_user(obj, data),
                        error_code=as_str(data.get("Status") or obj.get("Status") or data.get("FailureReason")),
                        attributes=attrs)


def _flat_level(obj: dict[str, Any]) -> str:
    """A level name (``Information``, NXLog's ``INFO``/``AUDIT_FAILURE``) or number (``Level`` 0..5); an audit
    failure is at least a WARNING."""
    level = None
    for key in _LEVEL_KEYS:
        value = field(obj, key)
        number = as_int(value) if key in ("Level", "level") else None
        if number is not None:
            level = levels.from_windows(number)
        elif isinstance(value, str):
            level = levels.from_name(value)
        if level is not None:
            break
    level = level or levels.INFO
    if level == levels.INFO and audit_failure(_first(obj, _KEYWORD_KEYS)[1]):
        return levels.WARNING
    return level


def _flat_user(obj: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The account named in the event data (NXLog puts it at the top), else the user's SID."""
    for source in (data, obj):
        for key in _USER_KEYS:
            name = as_str(source.get(key))
            if name:
                return name
    name = as_str(field(obj, "user.name"))
    if name:
        return name
    sid = _first(obj, _SID_KEYS)[1]
    return as_str(sid.get("Value")) if isinstance(sid, dict) else as_str(sid)


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
