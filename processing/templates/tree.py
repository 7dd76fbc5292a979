"""Drain-style fixed-depth prefix tree: token count, then the first ``depth`` tokens, then clusters."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from logwarden.processing.templates.model import Cluster

Node = dict[str, Any]


class PrefixTree:
    """Index of clusters by message length and leading tokens.

    A token containing the wildcard is keyed as the wildcard itself; when an
    inner node is full, new keys fall back to the wildcard child, so the
    fan-out of every node stays bounded by ``max_children``. Each cluster is
    filed under the *path* (keys) of the message that created it; the path is
    part of the persisted state so a restored tree is identical.
    """

    __slots__ = ("depth", "max_children", "wildcard", "root")

    def __init__(self, depth: int, max_children: int, wildcard: str) -> None:
        self.depth = depth
        self.max_children = max_children
        self.wildcard = wildcard
        self.root: dict[int, Any] = {}

    def find_leaf(self, tokens: Sequence[str]) -> list[Cluster] | None:
        """Return the leaf a message with ``tokens`` belongs to, without creating nodes."""
        node = self.root.get(len(tokens))
        wildcard = self.wildcard
        for token in tokens[: self.depth]:
            if node is None:
                return None
            key = wildcard if wildcard in token else token
            child = node.get(key)
            node = child if child is not None else node.get(wildcard)
        return node

    def insert(self, cluster: Cluster, tokens: Sequence[str]) -> tuple[str, ...]:
        """File ``cluster`` under the path of ``tokens``; return the path keys used."""
        node: Any = self.root.setdefault(len(tokens), {} if self.depth and tokens else [])
        keys: list[str] = []
        for level in range(min(self.depth, len(tokens))):
            key = self._insert_key(node, tokens[level])
            keys.append(key)
            node = self._child(node, key, last=level == min(self.depth, len(tokens)) - 1)
        node.append(cluster)
        return tuple(keys)

    def insert_at(self, cluster: Cluster, length: int, keys: Sequence[str]) -> None:
        """File ``cluster`` under explicit path ``keys`` (used when restoring a snapshot)."""
        node: Any = self.root.setdefault(length, {} if keys else [])
        for level, key in enumerate(keys):
            node = self._child(node, key, last=level == len(keys) - 1)
        node.append(cluster)

    def remove(self, cluster: Cluster, length: int, keys: Sequence[str]) -> None:
        """Remove ``cluster`` from the leaf at ``keys`` (the path stays)."""
        node: Any = self.root[length]
        for key in keys:
            node = node[key]
        node.remove(cluster)

    @staticmethod
    def _child(node: Node, key: str, last: bool) -> Any:
        child = node.get(key)
        if child is None:
            child = [] if last else {}
            node[key] = child
        return child

    def _insert_key(self, node: Node, token: str) -> str:
        wildcard = self.wildcard
        if wildcard in token:
            return wildcard
        if token in node:
            return token
        free = self.max_children - (0 if wildcard in node else 1)
        return token if len(node) < free else wildcard

    def leaves(self) -> Iterator[list[Cluster]]:
        """Yield every leaf list of the tree."""
        stack: list[Any] = list(self.root.values())
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                yield node
            else:
                stack.extend(node.values())
