"""TLS for every listener of logwarden, and for the stack's own clients of those listeners.

One certificate (the top-level ``tls:`` section of ``logwarden.yaml``, or the older ``collector.tls``)
serves the collector's HTTP, TCP and syslog-TCP listeners, the API port and the dashboard::

    tls: {cert_file: /etc/logwarden/cert.pem, key_file: /etc/logwarden/key.pem}

The stack talks to its own listeners (the collector's health probe, the demo traffic, the dashboard's
metrics scrape) through :func:`client_context`, which trusts that one certificate and nothing else: the
peer must hold its private key, whatever name or address it is reached by.
"""
from __future__ import annotations

import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logwarden.common.yamlconf import ConfigError, check_mapping, check_str

__all__ = ["TlsConfig", "client_context", "local_opener", "scheme", "server_context"]


@dataclass(frozen=True)
class TlsConfig:
    """A certificate chain and its private key (PEM files)."""

    cert_file: Path
    key_file: Path

    @classmethod
    def from_dict(cls, value: Any, keys: tuple = ("tls",)) -> "TlsConfig | None":
        """``{cert_file, key_file}`` at the key path ``keys`` (null: no TLS); ConfigError otherwise."""
        if value is None:
            return None
        value = check_mapping(value, keys, ("cert_file", "key_file"))
        for name in ("cert_file", "key_file"):
            if name not in value:
                raise ConfigError.at((*keys, name), "missing (TLS needs both cert_file and key_file)")
        return cls(Path(check_str(value["cert_file"], (*keys, "cert_file"))).expanduser(),
                   Path(check_str(value["key_file"], (*keys, "key_file"))).expanduser())


def scheme(tls: "TlsConfig | ssl.SSLContext | None") -> str:
    """``https`` with TLS, else ``http``."""
    return "https" if tls is not None else "http"


def server_context(tls: TlsConfig | None) -> ssl.SSLContext | None:
    """A server-side TLS context (TLS 1.2 or later) for ``tls``, or None when TLS is not configured;
    ValueError when the files cannot be loaded."""
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls: cannot load {tls.cert_file} / {tls.key_file}: {exc}") from None
    return context


def client_context(tls: TlsConfig | None) -> ssl.SSLContext | None:
    """A client context that trusts the configured certificate only (None without TLS).

    For the stack's own connections to its listeners: the chain is verified against ``cert_file``
    alone (no system CAs), so only a holder of the configured key is accepted; the host name is not
    checked, since the stack may reach its listeners by an address the certificate does not name.
    """
    if tls is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=str(tls.cert_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls: cannot load {tls.cert_file}: {exc}") from None
    # The configured certificate may be a leaf issued by a CA: trust it as it is.
    context.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    return context


def local_opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    """A urllib opener for the stack's own listeners: no proxy, and https verified with ``context``
    (see :func:`client_context`)."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)
