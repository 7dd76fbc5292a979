"""Who may do what: one authenticator for every HTTP surface of logwarden, and the collector's stream
allow-lists.

A token maps to a :class:`Principal` ``(tenant, role)``. Roles: ``ingest`` (send logs), ``read``
(search, alerts, metrics, the dashboard) and ``admin`` (acknowledge, feedback; implies read and
ingest). The tenant ``"*"`` is an operator's: it sees every tenant (and its logs are recorded under
the default tenant). The tokens come from the ``auth:`` section of ``logwarden.yaml``, plus the
collector's older ``collector.tokens`` (token -> tenant), which are ingest tokens::

    auth:
      tokens:
        "${OPS_TOKEN}": {tenant: "*", role: admin}
        "${TEAM_A_READ}": {tenant: team-a, role: read}

Without any token configured, only loopback clients are served (IPv4-mapped IPv6 included), as the
local operator (every tenant, admin). Requests carry ``Authorization: Bearer <token>`` (the scheme is
case-insensitive); every configured token is compared in constant time, on each request.

Refusals are :class:`AuthError`: 401 for missing or invalid credentials (answer with
``WWW-Authenticate: Bearer``), 403 for a principal that may not do what it asked, or a client off
loopback when no token is configured. The tenant of a record always comes from here, never from the
record itself.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from logwarden.common.yamlconf import ConfigError, describe

log = logging.getLogger(__name__)

INGEST, READ, ADMIN = "ingest", "read", "admin"
ROLES = (INGEST, READ, ADMIN)
ALL_TENANTS = "*"
DEFAULT_TENANT = "default"
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
MIN_TOKEN_LENGTH = 16
REDACTED = "<redacted>"


class AuthError(Exception):
    """A request was refused: ``status`` 401 (no or invalid credentials) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """The response headers of the refusal (``WWW-Authenticate`` on a 401)."""
        return {"WWW-Authenticate": 'Bearer realm="logwarden"'} if self.status == 401 else {}


@dataclass(frozen=True)
class Principal:
    """Who a request is: a tenant (``"*"``: every tenant) and a role."""

    tenant: str
    role: str
    name: str = field(default="token", compare=False)  # for messages and logs; never the token

    def allows(self, role: str) -> bool:
        """Whether this principal may act as ``role`` (admin implies read and ingest)."""
        return self.role == ADMIN or self.role == role

    @property
    def all_tenants(self) -> bool:
        """Whether this principal sees every tenant."""
        return self.tenant == ALL_TENANTS

    @property
    def tenant_filter(self) -> str | None:
        """The tenant to confine reads to; None means every tenant."""
        return None if self.all_tenants else self.tenant

    def ingest_tenant(self, default: str) -> str:
        """The tenant given to the records this principal sends (``default`` for an operator's)."""
        return default if self.all_tenants else self.tenant

    def __str__(self) -> str:
        return f"{self.name} (tenant {self.tenant}, role {self.role})"


def _refuse(keys: tuple, problem: str) -> ConfigError:
    """A ConfigError at ``keys`` (the real key path, for the line number) whose message shows every
    token as ``<redacted>``: ``auth.tokens.<redacted>.role: ...``."""
    shown = [REDACTED if n == 2 and keys[:2] == ("auth", "tokens") else str(k) for n, k in enumerate(keys)]
    return ConfigError.at(keys, problem, key=".".join(shown))


@dataclass(frozen=True)
class AuthConfig:
    """The configured tokens: token -> Principal. Never printed with its tokens."""

    tokens: Mapping[str, Principal] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"AuthConfig({len(self.tokens)} token(s))"

    @classmethod
    def from_dict(cls, section: Any) -> "AuthConfig":
        """The ``auth:`` section (None: no tokens; ``${NAME}`` was expanded by the YAML loader). Raises
        ConfigError with the key path from the file's root (``auth.tokens.<redacted>.role``), every token
        shown as ``<redacted>``."""
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise _refuse(("auth",), "expected a mapping with a 'tokens' mapping")
        for name in section:
            if name != "tokens":
                raise _refuse(("auth", str(name)), "unknown key (known keys: tokens)")
        raw = section.get("tokens")
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise _refuse(("auth", "tokens"), "expected a mapping of token -> {tenant, role}")
        tokens: dict[str, Principal] = {}
        for number, (key, grant) in enumerate(raw.items(), 1):
            keys = ("auth", "tokens", key)
            if not isinstance(key, str):
                raise _refuse(keys, "a token must be a string")
            token = key.strip()
            if len(token) < MIN_TOKEN_LENGTH:
                raise _refuse(keys, f"a token must be at least {MIN_TOKEN_LENGTH} characters long")
            if token in tokens:
                raise _refuse(keys, "the same token is configured twice")
            tokens[token] = _principal(grant, keys, f"auth token #{number}")
        return cls(tokens)

    def with_ingest_tokens(self, ingest: Mapping[str, str] | None) -> "AuthConfig":
        """These tokens plus ``ingest`` (``collector.tokens``: token -> tenant) as ingest tokens. A token
        in both must allow ingest for the same tenant here, else ConfigError."""
        if not ingest:
            return self
        tokens = dict(self.tokens)
        for number, (token, tenant) in enumerate(ingest.items(), 1):
            known = tokens.get(token)
            if known is None:
                tokens[token] = Principal(tenant, INGEST, f"collector token #{number}")
            elif known.tenant != tenant or not known.allows(INGEST):
                raise _refuse(("auth", "tokens", token),
                              f"this token is also in collector.tokens with tenant {tenant!r}, but here it "
                              f"has tenant {known.tenant!r} and role {known.role}")
        return AuthConfig(tokens)

    def token_for(self, role: str, tenant: str | None = None) -> str | None:
        """The first configured token that allows ``role`` (of ``tenant`` when given), or None."""
        for token, principal in self.tokens.items():
            if principal.allows(role) and (tenant is None or principal.tenant == tenant):
                return token
        return None


def _principal(grant: Any, keys: tuple, name: str) -> Principal:
    if not isinstance(grant, Mapping):
        raise _refuse(keys, "expected a mapping {tenant: ..., role: ingest|read|admin}")
    for key in grant:
        if key not in ("tenant", "role"):
            raise _refuse(keys + (str(key),), "unknown key (known keys: role, tenant)")
    tenant, role = grant.get("tenant"), grant.get("role")
    if not isinstance(tenant, str) or not tenant.strip():
        raise _refuse(keys + ("tenant",), f'expected a tenant name, or "*" for every tenant, got {describe(tenant)}')
    if role not in ROLES:
        raise _refuse(keys + ("role",), f"{describe(role)} is not one of {', '.join(ROLES)}")
    return Principal(tenant.strip(), role, name)


# Networks ---------------------------------------------------------------------------------------------
def parse_networks(networks: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Networks from their text (``10.0.0.0/8``, ``::1/128``, a bare address)."""
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


_LOOPBACK = parse_networks(LOOPBACK_NETWORKS)


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` is a loopback address (IPv4-mapped IPv6 included)."""
    return in_networks(address, _LOOPBACK)


@lru_cache(maxsize=4096)
def in_networks(address: str | None, networks: tuple) -> bool:
    """Whether ``address`` (IPv4-mapped IPv6 read as IPv4) is in one of ``networks``."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


# Schemes ----------------------------------------------------------------------------------------------
def _token_credentials(credentials: str) -> str | None:
    """The token of ``Bearer <token>`` credentials."""
    token = credentials.strip()
    return token or None


def _basic_password(credentials: str) -> str | None:
    """The password of ``Basic base64(user:password)`` credentials: the token (the user is ignored), for
    shippers that can only send basic authentication (Fluent Bit's and Logstash's Elasticsearch outputs)."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    _, separator, password = decoded.partition(":")
    return password or None if separator else None


# Authorization schemes (lower case) -> the token in their credentials: ``Bearer <token>``, Splunk HEC's
# ``Splunk <token>``, and ``Basic`` with the token as the password. Another scheme is one more entry.
SCHEMES: dict[str, Callable[[str], str | None]] = {
    "bearer": _token_credentials,
    "splunk": _token_credentials,
    "basic": _basic_password,
}


def _digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


class Authenticator:
    """Maps request credentials to a Principal; without tokens, serves loopback clients only."""

    def __init__(
        self,
        tokens: Mapping[str, Principal] | AuthConfig | None = None,
        default_tenant: str = DEFAULT_TENANT,
        stream_tenant: str = DEFAULT_TENANT,
        stream_networks: tuple[str, ...] = LOOPBACK_NETWORKS,
        schemes: tuple[str, ...] = tuple(SCHEMES),
    ) -> None:
        if isinstance(tokens, AuthConfig):
            tokens = tokens.tokens
        # Digests of equal length: compare_digest then takes the same time whatever is presented.
        self._tokens = [(_digest(token), principal) for token, principal in (tokens or {}).items()]
        self.default_tenant = default_tenant
        self.stream_tenant = stream_tenant
        self._stream_networks = parse_networks(stream_networks)
        unknown = [s for s in schemes if s.lower() not in SCHEMES]
        if unknown:
            raise ValueError(f"unknown authorization scheme(s): {', '.join(unknown)}")
        self.schemes = tuple(s.lower() for s in schemes)
        self.local = Principal(ALL_TENANTS, ADMIN, "loopback client")

    @classmethod
    def from_config(cls, auth: AuthConfig | None, ingest_tokens: Mapping[str, str] | None = None,
                    **options: Any) -> "Authenticator":
        """The authenticator of ``auth`` plus the collector's ``ingest_tokens`` (token -> tenant)."""
        return cls((auth or AuthConfig()).with_ingest_tokens(ingest_tokens), **options)

    @property
    def open_to_loopback_only(self) -> bool:
        """Whether no token is configured (HTTP clients are then accepted from loopback only)."""
        return not self._tokens

    def principal_of_token(self, token: str | None) -> Principal | None:
        """The principal of ``token``, or None; every configured token is compared, in constant time."""
        if not token:
            return None
        presented = _digest(token)
        found = None
        for digest, principal in self._tokens:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(digest, presented):
                found = principal
        return found

    def token_of(self, authorization: str | None) -> str | None:
        """The token of an ``Authorization`` header; AuthError(401) when it is missing or not usable."""
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if not scheme:
            raise AuthError(401, "missing credentials (Authorization: Bearer <token>)")
        if scheme.lower() not in self.schemes:
            raise AuthError(401, f"unsupported authorization scheme {scheme[:20]!r} (use Bearer)")
        token = SCHEMES[scheme.lower()](credentials)
        if token is None:
            raise AuthError(401, "missing token after the authorization scheme")
        return token

    def authenticate(self, authorization: str | None, peer: str | None, token: str | None = None) -> Principal:
        """Who sends a request from ``peer`` with this ``Authorization`` header (or this bare ``token``,
        e.g. from a form); AuthError otherwise."""
        if not self._tokens:
            if not is_loopback(peer):
                raise AuthError(403, "no tokens are configured: only loopback clients are accepted")
            return self.local
        if token is None:
            token = self.token_of(authorization)
        principal = self.principal_of_token(token)
        if principal is None:
            raise AuthError(401, "invalid token")
        return principal

    @staticmethod
    def check(principal: Principal, role: str, all_tenants: bool = False) -> Principal:
        """``principal`` when it may act as ``role`` (over every tenant when ``all_tenants``); else 403."""
        if not principal.allows(role):
            raise AuthError(403, f"{principal} may not do this: it needs role {role}")
        if all_tenants and not principal.all_tenants:
            raise AuthError(403, f"{principal} may not do this: it concerns every tenant (needs tenant \"*\")")
        return principal

    def authorize(self, authorization: str | None, peer: str | None, role: str, all_tenants: bool = False,
                  token: str | None = None) -> Principal:
        """:meth:`authenticate`, then :meth:`check`."""
        return self.check(self.authenticate(authorization, peer, token), role, all_tenants)

    def http_tenant(self, authorization: str | None, peer: str | None) -> str:
        """The tenant of the records an HTTP request sends (role ingest), or AuthError."""
        return self.authorize(authorization, peer, INGEST).ingest_tenant(self.default_tenant)

    def stream_allowed(self, peer: str | None) -> bool:
        """Whether a TCP or syslog peer may send."""
        return in_networks(peer, self._stream_networks)
