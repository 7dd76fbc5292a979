"""The access settings every listener of the stack shares: one set of tokens, one certificate.

* Tokens: the ``auth:`` section (token -> tenant and role) plus the collector's older
  ``collector.tokens`` (token -> tenant), which are ingest tokens of their tenant.
* TLS: the top-level ``tls:`` section; the older ``collector.tls`` is read as the same setting. Either
  way it applies to every listener: the collector's HTTP, TCP and syslog-TCP, the API, the dashboard.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from logwarden.common.auth import AuthConfig, Authenticator
from logwarden.common.tls import TlsConfig
from logwarden.common.yamlconf import ConfigError

if TYPE_CHECKING:
    from logwarden.settings import Settings


def stack_auth(settings: "Settings") -> AuthConfig:
    """Every configured token; ConfigError when a token is in both places with different grants."""
    return settings.auth.with_ingest_tokens(settings.collector.tokens)


def stack_authenticator(settings: "Settings") -> Authenticator:
    """The one authenticator of the HTTP surfaces (collector, API, dashboard)."""
    collector = settings.collector
    return Authenticator.from_config(stack_auth(settings), default_tenant=collector.default_tenant,
                                     stream_tenant=collector.stream_tenant, stream_networks=collector.stream_networks)


def stack_tls(settings: "Settings") -> TlsConfig | None:
    """The certificate of every listener, or None; ConfigError when ``tls`` and ``collector.tls`` differ."""
    top, collector = settings.tls, settings.collector.tls
    if top is not None and collector is not None and top != collector:
        raise ConfigError.at(("collector", "tls"), "differs from the top-level tls: configure the certificate "
                                                   "once, in the top-level tls section")
    return top or collector
