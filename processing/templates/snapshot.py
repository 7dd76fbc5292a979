"""Serialisation of a :class:`TemplateMiner`'s state to plain data and compact bytes."""
from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from logwarden.processing.templates.config import MinerConfig
from logwarden.processing.templates.model import Cluster, TemplateInfo


class SnapshotMiner(Protocol):
    """What a snapshot needs of a miner (the miner imports this module, not the other way round)."""

    config: MinerConfig

    def _clusters_in_order(self) -> list[Cluster]: ...

    def _restore_cluster(self, cluster: Cluster, length: int) -> None: ...


FORMAT = "logwarden.templates/1"
_MAGIC = b"LWT1"
#: Settings whose default changed after states were written without them: such a state keeps the
#: behaviour it was learned with (size units were always absorbed before the switch existed).
_LEGACY_DEFAULTS: dict[str, Any] = {"absorb_size_units": True}


def to_state(miner: SnapshotMiner) -> dict[str, Any]:
    """The miner's state as JSON-compatible data: config and clusters in creation order."""
    clusters = []
    for cluster in miner._clusters_in_order():
        clusters.append({
            "id": cluster.template_id,
            "tokens": cluster.tokens,
            "path": list(cluster.path),
            "length": len(cluster.tokens),
            "count": cluster.count,
            "first_seen": cluster.first_seen,
            "last_seen": cluster.last_seen,
            "version": cluster.version,
            "merged_into": cluster.merged_into.template_id if cluster.merged_into else None,
        })
    return {"format": FORMAT, "config": miner.config.to_dict(), "clusters": clusters}


def from_state(
    state: dict[str, Any],
    miner_cls: Callable[..., SnapshotMiner],
    on_new_template: Callable[[TemplateInfo], None] | None = None,
) -> Any:
    """Rebuild a miner from :func:`to_state` data."""
    if state.get("format") != FORMAT:
        raise ValueError(f"unsupported template state format: {state.get('format')!r}")
    config = _LEGACY_DEFAULTS | dict(state["config"])
    miner = miner_cls(MinerConfig.from_dict(config), on_new_template=on_new_template)
    by_id: dict[str, Cluster] = {}
    rows = state["clusters"]
    for row in rows:
        cluster = Cluster(row["id"], list(row["tokens"]), tuple(row["path"]))
        cluster.count = int(row["count"])
        cluster.first_seen = row["first_seen"]
        cluster.last_seen = row["last_seen"]
        cluster.version = int(row.get("version", 0))
        by_id[cluster.template_id] = cluster
    for row in rows:
        if row.get("merged_into"):
            by_id[row["id"]].merged_into = by_id[row["merged_into"]]
    for row in rows:
        miner._restore_cluster(by_id[row["id"]], int(row["length"]))
    return miner


def dumps(miner: SnapshotMiner) -> bytes:
    """Compressed JSON bytes of the miner state (what workers receive as a snapshot)."""
    return _MAGIC + zlib.compress(encode_state(to_state(miner)), 6)


def loads(
    data: bytes,
    miner_cls: Callable[..., SnapshotMiner],
    on_new_template: Callable[[TemplateInfo], None] | None = None,
) -> Any:
    """Inverse of :func:`dumps`."""
    if not data.startswith(_MAGIC):
        raise ValueError("not a logwarden template snapshot")
    try:
        state = decode_state(zlib.decompress(data[len(_MAGIC):]))
    except zlib.error as exc:
        raise ValueError(f"corrupt template snapshot: {exc}") from exc
    return from_state(state, miner_cls, on_new_template)


def encode_state(state: dict[str, Any]) -> bytes:
    """JSON bytes of a state; falls back to escaped ASCII when text holds lone surrogates."""
    try:
        return orjson.dumps(state)
    except orjson.JSONEncodeError:
        return json.dumps(state, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def decode_state(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_state`; ``ValueError`` on malformed data."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ValueError(f"corrupt template state: {exc}") from exc
