"""Who may send: bearer tokens mapped to tenants for HTTP, network allow-lists for streams.

The tenant of a record always comes from here, never from the record itself.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from functools import lru_cache

log = logging.getLogger(__name__)

LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


class AuthError(Exception):
    """A request was refused; ``status`` is 401 (no credentials) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


_LOOPBACK = _parse(LOOPBACK_NETWORKS)


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` is a loopback address (IPv4-mapped IPv6 included)."""
    return _in_networks(address, _LOOPBACK)


@lru_cache(maxsize=4096)
def _in_networks(address: str | None, networks: tuple) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


class Authenticator:
    """Maps bearer tokens to tenants; without tokens, only loopback clients are served."""

    def __init__(
        self,
        tokens: dict[str, str],
        default_tenant: str,
        stream_tenant: str,
        stream_networks: tuple[str, ...],
    ) -> None:
        self._tokens = [(token.encode(), tenant) for token, tenant in tokens.items()]
        self.default_tenant = default_tenant
        self.stream_tenant = stream_tenant
        self._stream_networks = _parse(stream_networks)

    @property
    def open_to_loopback_only(self) -> bool:
        """Whether HTTP clients are accepted from loopback only (no tokens configured)."""
        return not self._tokens

    def http_tenant(self, authorization: str | None, peer: str | None) -> str:
        """The tenant of an HTTP request from ``peer`` with this ``Authorization`` header, or AuthError."""
        if not self._tokens:
            if not is_loopback(peer):
                raise AuthError(403, "no tokens are configured: only loopback clients are accepted")
            return self.default_tenant
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise AuthError(401, "missing bearer token (Authorization: Bearer <token>)")
        presented = credentials.strip().encode()
        tenant = None
        for token, candidate in self._tokens:  # compare every token, in constant time each
            if hmac.compare_digest(token, presented):
                tenant = candidate
        if tenant is None:
            raise AuthError(403, "unknown bearer token")
        return tenant

    def stream_allowed(self, peer: str | None) -> bool:
        """Whether a TCP or syslog peer may send."""
        return _in_networks(peer, self._stream_networks)
