"""Forward as syslog (RFC 5424, octet-counted over TCP, RFC 6587; TLS optional, RFC 5425) with a CEF payload.

    storage:
      forward:
        - type: syslog_cef
          url: tls://siem.example.com:6514   # tcp://host:port, or tls://host:port
          ca_file: /etc/ssl/siem-ca.pem      # tls: the CA to trust (unset: the system's); verify: false to skip
          facility: 16                        # local0 (the default); 0..23
          hostname: web-gw-1                  # the HOSTNAME of the header when a record has no host

Each record is one frame ``<LEN> <PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - CEF:0|...``: PRI from the
facility and the level (DEBUG 7, INFO 6, WARNING 4, ERROR 3, CRITICAL 2), APP-NAME the service, MSGID
``logwarden``. The CEF header is ``CEF:0|<vendor>|<service>|<version>|<template id or "log">|<message,
first line>|<severity>`` with severity DEBUG 1, INFO 3, WARNING 5, ERROR 8, CRITICAL 10 (the CEF bands
low, medium, high, very high); the extension carries ``rt`` (event time, epoch ms), ``msg`` (the
whole message), ``suser``, ``externalId`` (request id), ``outcome=failure reason=<error code>``,
``dvchost``, and ``cs1``..``cs3`` (tenant, record id, level) and ``cfp1`` (duration_ms) with their labels.
Header fields escape ``\\`` and ``|``, extension values ``\\``, ``=`` and line breaks, as the CEF
specification says.

TCP has no acknowledgement: a frame the receiver had read but not processed when it died is lost. Before
each request the connection is checked for a close by the peer, so a receiver that restarted gets a new
connection instead of frames written into a dead one.
"""
from __future__ import annotations

import select
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from logwarden.common.yamlconf import ConfigError, check_bool, check_int, check_mapping, check_str, describe
from logwarden.storage.forward.base import COMMON_KEYS, Predicate, Retriable, Sink, SinkOptions, check_url, flat_rows

TYPE = "syslog_cef"
SYSLOG_SEVERITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
CEF_SEVERITY = {"DEBUG": 1, "INFO": 3, "WARNING": 5, "ERROR": 8, "CRITICAL": 10}
MAX_NAME = 512
_HEADER_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "\r": " ", "\n": " "})
_VALUE_ESCAPES = str.maketrans({"\\": "\\\\", "=": "\\=", "\r": "\\r", "\n": "\\n"})


def header_field(value: Any) -> str:
    """A CEF header field: ``\\`` and ``|`` escaped, line breaks made spaces."""
    return str(value).translate(_HEADER_ESCAPES)


def extension_value(value: Any) -> str:
    """A CEF extension value: ``\\``, ``=`` and line breaks escaped."""
    return str(value).translate(_VALUE_ESCAPES)


def _token(value: Any, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, at most ``limit`` long, ``-`` when empty."""
    text = "".join(c for c in str(value or "") if 33 <= ord(c) <= 126)[:limit]
    return text or "-"


@dataclass(frozen=True)
class SyslogCefConfig:
    """``storage.forward[i]`` with ``type: syslog_cef``."""

    options: SinkOptions
    host: str
    port: int
    tls: bool = False
    verify: bool = True
    ca_file: str | None = None
    facility: int = 16
    hostname: str = ""
    vendor: str = "logwarden"
    version: str = "1"

    KEYS = (*COMMON_KEYS, "verify", "ca_file", "facility", "hostname", "vendor", "version")

    @classmethod
    def from_dict(cls, section: Any, where: tuple) -> "SyslogCefConfig":
        """The sink's settings; ConfigError with the key path on a bad value."""
        section = check_mapping(section, where, cls.KEYS)
        url = check_url(section.get("url"), (*where, "url"), ("tcp", "tls"))
        host, _, port = url.split("://", 1)[1].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError.at((*where, "url"), f"expected tcp://HOST:PORT or tls://HOST:PORT, got {describe(url)}")
        kwargs: dict[str, Any] = {"host": host.strip("[]"), "port": int(port), "tls": url.startswith("tls://"),
                                  "verify": check_bool(section.get("verify", True), (*where, "verify"))}
        if section.get("ca_file") is not None:
            kwargs["ca_file"] = check_str(section["ca_file"], (*where, "ca_file"))
        if "facility" in section:
            kwargs["facility"] = check_int(section["facility"], (*where, "facility"), minimum=0, maximum=23)
        for key in ("hostname", "vendor", "version"):
            if section.get(key) is not None:
                kwargs[key] = check_str(section[key], (*where, key))
        return cls(SinkOptions.from_dict(section, where, url), **kwargs)

    def build(self, data_dir: Path, predicate: Predicate | None = None) -> "SyslogCefSink":
        """The sink (not started)."""
        return SyslogCefSink(self, data_dir, predicate)


def cef_payload(row: dict[str, Any], vendor: str, version: str) -> str:
    """The CEF event of a flat record (see :func:`~logwarden.storage.forward.base.flat_rows`)."""
    level = str(row.get("level") or "INFO").upper()
    message = str(row.get("message") or "")
    name = message.splitlines()[0][:MAX_NAME] if message.strip() else "log"
    head = ["CEF:0", header_field(vendor), header_field(row.get("service") or "unknown"), header_field(version),
            header_field(row.get("template_id") or "log"), header_field(name), str(CEF_SEVERITY.get(level, 3))]
    ext: list[tuple[str, Any]] = [("rt", row["_time_us"] // 1000)]
    for key, field in (("suser", "user_id"), ("externalId", "request_id"), ("dvchost", "host")):
        if row.get(field) is not None:
            ext.append((key, row[field]))
    if row.get("error_code") is not None:
        ext += [("outcome", "failure"), ("reason", row["error_code"])]
    for index, field in enumerate(("tenant", "record_id", "level"), start=1):
        if row.get(field) is not None:
            ext += [(f"cs{index}Label", field), (f"cs{index}", row[field])]
    if row.get("duration_ms") is not None:
        ext += [("cfp1Label", "duration_ms"), ("cfp1", row["duration_ms"])]
    ext.append(("msg", message))  # last: the longest value, and the one most likely to hold spaces
    return "|".join(head) + "|" + " ".join(f"{key}={extension_value(value)}" for key, value in ext)


def syslog_frame(row: dict[str, Any], config: SyslogCefConfig) -> bytes:
    """One octet-counted RFC 5424 frame with the record's CEF event as its message."""
    level = str(row.get("level") or "INFO").upper()
    pri = config.facility * 8 + SYSLOG_SEVERITY.get(level, 6)
    stamp = row["timestamp"]
    header = (f"<{pri}>1 {stamp} {_token(row.get('host') or config.hostname or socket.gethostname(), 255)} "
              f"{_token(row.get('service'), 48)} - logwarden -")
    message = f"{header} {cef_payload(row, config.vendor, config.version)}".encode("utf-8", "replace")
    return str(len(message)).encode() + b" " + message


class SyslogCefSink(Sink):
    """Writes frames to one TCP (or TLS) connection, reconnecting when it breaks."""

    def __init__(self, config: SyslogCefConfig, data_dir: Path, predicate: Predicate | None = None) -> None:
        super().__init__(config.options, data_dir, predicate)
        self.config = config
        self._socket: socket.socket | None = None
        self._context = self._tls_context() if config.tls else None

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def encode(self, table: pa.Table) -> list[bytes]:
        """One frame per record."""
        return [syslog_frame(row, self.config) for row in flat_rows(table)]

    def send(self, items: list[bytes]) -> None:
        """Write the frames; a broken or closed connection is Retriable (the next try connects again)."""
        try:
            connection = self._connection()
            connection.sendall(b"".join(items))
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise Retriable(f"{self.config.host}:{self.config.port}: {exc}") from None

    def _connection(self) -> socket.socket:
        if self._socket is not None and self._peer_closed(self._socket):
            self.close()
        if self._socket is None:
            raw = socket.create_connection((self.config.host, self.config.port), timeout=self.options.timeout_seconds)
            try:
                self._socket = self._context.wrap_socket(raw, server_hostname=self.config.host) \
                    if self._context is not None else raw
            except (OSError, ssl.SSLError):
                raw.close()
                raise
        return self._socket

    def _peer_closed(self, sock: socket.socket) -> bool:
        """Whether the receiver closed (or reset) the connection: readable with nothing to read."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            if isinstance(sock, ssl.SSLSocket):
                sock.setblocking(False)
                try:
                    return sock.recv(1) == b""
                except ssl.SSLWantReadError:
                    return False
                finally:
                    sock.settimeout(self.options.timeout_seconds)
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        """Close the connection."""
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
            self._socket = None
