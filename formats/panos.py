"""Palo Alto Networks PAN-OS syslog CSV (TRAFFIC, THREAT, SYSTEM, CONFIG, CORRELATION, GP, HIP...)."""
from __future__ import annotations

import csv
import re
from typing import Any

from logwarden.formats import levels, timestamps
from logwarden.formats.common import MAX_RECORD_BYTES, as_float, as_str, clip, decode, error_record
from logwarden.formats.record import ParsedRecord
from logwarden.formats.syslog3164 import split_header

NAME = "panos"

_START = re.compile(r"(?:^|(?<=\s))\d,\d{4}/\d\d/\d\d \d\d:\d\d:\d\d,[^,]*,([A-Z]+),")
_SNIFF = re.compile(rb"(?:^|\s)\d,\d{4}/\d\d/\d\d \d\d:\d\d:\d\d,[^,]*,[A-Z]+,")

_SESSION = [(7, "src"), (8, "dst"), (9, "natsrc"), (10, "natdst"), (11, "rule"), (12, "srcuser"),
            (13, "dstuser"), (14, "app"), (15, "vsys"), (16, "from_zone"), (17, "to_zone"),
            (18, "inbound_if"), (19, "outbound_if"), (20, "log_action"), (22, "session_id"),
            (23, "repeat_count"), (24, "sport"), (25, "dport"), (26, "natsport"), (27, "natdport"),
            (28, "flags"), (29, "proto"), (30, "action")]
FIELDS: dict[str, list[tuple[int, str]]] = {
    "TRAFFIC": _SESSION + [(31, "bytes"), (32, "bytes_sent"), (33, "bytes_received"),
                           (34, "packets"), (35, "start_time"), (36, "elapsed_s"), (37, "category")],
    "THREAT": _SESSION + [(31, "misc"), (32, "threat_id"), (33, "category"), (34, "severity"),
                          (35, "direction")],
    "SYSTEM": [(7, "vsys"), (8, "event_id"), (9, "object"), (12, "module"), (13, "severity"),
               (14, "description")],
    "CONFIG": [(7, "host"), (8, "vsys"), (9, "command"), (10, "admin"), (11, "client"),
               (12, "result"), (13, "path")],
    "CORRELATION": [(7, "src"), (8, "srcuser"), (9, "vsys"), (10, "category"), (11, "severity"),
                    (17, "device_name"), (19, "object_name"), (20, "object_id"), (21, "evidence")],
    "GLOBALPROTECT": [(7, "vsys"), (8, "event_id"), (9, "stage"), (10, "auth_method"),
                      (11, "tunnel_type"), (12, "srcuser"), (13, "srcregion"), (14, "machine_name"),
                      (15, "public_ip"), (16, "public_ipv6"), (17, "private_ip"),
                      (18, "private_ipv6"), (19, "host_id"), (20, "serial_number"),
                      (21, "client_ver"), (22, "client_os"), (23, "client_os_ver")],
    "HIPMATCH": [(7, "srcuser"), (8, "vsys"), (9, "machine_name"), (10, "os"), (11, "src"),
                 (12, "match_name"), (13, "repeat_count"), (14, "match_type")],
}
_SEVERITY = {"informational": levels.INFO, "low": levels.INFO, "medium": levels.WARNING,
             "high": levels.ERROR, "critical": levels.CRITICAL}


def sniff(data: bytes) -> float:
    """A PAN-OS CSV body (``1,YYYY/MM/DD hh:mm:ss,SERIAL,TYPE,``) near the start of the line."""
    return 0.97 if _SNIFF.search(data[:200]) else 0.0


def parse(data: bytes | str) -> ParsedRecord:
    """Parse a PAN-OS log line (with or without syslog header(s)) into a record."""
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    text, invalid = decode(data)
    m = _START.search(text[:200])
    if not m:
        return error_record(data, "panos: no PAN-OS CSV body")
    try:
        row = next(csv.reader([text[m.start():].rstrip("\r\n")]))
    except (csv.Error, StopIteration) as exc:
        return error_record(data, f"panos: bad CSV: {exc}")
    rec = _record(row, text[:m.start()])
    if invalid:
        rec.attributes["invalid_utf8"] = True
    return rec


def _record(row: list[str], prefix: str) -> ParsedRecord:
    """Map the CSV columns of one log type onto the record."""
    log_type = row[3]
    attrs: dict[str, Any] = {"type": log_type, "subtype": row[4] if len(row) > 4 else "",
                             "serial": row[2], "receive_time": row[1]}
    for index, name in FIELDS.get(log_type, []):
        if index < len(row) and row[index] != "":
            attrs[name] = row[index]
    if log_type not in FIELDS:
        attrs["fields"] = row[7:]
    header = split_header(prefix)
    device = _device(prefix)
    stamp = timestamps.parse_slashed(row[6]) if len(row) > 6 else None
    rec = ParsedRecord(format=NAME, message=clip(_message(log_type, attrs)),
                       timestamp=stamp or timestamps.parse_slashed(row[1]),
                       level=_level(log_type, attrs), service=device or row[2],
                       user_id=as_str(attrs.get("srcuser")), attributes=attrs)
    if header and header[0].get("pri") is not None:
        attrs["syslog_pri"] = header[0]["pri"]
    if log_type == "TRAFFIC" and as_float(attrs.get("elapsed_s")) is not None:
        rec.duration_ms = as_float(attrs["elapsed_s"]) * 1000.0
    return rec


def _device(prefix: str) -> str | None:
    """The device name: the token right before the CSV body, unless it is part of a timestamp."""
    tokens = prefix.split()
    if not tokens:
        return None
    last = tokens[-1]
    return None if ":" in last or last.startswith("<") else last


def _message(log_type: str, a: dict[str, Any]) -> str:
    """A one-line summary per log type."""
    if log_type == "TRAFFIC":
        return (f"{a.get('subtype', '')} {a.get('app', '')} {a.get('src', '')}:{a.get('sport', '')}"
                f" -> {a.get('dst', '')}:{a.get('dport', '')} {a.get('action', '')}").strip()
    if log_type == "THREAT":
        return (f"{a.get('subtype', '')} {a.get('threat_id', '')} {a.get('src', '')} -> "
                f"{a.get('dst', '')} {a.get('action', '')}").strip()
    if log_type == "SYSTEM":
        return a.get("description") or a.get("event_id", "")
    if log_type == "CONFIG":
        action = " ".join(x for x in (a.get("command"), a.get("path")) if x)
        return f"{action} by {a.get('admin', '')}: {a.get('result', '')}"
    if log_type == "CORRELATION":
        return a.get("evidence") or a.get("object_name", "")
    if log_type == "GLOBALPROTECT":
        return f"{a.get('event_id', '')} {a.get('stage', '')} {a.get('srcuser', '')}".strip()
    if log_type == "HIPMATCH":
        return f"HIP match {a.get('match_name', '')} on {a.get('machine_name', '')}".strip()
    return ",".join(a.get("fields", []))


def _level(log_type: str, a: dict[str, Any]) -> str:
    """Severity for SYSTEM/THREAT/CORRELATION, action for TRAFFIC, result for CONFIG."""
    if "severity" in a:
        return _SEVERITY.get(str(a["severity"]).lower(), levels.INFO)
    action = str(a.get("action", "")).lower()
    if log_type == "TRAFFIC" and action and action != "allow":
        return levels.WARNING
    if log_type == "CONFIG" and str(a.get("result", "")).lower() == "failed":
        return levels.WARNING
    return levels.INFO
