"""Configuration of the online template miner."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from logwarden.processing.templates.masking import DEFAULT_MASKS, MaskSpec

WILDCARD = "<*>"


@dataclass(frozen=True)
class MinerConfig:
    """Tunable settings of :class:`~processing.templates.miner.TemplateMiner`.

    The same configuration is meant to be used for every log source; nothing
    here is specific to one dataset.
    """

    #: Minimum fraction of identical constant tokens for a message to join a cluster.
    sim_threshold: float = 0.6
    #: Number of leading tokens (after the length level) used as tree keys.
    depth: int = 2
    #: Maximum children of an inner tree node before new keys go to a ``<*>`` child.
    max_children: int = 100
    #: Generic masks applied to each token, as ``(name, regex)`` pairs, in priority order.
    masks: tuple[MaskSpec, ...] = DEFAULT_MASKS
    #: Token standing for a variable part in template text.
    wildcard: str = WILDCARD
    #: Never generalise a position where two different purely alphabetic words meet.
    words_are_constants: bool = True
    #: Turn a word position into a variable once this many distinct words were seen there (0 disables).
    #: Off by default: it did not help out of sample (``bench/templates.py --ablation``).
    min_word_variants: int = 0
    #: Replace a run of space-separated wildcards by one wildcard (variable-length lists).
    collapse_wildcards: bool = True
    #: Apply masks at the start of every sub-token (``HWID=1973`` -> ``HWID=<*>``); when off, a mask
    #: must cover a whole whitespace-separated token.
    mask_subtokens: bool = True
    #: A wildcard followed by a data-size unit absorbs the unit (``384.0 B`` -> ``<*>``).
    #: Off by default: it only fitted one shared sample's ground truth and lost accuracy out of sample.
    absorb_size_units: bool = False
    #: When two tokens differ, keep their shared punctuation-bounded ends (``name=<*>,``) instead of
    #: replacing the whole token by the wildcard.
    keep_token_affixes: bool = True
    #: Before creating a template, look for one of the same length that already covers the message
    #: although it is filed under another tree path (it was generalised at a prefix position).
    cover_across_paths: bool = True
    #: Capacity of the masking caches keyed by digit shape (0 disables; set 0 for custom masks
    #: that match particular digit values, e.g. ``port 80``).
    mask_cache_size: int = 50_000
    #: Capacity of the masked-message -> template cache (0 disables).
    match_cache_size: int = 50_000

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "MinerConfig":
        """Build a validated config from a plain mapping (parsed YAML/JSON); unknown keys are an error."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MinerConfig keys: {', '.join(unknown)}")
        if "masks" in data:
            data["masks"] = tuple(_mask_spec(m) for m in data["masks"])
        config = cls(**data)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable mapping that :meth:`from_dict` accepts."""
        data = dataclasses.asdict(self)
        data["masks"] = [list(m) for m in self.masks]
        return data

    def validate(self) -> None:
        """Raise ``ValueError`` when a setting is out of range."""
        if not 0.0 < self.sim_threshold <= 1.0:
            raise ValueError("sim_threshold must be in (0, 1]")
        if self.depth < 0:
            raise ValueError("depth must be >= 0")
        if self.max_children < 1:
            raise ValueError("max_children must be >= 1")
        if min(self.mask_cache_size, self.match_cache_size, self.min_word_variants) < 0:
            raise ValueError("cache and cluster limits must be >= 0")
        if not self.wildcard or " " in self.wildcard:
            raise ValueError("wildcard must be a non-empty token without spaces")


def _mask_spec(item: Any) -> MaskSpec:
    """Accept ``[name, regex]`` lists or ``{"name": ..., "regex": ...}`` mappings."""
    if isinstance(item, Mapping):
        return (str(item["name"]), str(item["regex"]))
    name, regex = item
    return (str(name), str(regex))
