"""Ingest protocols beyond the native JSON API, one module each; importing this package registers them all."""
from __future__ import annotations

import importlib
import pkgutil

from logwarden.collector.protocols.base import (HttpProtocol, ProtocolAnswer, ProtocolRequest, register_protocol,
                                                registered_protocols)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["HttpProtocol", "ProtocolAnswer", "ProtocolRequest", "register_protocol", "registered_protocols"]
