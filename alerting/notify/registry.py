"""The registry of receivers: which sections ``alerting:`` may hold, what each accepts, and how each
becomes a delivery channel.

A receiver is one module of this package that registers itself when imported::

    register_receiver("webhook", SCHEMA, WebhookConfig, build)

- ``SCHEMA``: the JSON Schema (2020-12) of its section ``alerting.webhook``. The generic keys of a
  channel, ``rate_limit`` and ``group_wait``, are added to it (``channel_keys=False`` to opt out).
- ``WebhookConfig``: the typed configuration, built from the validated section by its ``from_dict``
  (a :class:`SectionConfig` dataclass declares each key, its default and its conversion once), or
  None to hand the receiver the plain mapping.
- ``build(config, context)``: the :class:`Channel` that delivers (or a list of them, for a section
  such as ``remediation`` that makes a channel per action).

Every module of ``logwarden.alerting.notify`` is imported (``pkgutil.iter_modules``) when the registry
is read, so adding a receiver is adding a file here; the ``alerting:`` schema is assembled from the
registered receivers (``alerting.config``) and ``alerting.build`` builds the configured ones by name.
A receiver's errors name a path below its section (:class:`SectionError`); the caller prefixes
``alerting.<receiver>``.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from logwarden.alerting.notify.base import Receiver
from logwarden.common.durations import parse_duration

log = logging.getLogger(__name__)
PACKAGE = __name__.rpartition(".")[0]  # logwarden.alerting.notify

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
DURATION: dict[str, Any] = {"type": ["string", "number"]}
RATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["count", "per"],
    "properties": {"count": {"type": "integer", "minimum": 1}, "per": DURATION},
}
SEVERITY_LIST: dict[str, Any] = {"type": "array", "items": {"enum": list(SEVERITIES)}}
CHANNEL_KEYS: dict[str, Any] = {"rate_limit": RATE, "group_wait": DURATION}  # generic keys of every channel


class SectionError(ValueError):
    """A refused value of a section; ``path`` is the key path below the section."""

    def __init__(self, path: Iterable[Any], message: str) -> None:
        self.path = list(path)
        self.message = message
        super().__init__(f"{'.'.join(str(p) for p in self.path)}: {message}" if self.path else message)


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` messages per ``per`` seconds."""

    count: int
    per: float


def duration(value: Any, path: list) -> float:
    """Seconds in ``value`` (``30s``, ``5m``, a number); SectionError at ``path`` otherwise."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise SectionError(path, str(exc)) from None


def parse_rate_limit(raw: Mapping | None, path: list) -> RateLimit | None:
    """The RateLimit of a validated ``{count, per}`` mapping (None stays None)."""
    if raw is None:
        return None
    return RateLimit(int(raw["count"]), duration(raw["per"], list(path) + ["per"]))


def as_tuple(value: Any, path: list) -> tuple:
    """A list of the section as a tuple (a converter for :func:`setting`)."""
    return tuple(value)


def setting(default: Any = dataclasses.MISSING, *, key: str | None = None,
            convert: Callable[[Any, list], Any] | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A field of a :class:`SectionConfig`: its default (written here only), the section key it reads
    when that differs from the field name (``from``), and ``convert(value, path)`` for its value."""
    metadata = {}
    if key is not None:
        metadata["key"] = key
    if convert is not None:
        metadata["convert"] = convert
    return field(default=default, default_factory=default_factory, metadata=metadata)


class SectionConfig:
    """Base of a receiver's typed configuration (a dataclass): ``from_dict`` sets a field from its key
    when the section has it and leaves the field's default otherwise. Checks that involve several
    keys go in ``__post_init__`` and raise SectionError."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], path: Iterable[Any] = ()) -> Any:
        """The configuration of the validated mapping ``raw`` (``path``: where it stands in the section)."""
        path = list(path)
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            key = f.metadata.get("key", f.name)
            if key in raw:
                convert = f.metadata.get("convert")
                values[f.name] = convert(raw[key], path + [key]) if convert else raw[key]
        try:
            return cls(**values)
        except SectionError as exc:
            raise SectionError(path + exc.path, exc.message) from None


@dataclass(frozen=True)
class Channel:
    """A delivery channel built from a receiver section: its receiver and how the service queues for it.

    ``rate_limit`` and ``group_wait`` left None take the section's generic keys (or the receiver's
    registered default rate limit, or ``alerting.group_wait``). ``digest`` (with ``every``,
    ``max_alerts``, ``severities``) batches alerts of those severities into one message. A channel
    with ``triggered_by`` rules also gets a message for each firing anomaly of those rules (e.g. a
    remediation action), whatever the routing says.
    """

    name: str
    receiver: Receiver
    rate_limit: RateLimit | None = None
    group_wait: float | None = None
    digest: Any = None
    triggered_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReceiverContext:
    """What a receiver's ``build`` may use besides its own configuration."""

    name: str  # the section (and default channel) name
    alerting: Any = None  # the AlertingConfig: the generic settings (dashboard_url, delivery, ...)
    alerts_dir: Path | None = None  # <data-dir>/alerts, for a receiver that keeps state


@dataclass(frozen=True)
class ReceiverKind:
    """One registered receiver."""

    name: str
    schema: dict[str, Any]
    config_type: Any
    build: Callable[[Any, ReceiverContext], Channel | Iterable[Channel]]
    rate_limit: RateLimit | None = None
    channel_keys: bool = True
    module: str | None = None

    def section_schema(self) -> dict[str, Any]:
        """The JSON Schema of the section, generic channel keys included."""
        if not self.channel_keys:
            return self.schema
        return {**self.schema, "properties": {**self.schema.get("properties", {}), **CHANNEL_KEYS}}

    def parse(self, raw: Mapping[str, Any]) -> Any:
        """The typed configuration of a validated section (the mapping itself without a config type)."""
        if self.config_type is None:
            return raw
        from_dict = getattr(self.config_type, "from_dict", None)
        return from_dict(raw) if from_dict is not None else self.config_type(raw)

    def channels(self, config: Any, context: ReceiverContext) -> list[Channel]:
        """The channels ``build`` makes of ``config``."""
        built = self.build(config, context)
        channels = [built] if isinstance(built, Channel) else list(built)
        for channel in channels:
            if not isinstance(channel, Channel):
                raise TypeError(f"receiver {self.name!r}: build must return Channel objects, not {channel!r}")
        return channels


_RECEIVERS: dict[str, ReceiverKind] = {}
_UNAVAILABLE: dict[str, str] = {}  # module name -> why it could not be imported
_LOCK = threading.RLock()


def register_receiver(
    name: str,
    schema: dict[str, Any],
    config_type: Any,
    build: Callable[[Any, ReceiverContext], Channel | Iterable[Channel]],
    *,
    rate_limit: RateLimit | None = None,
    channel_keys: bool = True,
) -> None:
    """Add (or replace) the receiver of section ``alerting.<name>``.

    ``rate_limit`` is the channel's default when its section sets none; ``channel_keys=False`` leaves
    out the generic ``rate_limit``/``group_wait`` keys (a receiver that defines its own).
    """
    if not name.isidentifier():
        raise ValueError(f"a receiver name must be an identifier: {name!r}")
    module = sys._getframe(1).f_globals.get("__name__")
    with _LOCK:
        previous = _RECEIVERS.get(name)
        if previous is not None and previous.module != module:
            log.warning("receiver %r of %s replaced by the one of %s", name, previous.module, module)
        _RECEIVERS[name] = ReceiverKind(name, schema, config_type, build, rate_limit, channel_keys, module)


def unregister_receiver(name: str) -> None:
    """Remove the receiver ``name`` (a section of that name is then refused)."""
    with _LOCK:
        _RECEIVERS.pop(name, None)


def discover() -> None:
    """Import every module of this package (the receivers register themselves on import).

    A module that cannot be imported (a missing optional dependency) is remembered: its section is
    refused with the reason, and the other receivers keep working.
    """
    package = importlib.import_module(PACKAGE)
    with _LOCK:
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = f"{PACKAGE}.{info.name}"
            if module in sys.modules or info.name in _UNAVAILABLE:
                continue
            try:
                importlib.import_module(module)
            except ImportError as exc:
                _UNAVAILABLE[info.name] = str(exc)
                log.warning("alerting: receiver module %s cannot be imported: %s", module, exc)


def receivers() -> dict[str, ReceiverKind]:
    """The registered receivers by name (after importing the modules of this package)."""
    discover()
    with _LOCK:
        return dict(sorted(_RECEIVERS.items()))


def unavailable() -> dict[str, str]:
    """Receiver modules that could not be imported, with the reason."""
    discover()
    with _LOCK:
        return dict(_UNAVAILABLE)


__all__ = [
    "CHANNEL_KEYS",
    "DURATION",
    "RATE",
    "SEVERITIES",
    "SEVERITY_LIST",
    "Channel",
    "RateLimit",
    "ReceiverContext",
    "ReceiverKind",
    "SectionConfig",
    "SectionError",
    "as_tuple",
    "discover",
    "duration",
    "parse_rate_limit",
    "receivers",
    "register_receiver",
    "setting",
    "unavailable",
    "unregister_receiver",
]
