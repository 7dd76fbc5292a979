"""Format detection: first-byte/prefix dispatch, then a confirming check by the format's sniffer."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from logwarden.formats import (access_log, cef, cloudtrail, containers, leef, logfmt, panos, syslog3164, syslog5424,
               text, windows_event)
from logwarden.formats.common import BOM, MAX_RECORD_BYTES, to_bytes
from logwarden.formats.files import RawRecord

#: How many records :func:`detect_stream` samples.
STREAM_SAMPLE = 500
_WS = b" \t\r\n"


class Detection(NamedTuple):
    """The detected format name and a confidence in [0, 1]."""

    format: str
    confidence: float


TEXT_FALLBACK = Detection(text.NAME, 0.2)


def detect(record: bytes | str | dict[str, Any] | RawRecord) -> Detection:
    """Name the format of one record (bytes, text, decoded dict or :class:`RawRecord`)."""
    if isinstance(record, RawRecord):
        if record.hint:
            return Detection(record.hint, 0.95)
        record = record.data
    if isinstance(record, dict):
        return detect_dict(record)
    return detect_bytes(to_bytes(record))


def detect_dict(obj: dict[str, Any]) -> Detection:
    """Name the format of an already-decoded JSON object (envelopes with ``_raw`` are unwrapped)."""
    if containers.is_docker_json(obj):
        return Detection(containers.DOCKER, 0.97)
    raw = obj.get("_raw")
    if isinstance(raw, str) and raw:
        inner = detect_bytes(raw.encode("utf-8", "surrogatepass"))
        if inner.format != text.NAME:
            return Detection(inner.format, round(inner.confidence * 0.98, 4))
    trail = cloudtrail.find(obj)
    if trail is not None:
        return Detection(cloudtrail.NAME, trail.confidence)
    windows = windows_event.confidence(obj)
    if windows:
        return Detection(windows_event.NAME, windows)
    return Detection("json", 0.95)


def detect_bytes(data: bytes) -> Detection:
    """Name the format of one raw record."""
    if data[:1] in (b" ", b"\t", b"\r", b"\n", b"\xef"):
        data = data.lstrip(_WS)
        if data.startswith(BOM):
            data = data[3:].lstrip(_WS)
    if not data:
        return Detection(text.NAME, 0.05)
    first = data[:1]
    if first == b"{":
        return _detect_json(data)
    if first == b"<":
        return _detect_angle(data)
    if first.isdigit() and containers.sniff_cri(data):  # before syslog: "TIME stdout F ..." is no host
        return Detection(containers.CRI, 0.97)
    confidence = syslog3164.sniff(data)
    if confidence:
        if first.isdigit() and access_log.sniff(data) > confidence:  # ELB lines start with ISO time
            return Detection(access_log.NAME, access_log.sniff(data))
        return _embedded(data) or Detection(syslog3164.NAME, confidence)
    return _detect_other(data)


def _detect_json(data: bytes) -> Detection:
    """Parse to confirm; dicts are classified by their keys, broken JSON is json with low confidence."""
    if len(data) > MAX_RECORD_BYTES:
        return Detection(text.NAME, 0.1)
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        for sniffer in (cloudtrail, windows_event):
            if sniffer.sniff(data):
                return Detection(sniffer.NAME, 0.4)
        return Detection("json", 0.4)
    return detect_dict(obj) if isinstance(obj, dict) else Detection("json", 0.3)


def _detect_angle(data: bytes) -> Detection:
    """``<Event``/``<?xml`` is Windows Event XML; ``<PRI>`` is syslog (5424 if VERSION follows)."""
    if data.startswith((b"<Event", b"<?xml")):
        return Detection(windows_event.NAME, 0.97 if b"<Event" in data[:200] else 0.5)
    embedded = _embedded(data)
    if embedded:
        return embedded
    c5424 = syslog5424.sniff(data)
    c3164 = syslog3164.sniff(data)
    if c5424 >= c3164 and c5424:
        return Detection(syslog5424.NAME, c5424)
    if c3164:
        return Detection(syslog3164.NAME, c3164)
    return Detection(text.NAME, 0.2)


def _embedded(data: bytes) -> Detection | None:
    """Formats carried inside a syslog envelope or a text line: Snare, Splunk's multiline Windows events,
    PAN-OS, CEF, LEEF."""
    head = data[:300]
    if b"MSWinEventLog\t" in head:
        return Detection(windows_event.NAME, 0.95)
    if b"\nEventCode=" in head and windows_event.is_splunk_multiline(data):
        return Detection(windows_event.NAME, 0.9)
    if b"CEF:" in head and cef.sniff(data):
        return Detection(cef.NAME, cef.sniff(data))
    if b"LEEF:" in head and leef.sniff(data):
        return Detection(leef.NAME, leef.sniff(data))
    if b"," in head and b"/" in head:
        confidence = panos.sniff(data)
        if confidence:
            return Detection(panos.NAME, confidence)
    return None


def _detect_other(data: bytes) -> Detection:
    """No syslog/JSON/XML prefix: embedded formats, access logs, logfmt, else text."""
    embedded = _embedded(data)
    if embedded:
        return embedded
    best = TEXT_FALLBACK if not text.looks_binary(data) else Detection(text.NAME, 0.05)
    for module in (access_log, logfmt):
        confidence = module.sniff(data)
        if confidence > best.confidence:
            best = Detection(module.NAME, confidence)
    return best


def detect_stream(records: Iterable[bytes | str | dict[str, Any] | RawRecord]) -> Detection:
    """The dominant format of a stream (first :data:`STREAM_SAMPLE` records).

    The confidence is the dominant format's share of the sample times its mean confidence;
    an empty stream is ``text`` with confidence 0.
    """
    counts: Counter[str] = Counter()
    sums: Counter[str] = Counter()
    for i, record in enumerate(records):
        if i >= STREAM_SAMPLE:
            break
        found = detect(record)
        counts[found.format] += 1
        sums[found.format] += found.confidence
    if not counts:
        return Detection(text.NAME, 0.0)
    name, count = counts.most_common(1)[0]
    total = sum(counts.values())
    return Detection(name, round(count / total * sums[name] / count, 4))
