"""The fast path of protocols whose answer names every item (Elasticsearch bulk, Splunk HEC).

``HttpProtocol.decode_batch`` validates a body as one batch, and the mount then answers with no
records in hand; a per-item answer needs them. :func:`decode_items_batch` decodes the items with
the protocol's ``decode``, keeps them on the request, and validates them with
:meth:`~logwarden.collector.batch.BatchDecoder.mapped` (the declared fields as Arrow columns,
the same outcome as record by record); :func:`items_of` gives them back to ``answer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from logwarden.collector.batch import BatchDecoder, DecodedBatch
from logwarden.collector.decoding import RawRecord

if TYPE_CHECKING:
    from logwarden.collector.protocols.base import HttpProtocol, ProtocolRequest

_ITEMS = "_logwarden_items"


def decode_items_batch(protocol: "HttpProtocol", request: "ProtocolRequest", decoder: BatchDecoder) -> DecodedBatch:
    """``protocol.decode(request)`` validated as one batch; the items stay with ``request``."""
    items = protocol.decode(request)
    object.__setattr__(request, _ITEMS, items)  # the request is frozen; its answer reads them back
    return decoder.mapped(items)


def items_of(request: "ProtocolRequest", records: list[RawRecord]) -> list[RawRecord]:
    """The items of ``request``: ``records`` when the mount passed them, else those kept by
    :func:`decode_items_batch`."""
    return records or getattr(request, _ITEMS, [])
