"""TLS for the collector's listeners."""

from __future__ import annotations

import ssl

from logwarden.collector.config import TlsConfig


def server_context(tls: TlsConfig | None) -> ssl.SSLContext | None:
    """A server-side TLS context (TLS 1.2 or later) for ``tls``, or None when TLS is not configured."""
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls: cannot load {tls.cert_file} / {tls.key_file}: {exc}") from None
    return context
