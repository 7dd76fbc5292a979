"""The registry of rule kinds: what ``kind:`` may say in a rules file, its keys, and its class.

A kind is a ``Rule`` subclass (``add_data``/``advance``/``garbage_collect``) plus the JSON Schema of
the keys it adds to the common ones. Register a new kind with ``register_kind``; the class may be
given as ``"module:Class"`` so that its module (and its dependencies) load only when a rule of that
kind is built, and a kind with its own complete rule schema (such as ``ml``) passes ``schema``::

    register_kind("ml", "logwarden.monitoring.ml.rule:MlRule", schema="logwarden.monitoring.ml.schema:ML_RULE_SCHEMA")
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KindEntry:
    """One registered kind."""

    name: str
    target: Any  # the Rule subclass, or "module:attribute"
    properties: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    schema: Any = None  # a complete rule schema (dict or "module:attribute") replacing common + properties
    dependent_required: dict[str, list[str]] = field(default_factory=dict)


_KINDS: dict[str, KindEntry] = {}
_VERSION = [0]


def _load(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def register_kind(name: str, target: Any, properties: dict[str, Any] | None = None, required: tuple[str, ...] = (),
                  schema: Any = None, dependent_required: dict[str, list[str]] | None = None) -> None:
    """Add (or replace) the kind ``name``: rules declaring ``kind: name`` are built by ``target``."""
    _KINDS[name] = KindEntry(name, target, dict(properties or {}), tuple(required), schema,
                             dict(dependent_required or {}))
    _VERSION[0] += 1


def unregister_kind(name: str) -> None:
    """Remove the kind ``name`` (rules of that kind no longer validate)."""
    if _KINDS.pop(name, None) is not None:
        _VERSION[0] += 1


def register_rule_class(cls: type) -> type:
    """Register a Rule subclass under its ``kind`` with its ``PROPERTIES``/``REQUIRED`` (a class decorator)."""
    register_kind(cls.kind, cls, getattr(cls, "PROPERTIES", {}), tuple(getattr(cls, "REQUIRED", ())),
                  dependent_required=getattr(cls, "DEPENDENT_REQUIRED", None))
    return cls


def kinds() -> dict[str, KindEntry]:
    """The registered kinds by name."""
    return dict(_KINDS)


def registry_version() -> int:
    """Changes whenever a kind is registered (the rules-file schema is rebuilt then)."""
    return _VERSION[0]


def rule_class(name: str) -> type:
    """The class building rules of kind ``name`` (imports it when registered by name)."""
    return _load(_KINDS[name].target)


def full_schema(entry: KindEntry) -> dict[str, Any] | None:
    """A kind's own complete rule schema, if it has one."""
    return None if entry.schema is None else _load(entry.schema)
