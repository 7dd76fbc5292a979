"""Web access logs: common/combined (Apache, nginx, Tomcat, vhost prefixes), Apache SSL request
log, AWS ELB/ALB and W3C extended (IIS) lines. The HTTP status sets the level."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from logwarden.formats import levels, timestamps
from logwarden.formats.common import MAX_RECORD_BYTES, as_float, as_int, as_str, clip, decode, error_record
from logwarden.formats.record import ParsedRecord

NAME = "access-log"

_CLF_TIME = r"\[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)? [+-]\d{4})\]"
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
CLF = re.compile(r"((?:[^\s\[]+,? ){1,8})" + _CLF_TIME + r' "(.*?)"'
                 + r" (\d{3}|-) (\d+|-)(?: " + _QUOTED + " " + _QUOTED + ")?(.*)")
SSL_REQUEST = re.compile(_CLF_TIME + r" (\S+) (\S+) (\S+) " + _QUOTED + r" (\d+|-)")
ELB = re.compile(r"(?:(https?|h2|wss?|grpcs) )?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) (\S+) "
                 r"(\S+):(\d+) (\S+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (\d{3}|-) (\d{3}|-) "
                 r"(\d+) (\d+) " + _QUOTED + r"(?: " + _QUOTED + r")?(.*)")
W3C_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? .*? (?:GET|POST|HEAD|PUT|DELETE|"
                      r"OPTIONS|PATCH|PROPFIND|CONNECT|TRACE) .* \d{3}(?: |$)")
W3C_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(\S+)')
#: IIS default field order, used for W3C lines that come without a ``#Fields:`` directive.
IIS_DEFAULT_FIELDS = ("date", "time", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port",
                      "cs-username", "c-ip", "cs(User-Agent)", "cs(Referer)", "sc-status",
                      "sc-substatus", "sc-win32-status", "time-taken")
_SNIFF_CLF = re.compile(rb"\[\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)? [+-]\d{4}\] \"")
_SNIFF_SSL = re.compile(rb"\[\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] \S+ \S+ \S+ \"")


def sniff(data: bytes) -> float:
    """CLF ``[dd/Mon/yyyy:hh:mm:ss +zzzz] "`` early in the line, an ELB line, a W3C line/directive."""
    if data[:1] == b"#":
        return 0.9 if re.match(rb"#(Software|Version|Date|Fields|Start-Date|End-Date|Remark|GMT-Offset):",
                               data) else 0.0
    m = _SNIFF_CLF.search(data, 0, 300)
    if m:
        return 0.95 if re.match(rb"[^\s\[]+,? ", data) or data[:1] == b"[" else 0.0
    if data[:1] == b"[" and _SNIFF_SSL.match(data):
        return 0.9
    text = data[:1024].decode("latin-1")
    if ELB.match(text):
        return 0.9
    return 0.7 if W3C_LINE.match(text) else 0.0


def parse(data: bytes | str, fields: Sequence[str] | None = None) -> ParsedRecord:
    """Parse one access-log line; ``fields`` is the W3C ``#Fields:`` list when known."""
    if len(data) > MAX_RECORD_BYTES:
        return error_record(data[:MAX_RECORD_BYTES], f"record too large ({len(data)} bytes)")
    text, invalid = decode(data)
    text = text.rstrip("\r\n")
    rec = _parse_text(text, fields)
    if rec is None:
        return error_record(data, "access-log: unrecognized line")
    if invalid:
        rec.attributes["invalid_utf8"] = True
    return rec


def _parse_text(text: str, fields: Sequence[str] | None) -> ParsedRecord | None:
    """Try the variants in order of likelihood."""
    if text.startswith("#"):
        return _directive(text)
    if fields is not None:
        return _w3c(text, fields)
    m = CLF.match(text)
    if m:
        return _clf(m)
    m = SSL_REQUEST.match(text)
    if m:
        return _ssl(m)
    m = ELB.match(text)
    if m:
        return _elb(m)
    return _w3c(text, IIS_DEFAULT_FIELDS) if W3C_LINE.match(text) else None


def _request(request: str, attrs: dict[str, Any]) -> None:
    """Split ``GET /path HTTP/1.1`` into method/path/protocol attributes."""
    parts = request.split(" ")
    if len(parts) == 3:
        attrs["method"], attrs["path"], attrs["protocol"] = parts
    elif request and request != "-":
        attrs["request"] = request


def _status_record(message: str, status: int | None, attrs: dict[str, Any], **kw: Any) -> ParsedRecord:
    """Record with the level taken from the HTTP status."""
    level = levels.from_http_status(status) if status else levels.INFO
    return ParsedRecord(format=NAME, message=clip(message), level=level, attributes=attrs, **kw)


def _clf(m: re.Match[str]) -> ParsedRecord:
    """Common/combined log format, with an optional vhost and X-Forwarded-For chain."""
    prefix, stamp, request, status, size, referer, agent, rest = m.groups()
    tokens = prefix.split()
    attrs: dict[str, Any] = {}
    user = None
    if len(tokens) >= 3:
        user = tokens[-1]
        attrs["ident"] = tokens[-2]
        clients = " ".join(tokens[:-2])
        if re.match(r"[\w.-]+:\d+ ", clients):
            attrs["vhost"], _, clients = clients.partition(" ")
        attrs["client"] = clients.rstrip(",")
    else:
        attrs["client"] = tokens[0].rstrip(",")
        attrs["nonstandard"] = True
    _request(request, attrs)
    code = as_int(status)
    attrs.update(status=code, bytes=as_int(size))
    if referer is not None:
        attrs.update(referer=referer, user_agent=agent)
    if rest.strip():
        attrs["extra"] = rest.strip()
    return _status_record(f"{request} {status}", code, attrs,
                          timestamp=timestamps.parse_clf(stamp), user_id=as_str(user),
                          service=attrs.get("vhost"), duration_ms=_trailing_duration(rest))


def _trailing_duration(rest: str) -> float | None:
    """A trailing float like ``4.386`` (seconds) is taken as the request time."""
    last = rest.strip().rsplit(" ", 1)[-1] if rest.strip() else ""
    if re.fullmatch(r"\d+\.\d+", last):
        return float(last) * 1000.0
    return None


def _ssl(m: re.Match[str]) -> ParsedRecord:
    """Apache mod_ssl ``ssl_request_log``: time, client, protocol, cipher, request, size."""
    stamp, client, proto, cipher, request, size = m.groups()
    attrs: dict[str, Any] = {"client": client, "tls_protocol": proto, "tls_cipher": cipher,
                             "bytes": as_int(size)}
    _request(request, attrs)
    return _status_record(request, None, attrs, timestamp=timestamps.parse_clf(stamp))


def _elb(m: re.Match[str]) -> ParsedRecord:
    """AWS classic ELB / ALB access log line."""
    (kind, stamp, elb, client, port, backend, t1, t2, t3, status, backend_status, received,
     sent, request, agent, rest) = m.groups()
    attrs: dict[str, Any] = {"client": client, "client_port": int(port), "backend": backend,
                             "status": as_int(status), "backend_status": as_int(backend_status),
                             "bytes_received": int(received), "bytes": int(sent),
                             "user_agent": agent, "type": kind}
    _request(request, attrs)
    times = [float(t) for t in (t1, t2, t3) if float(t) >= 0]
    if rest.strip():
        attrs["extra"] = rest.strip()
    return _status_record(f"{request} {status}", as_int(status), attrs, service=elb,
                          timestamp=timestamps.parse_iso(stamp),
                          duration_ms=sum(times) * 1000.0 if times else None)


def _directive(text: str) -> ParsedRecord:
    """A W3C ``#Directive: value`` header line."""
    name, _, value = text[1:].partition(":")
    return ParsedRecord(format=NAME, message=text, attributes={"w3c_directive": name.strip(),
                                                                "value": value.strip()})


def _w3c(text: str, fields: Sequence[str]) -> ParsedRecord | None:
    """A W3C extended line mapped through its ``#Fields:`` names."""
    if not text.strip():
        return None
    values = [q.replace('""', '"') if q or tok == '""' else tok for q, tok in W3C_TOKEN.findall(text)]
    row = {name: value for name, value in zip(fields, values, strict=False) if value not in ("-", "")}
    if len(values) > len(fields):
        row["_extra"] = values[len(fields):]
    date = row.get("date") or row.get("date-local")
    time = row.get("time") or row.get("time-local")
    stamp = timestamps.parse_iso(f"{date} {time}") if date and time else None
    status = as_int(row.get("sc-status"))
    request = " ".join(x for x in (row.get("cs-method"), row.get("cs-uri-stem") or row.get("cs-uri"))
                       if x)
    taken = as_float(row.get("time-taken") or row.get("TimeTakenMS"))
    return _status_record(f"{request} {row.get('sc-status', '')}".strip(), status, row,
                          timestamp=stamp, user_id=as_str(row.get("cs-username") or row.get("c-auth-id")),
                          service=as_str(row.get("s-sitename") or row.get("s-computername")),
                          duration_ms=taken)
