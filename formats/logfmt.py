"""logfmt: ``key=value key2="quoted value"`` lines (Heroku, logrus, go-kit, Grafana...)."""
from __future__ import annotations

import re

from logwarden.formats.common import MAX_RECORD_BYTES, decode, error_record
from logwarden.formats.json_app import map_fields
from logwarden.formats.record import ParsedRecord

NAME = "logfmt"

_PAIR = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)|(\S+)')
_SNIFF = re.compile(rb'[A-Za-z_@][\w.@-]*=(?:"|[^\s=]*(?:\s|$))')
_ESCAPES = {"\\\"": "\"", "\\\\": "\\", "\\n": "\n", "\\t": "\t", "\\r": "\r"}
_ESCAPE_RE = re.compile(r'\\["\\ntr]')


def sniff(data: bytes) -> float:
    """Confidence from how much of the line is made of ``key=value`` pairs (≥ 2 needed)."""
    if not _SNIFF.match(data):
        return 0.0
    pairs = len(_SNIFF.findall(data[:2048]))
    if pairs < 2:
        return 0.0
    return 0.9 if pairs >= 3 else 0.75


def split_pairs(text: str) -> tuple[dict[str, object], list[str]]:
    """Split a logfmt line into a dict (unquoted values) and the list of bare words."""
    fields: dict[str, object] = {}
    bare: list[str] = []
    for key, value, word in _PAIR.findall(text):
        if word:
            bare.append(word)
        elif value.startswith('"') and value.endswith('"') and len(value) >= 2:
            fields[key] = _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], value[1:-1])
        else:
            fields[key] = value
    return fields, bare


def parse(data: bytes | str) -> ParsedRecord:
    """Parse one logfmt line; the known keys map like JSON logs (time, level, msg...)."""
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    text, invalid = decode(data)
    fields, bare = split_pairs(text.strip())
    if not fields:
        return error_record(data, "logfmt: no key=value pairs")
    rec = map_fields(dict(fields), NAME)
    if bare:
        rec.attributes["_bare"] = bare
        if not rec.message:
            rec.message = " ".join(bare)
    if invalid:
        rec.attributes["invalid_utf8"] = True
    return rec
