"""Value objects returned by the template miner, and its internal cluster record."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TemplateMatch:
    """The template a message belongs to and the message's parameter values.

    ``template_id`` is assigned when the template is first created and never
    changes afterwards, even when ``template`` is generalised later.
    """

    template_id: str
    template: str
    params: list[str]
    is_new: bool


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """A template with its usage statistics (timestamps are the caller's event times)."""

    template_id: str
    template: str
    count: int
    first_seen: float | None
    last_seen: float | None


class Cluster:
    """Mutable state of one template: its tokens, tree path and usage counters."""

    __slots__ = (
        "template_id", "tokens", "text", "path", "count", "first_seen", "last_seen",
        "version", "plan", "merged_into",
    )

    def __init__(self, template_id: str, tokens: list[str], path: tuple[str, ...] = ()) -> None:
        self.template_id = template_id
        self.tokens = tokens
        self.text = " ".join(tokens)
        #: Keys of the prefix-tree path the cluster is filed under.
        self.path = path
        self.count = 0
        self.first_seen: float | None = None
        self.last_seen: float | None = None
        self.version = 0
        #: Parameter-extraction plan, built lazily by the extractor and reset on change.
        self.plan: object | None = None
        #: The surviving cluster when this one was merged into another.
        self.merged_into: Cluster | None = None

    def set_tokens(self, tokens: list[str]) -> None:
        """Replace the template tokens (generalisation) and bump the version."""
        self.tokens = tokens
        self.text = " ".join(tokens)
        self.version += 1
        self.plan = None

    def touch(self, count: int, first_seen: float | None, last_seen: float | None) -> None:
        """Fold ``count`` occurrences seen between ``first_seen`` and ``last_seen`` into the stats."""
        self.count += count
        if first_seen is not None and (self.first_seen is None or first_seen < self.first_seen):
            self.first_seen = first_seen
        if last_seen is not None and (self.last_seen is None or last_seen > self.last_seen):
            self.last_seen = last_seen

    def live(self) -> "Cluster":
        """Follow merges to the cluster that now stands for this one."""
        cluster = self
        while cluster.merged_into is not None:
            cluster = cluster.merged_into
        return cluster

    def info(self) -> TemplateInfo:
        """Return an immutable view of this cluster."""
        return TemplateInfo(self.template_id, self.text, self.count, self.first_seen, self.last_seen)


def base_template_id(template_text: str) -> str:
    """Deterministic short id derived from the first template text of a cluster."""
    data = template_text.encode("utf-8", "surrogatepass")
    return "T" + hashlib.blake2b(data, digest_size=6).hexdigest()
