"""What an ingest protocol is: routes, a decoder from its body to records, and its own answer.

A protocol is one file in this package: a subclass of :class:`HttpProtocol` decorated with
:func:`register_protocol`. The collector's HTTP server mounts the routes of every registered
protocol, authenticates the request (role ``ingest``; the tenant comes from the credential, never
from the body), undoes ``Content-Encoding``, calls :meth:`HttpProtocol.decode`, makes the accepted
records durable through the same validation and write-ahead log as the native API, dead-letters
the rejected ones under the protocol's name, and answers with :meth:`HttpProtocol.answer`.

Records are handed over as :class:`~logwarden.collector.decoding.RawRecord` objects: ``value`` is
the record in the native shape (``timestamp``, ``level``, ``service``, ``message`` and optional
fields; anything else is kept as an attribute), ``raw`` the original bytes of that record (what the
dead-letter store keeps), ``line`` the JSON text of ``value`` (what the write-ahead log keeps), and
``error`` a decoding problem of that one record (it is then rejected without losing the others).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import RawRecord
from logwarden.collector.ingest import IngestResult


@dataclass(frozen=True)
class ProtocolRequest:
    """One HTTP request, its body already decompressed."""

    method: str
    path: str
    match_info: Mapping[str, str]  # variables of the route, e.g. {"index": "logs-app"}
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    content_type: str  # lower case, without parameters ("" when absent)


@dataclass
class ProtocolAnswer:
    """What the protocol answers: status, body bytes, content type, extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class HttpProtocol(ABC):
    """An HTTP ingest protocol. Subclasses set ``name`` and ``routes`` and implement the methods."""

    #: Label of the protocol in metrics and in the dead-letter store (e.g. ``otlp``, ``loki``).
    name: ClassVar[str] = ""
    #: (method, aiohttp route path) pairs, e.g. ``("POST", "/loki/api/v1/push")``.
    routes: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: ``Content-Encoding`` values this protocol takes beyond gzip, deflate and zstd (e.g. ``("snappy",)``).
    encodings: ClassVar[tuple[str, ...]] = ()

    def accepts(self, request: ProtocolRequest) -> bool:
        """Whether this request is for this protocol (for paths shared with another protocol,
        such as OTLP and the native API on ``/v1/logs``, told apart by content type and shape)."""
        return True

    @abstractmethod
    def decode(self, request: ProtocolRequest) -> list[RawRecord]:
        """The records of the body; raise ``BodyError`` when the body as a whole is unreadable."""

    def decode_batch(self, request: ProtocolRequest, decoder: BatchDecoder) -> DecodedBatch | None:
        """Optional fast path: the body decoded *and* validated as one batch (an Arrow table, as the
        columnar path of the native API makes), or None to take the per-record path (``decode``, then
        validation record by record). Raises ``BodyError`` like ``decode``."""
        return None

    @abstractmethod
    def answer(self, request: ProtocolRequest, records: list[RawRecord], result: IngestResult) -> ProtocolAnswer:
        """The protocol's own answer for ``result`` (accepted/rejected counts and per-record errors).
        ``records`` is empty when the body took the ``decode_batch`` path."""

    @abstractmethod
    def error(self, request: ProtocolRequest | None, status: int, message: str) -> ProtocolAnswer:
        """The protocol's own answer for a refused request (unreadable body, too large, not durable)."""


_PROTOCOLS: dict[str, type[HttpProtocol]] = {}


def register_protocol(cls: type[HttpProtocol]) -> type[HttpProtocol]:
    """Register an HTTP protocol class under its ``name`` (a class decorator)."""
    if not cls.name or not cls.routes:
        raise ValueError(f"{cls.__name__}: a protocol needs a name and routes")
    _PROTOCOLS[cls.name] = cls
    return cls


def registered_protocols() -> dict[str, type[HttpProtocol]]:
    """Every registered protocol by name (import :mod:`logwarden.collector.protocols` first)."""
    return dict(_PROTOCOLS)
