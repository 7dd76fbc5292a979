"""Online template miner: turns log messages into templates and parameters as they stream."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from logwarden.processing.templates import matching
from logwarden.processing.templates.config import MinerConfig
from logwarden.processing.templates.masking import Masker
from logwarden.processing.templates.model import Cluster, TemplateInfo, TemplateMatch, base_template_id
from logwarden.processing.templates.params import ParamExtractor
from logwarden.processing.templates.snapshot import dumps as snapshot_dumps, loads as snapshot_loads
from logwarden.processing.templates.tree import PrefixTree

logger = logging.getLogger(__name__)

NewTemplateCallback = Callable[[TemplateInfo], None]


class TemplateMiner:
    """Drain-like miner with generic masking, caches, variable-word detection and stable ids.

    ``add`` learns (creates or generalises templates); ``match`` only looks up.
    Template ids derive from the first template text of a cluster, so two
    miners fed the same stream assign the same ids (see ``docs/templates.md``).
    One miner is meant for one thread; workers each use their own copy
    (:meth:`from_snapshot`).
    """

    def __init__(
        self,
        config: MinerConfig | None = None,
        on_new_template: NewTemplateCallback | None = None,
    ) -> None:
        self.config = config or MinerConfig()
        self.config.validate()
        self.on_new_template = on_new_template
        self._wildcard = self.config.wildcard
        self._masker = Masker(
            self.config.masks, self._wildcard, self.config.collapse_wildcards, self.config.mask_cache_size,
            subtokens=self.config.mask_subtokens, absorb_units=self.config.absorb_size_units,
        )
        self._tree = PrefixTree(self.config.depth, self.config.max_children, self._wildcard)
        self._params = ParamExtractor(self._wildcard)
        self._clusters: dict[str, Cluster] = {}
        self._by_length: dict[int, list[Cluster]] = {}
        self._cache: dict[str, Cluster] = {}
        #: Answers of :meth:`match`; only a new or merged cluster can change them, which clears it.
        self._lookup_cache: dict[str, Cluster] = {}

    # ------------------------------------------------------------------ learning API
    def add(self, message: str, timestamp: float | None = None) -> TemplateMatch:
        """Learn from ``message`` and return its template match (``is_new`` on a new template)."""
        masked = self._masker.mask(message)
        cluster = self._cache.get(masked)
        is_new = False
        if cluster is None or cluster.merged_into is not None:
            cluster, is_new = self._learn(masked.split())
            _bounded_put(self._cache, masked, cluster, self.config.match_cache_size)
        cluster.count += 1
        if timestamp is not None:
            cluster.touch(0, timestamp, timestamp)
        params = self._params.extract(cluster, message)
        match = TemplateMatch(cluster.template_id, cluster.text, params, is_new)
        if is_new:
            self._announce(cluster)
        return match

    def add_batch(
        self, messages: Sequence[str], timestamps: Sequence[float | None] | None = None
    ) -> list[TemplateMatch]:
        """Learn from each message in order; equivalent to calling :meth:`add` for each."""
        if timestamps is None:
            return [self.add(message) for message in messages]
        if len(timestamps) != len(messages):
            raise ValueError("messages and timestamps differ in length")
        return [self.add(message, ts) for message, ts in zip(messages, timestamps)]

    #: Name used by the multi-worker design: the single place that learns unmatched messages.
    learn = add_batch

    # ------------------------------------------------------------------ read-only API
    def match(self, message: str, with_params: bool = True) -> TemplateMatch | None:
        """Return the known template covering ``message`` without learning (``None`` if none does);
        ``with_params=False`` skips reading the parameters (``params`` is then empty)."""
        masked = self._masker.mask(message)
        cluster = self._lookup_cache.get(masked)
        if cluster is None:
            cluster = self._find_covering(masked.split())
            if cluster is None:
                return None
            _bounded_put(self._lookup_cache, masked, cluster, self.config.match_cache_size)
        params = self._params.extract(cluster, message) if with_params else []
        return TemplateMatch(cluster.template_id, cluster.text, params, False)

    def match_batch(self, messages: Iterable[str], with_params: bool = True) -> list[TemplateMatch | None]:
        """:meth:`match` every message (read-only; safe against a broadcast snapshot)."""
        return [self.match(message, with_params) for message in messages]

    def templates(self) -> list[TemplateInfo]:
        """All live templates in creation order."""
        return [c.info() for c in self._clusters.values() if c.merged_into is None]

    def get(self, template_id: str) -> TemplateInfo | None:
        """The template with ``template_id`` (following merges), or ``None``."""
        cluster = self._clusters.get(template_id)
        return cluster.live().info() if cluster is not None else None

    def resolve(self, template_id: str) -> str:
        """The id that now stands for ``template_id`` (itself unless its cluster was merged)."""
        cluster = self._clusters.get(template_id)
        return cluster.live().template_id if cluster is not None else template_id

    def aliases(self) -> dict[str, str]:
        """Map of merged template ids to the id that absorbed them."""
        return {tid: c.live().template_id for tid, c in self._clusters.items() if c.merged_into is not None}

    def mask(self, message: str) -> str:
        """Apply the configured generic masks to ``message``."""
        return self._masker.mask(message)

    def clear_cache(self) -> None:
        """Forget memoised masking and matching results (templates are kept)."""
        self._cache.clear()
        self._lookup_cache.clear()
        self._masker.clear_cache()

    def __len__(self) -> int:
        return sum(1 for c in self._clusters.values() if c.merged_into is None)

    # ------------------------------------------------------------------ usage merging
    def merge_usage(self, usage: Iterable[TemplateInfo]) -> None:
        """Fold counts and first/last-seen times observed elsewhere (e.g. by workers) into this miner."""
        for info in usage:
            cluster = self._clusters.get(info.template_id)
            if cluster is None:
                logger.warning("usage for unknown template %s ignored", info.template_id)
                continue
            cluster.live().touch(info.count, info.first_seen, info.last_seen)

    @staticmethod
    def usage_of(
        matches: Sequence[TemplateMatch | None], timestamps: Sequence[float | None] | None = None
    ) -> list[TemplateInfo]:
        """Summarise matches (e.g. on a worker) into per-template counts for :meth:`merge_usage`."""
        stats: dict[str, list] = {}
        for index, match in enumerate(matches):
            if match is None:
                continue
            ts = timestamps[index] if timestamps is not None else None
            row = stats.setdefault(match.template_id, [match.template, 0, ts, ts])
            row[1] += 1
            if ts is not None:
                row[2] = ts if row[2] is None else min(row[2], ts)
                row[3] = ts if row[3] is None else max(row[3], ts)
        return [TemplateInfo(tid, text, n, first, last) for tid, (text, n, first, last) in stats.items()]

    def merge(self, other: "TemplateMiner") -> dict[str, str]:
        """Absorb the templates and usage of a miner that learned independently.

        Each of ``other``'s templates is learned here as a message (in creation
        order); returns the mapping from ``other``'s ids to ids of this miner.
        """
        mapping: dict[str, str] = {}
        for info in other.templates():
            tokens = info.template.split()
            cluster = self._find_covering(tokens)
            if cluster is None:
                cluster, is_new = self._learn(tokens)
                if is_new:
                    self._announce(cluster)
            cluster.touch(info.count, info.first_seen, info.last_seen)
            mapping[info.template_id] = cluster.template_id
        for old_id, new_id in other.aliases().items():
            mapping[old_id] = mapping.get(new_id, new_id)
        return mapping

    # ------------------------------------------------------------------ persistence hooks
    def snapshot(self) -> bytes:
        """Serialise the full miner state (config, templates, tree paths, usage) to bytes."""
        return snapshot_dumps(self)

    @classmethod
    def from_snapshot(
        cls, data: bytes, on_new_template: NewTemplateCallback | None = None
    ) -> "TemplateMiner":
        """Rebuild a miner from :meth:`snapshot` bytes."""
        return snapshot_loads(data, cls, on_new_template)

    def _clusters_in_order(self) -> list[Cluster]:
        return list(self._clusters.values())

    def _restore_cluster(self, cluster: Cluster, length: int) -> None:
        self._clusters[cluster.template_id] = cluster
        if cluster.merged_into is None:
            self._tree.insert_at(cluster, length, cluster.path)
            self._by_length.setdefault(length, []).append(cluster)

    # ------------------------------------------------------------------ internals
    def _learn(self, tokens: list[str]) -> tuple[Cluster, bool]:
        leaf = self._tree.find_leaf(tokens)
        if leaf:
            best, score = matching.most_similar(leaf, tokens)
            if best is not None and score >= self.config.sim_threshold * len(tokens):
                if not (self.config.words_are_constants and matching.differs_in_word(best.tokens, tokens)):
                    self._generalize(best, tokens)
                    return best, False
        same_length = self._by_length.get(len(tokens))
        if same_length:
            # Templates generalised at a prefix position live under another tree path.
            cluster = None
            if self.config.cover_across_paths:
                cluster = matching.covering(same_length, tokens, self._wildcard)
            if cluster is None:
                cluster = self._merge_word_variants(same_length, tokens)
            if cluster is not None:
                return cluster, False
        return self._create(tokens), True

    def _generalize(self, cluster: Cluster, tokens: list[str]) -> None:
        if cluster.tokens != tokens:
            merged = self._generalized(cluster.tokens, tokens)
            if merged != cluster.tokens:
                cluster.set_tokens(merged)

    def _generalized(self, template: list[str], tokens: list[str]) -> list[str]:
        return matching.generalize(template, tokens, self._wildcard, self.config.keep_token_affixes)

    def _merge_word_variants(self, candidates: list[Cluster], tokens: list[str]) -> Cluster | None:
        """Turn a word position into a variable once enough clusters differ only there."""
        if not self.config.words_are_constants or self.config.min_word_variants < 2:
            return None
        found = matching.word_variant_group(
            candidates, tokens, self._wildcard, self.config.min_word_variants, self.config.sim_threshold
        )
        if found is None:
            return None
        position, group = found
        survivor, absorbed = group[0], group[1:]
        template = list(survivor.tokens)
        template[position] = self._wildcard
        for cluster in absorbed:
            template = self._generalized(template, cluster.tokens)
        survivor.set_tokens(self._generalized(template, tokens))
        for cluster in absorbed:
            cluster.merged_into = survivor
            survivor.touch(cluster.count, cluster.first_seen, cluster.last_seen)
            self._tree.remove(cluster, len(cluster.tokens), cluster.path)
            candidates.remove(cluster)
        self._lookup_cache.clear()
        logger.debug("merged %d word variants into %s: %s",
                     len(absorbed), survivor.template_id, survivor.text)
        return survivor

    def _create(self, tokens: list[str]) -> Cluster:
        cluster = Cluster(self._new_id(" ".join(tokens)), list(tokens))
        cluster.path = self._tree.insert(cluster, tokens)
        self._clusters[cluster.template_id] = cluster
        self._by_length.setdefault(len(tokens), []).append(cluster)
        self._lookup_cache.clear()
        logger.debug("new template %s: %s", cluster.template_id, cluster.text)
        return cluster

    def _new_id(self, text: str) -> str:
        base = base_template_id(text)
        template_id, counter = base, 1
        while template_id in self._clusters:
            template_id = f"{base}-{counter}"
            counter += 1
        return template_id

    def _find_covering(self, tokens: list[str]) -> Cluster | None:
        """The covering cluster in the message's leaf, else among all clusters of its length."""
        leaf = self._tree.find_leaf(tokens)
        cluster = matching.covering(leaf, tokens, self._wildcard) if leaf else None
        if cluster is None:
            same_length = self._by_length.get(len(tokens))
            cluster = matching.covering(same_length, tokens, self._wildcard) if same_length else None
        return cluster

    def _announce(self, cluster: Cluster) -> None:
        """Call ``on_new_template``; a failing listener is logged, never breaks mining."""
        if self.on_new_template is None:
            return
        try:
            self.on_new_template(cluster.info())
        except Exception:  # noqa: BLE001 - listener errors must not stop the stream
            logger.exception("on_new_template callback failed for %s", cluster.template_id)


def _bounded_put(cache: dict[str, Cluster], key: str, cluster: Cluster, limit: int) -> None:
    """Store ``key`` unless caching is off; start afresh when the cache is full (cheap bound)."""
    if not limit:
        return
    if len(cache) >= limit:
        cache.clear()
    cache[key] = cluster
