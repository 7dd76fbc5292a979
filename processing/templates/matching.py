"""Pure functions comparing token lists with cluster templates (similarity, coverage, generalisation)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from operator import eq

from logwarden.processing.templates.masking import SUBTOKEN_DELIMITERS
from logwarden.processing.templates.model import Cluster
from logwarden.processing.templates.params import wildcard_regex

_DELIMITER_CHARS = frozenset(SUBTOKEN_DELIMITERS.replace("\\s", "").replace("\\", ""))


def most_similar(leaf: Sequence[Cluster], tokens: list[str]) -> tuple[Cluster | None, int]:
    """The cluster sharing the most identical tokens with ``tokens`` (earliest wins ties), and that count."""
    best: Cluster | None = None
    best_score = -1
    for cluster in leaf:
        score = sum(map(eq, cluster.tokens, tokens))
        if score > best_score:
            best, best_score = cluster, score
    return best, best_score


def covering(leaf: Sequence[Cluster], tokens: list[str], wildcard: str) -> Cluster | None:
    """The most specific cluster whose template covers ``tokens`` exactly (wildcards match anything)."""
    best: Cluster | None = None
    best_score = -1
    for cluster in leaf:
        score = 0
        for t, m in zip(cluster.tokens, tokens):
            if t == m:
                score += 1
            elif t != wildcard and not (wildcard in t and wildcard_regex(t, wildcard).fullmatch(m)):
                break
        else:
            if score > best_score:
                best, best_score = cluster, score
    return best


def differs_in_word(template: list[str], tokens: list[str]) -> bool:
    """True when some position holds two different purely alphabetic words (likely constants)."""
    return any(t != m and t.isalpha() and m.isalpha() for t, m in zip(template, tokens))


def generalize(template: list[str], tokens: list[str], wildcard: str, keep_affixes: bool = True) -> list[str]:
    """The template with every position where it differs from ``tokens`` generalised.

    With ``keep_affixes`` a differing token keeps its shared punctuation-bounded
    ends (:func:`generalize_token`); without, it becomes the wildcard.
    """
    if not keep_affixes:
        return [t if t == m else wildcard for t, m in zip(template, tokens)]
    return [t if t == m else generalize_token(t, m, wildcard) for t, m in zip(template, tokens)]


def generalize_token(template_token: str, token: str, wildcard: str) -> str:
    """Replace the differing middle of two tokens by a wildcard, keeping shared punctuation-bounded ends.

    ``name=android,`` and ``name=com.android.phone,`` give ``name=<*>,``;
    ``(root)`` and ``(news)`` give ``(<*>)``; unrelated tokens give ``<*>``.
    """
    if template_token == wildcard:
        return wildcard
    left, right = _pieces(template_token, wildcard), _pieces(token, wildcard)
    limit = min(len(left), len(right))
    head = 0
    while head < limit and left[head] == right[head]:
        head += 1
    while head and not _is_boundary(left[head - 1], wildcard):
        head -= 1
    tail = 0
    while tail < limit - head and left[-1 - tail] == right[-1 - tail]:
        tail += 1
    while tail and not _is_boundary(left[-tail], wildcard):
        tail -= 1
    pieces = left[:head] + [wildcard] + (left[len(left) - tail:] if tail else [])
    merged: list[str] = []
    for piece in pieces:
        if not (piece == wildcard and merged and merged[-1] == wildcard):
            merged.append(piece)
    return "".join(merged)


def _pieces(token: str, wildcard: str) -> list[str]:
    """Split a token into wildcards, single delimiter characters and runs of other characters."""
    pieces: list[str] = []
    for index, part in enumerate(token.split(wildcard)):
        if index:
            pieces.append(wildcard)
        run = ""
        for char in part:
            if char in _DELIMITER_CHARS:
                if run:
                    pieces.append(run)
                    run = ""
                pieces.append(char)
            else:
                run += char
        if run:
            pieces.append(run)
    return pieces


def _is_boundary(piece: str, wildcard: str) -> bool:
    return piece == wildcard or piece in _DELIMITER_CHARS


def word_variant_group(
    candidates: Sequence[Cluster], tokens: list[str], wildcard: str, min_variants: int, min_shared: float
) -> tuple[int, list[Cluster]] | None:
    """Find clusters that differ from ``tokens`` only by one alphabetic word at the same position.

    Returns ``(position, clusters)`` when the clusters plus ``tokens`` show at
    least ``min_variants`` distinct words at that position, which marks the
    position as a variable (e.g. ``session opened for user <name>``). The
    other positions must hold at least two, and at least ``min_shared`` of all
    positions, constant tokens, so short messages (``normal``/``warning``)
    are never merged.
    """
    constants = sum(1 for token in tokens if wildcard not in token)
    if constants - 1 < max(2.0, min_shared * len(tokens)):
        return None
    by_position: dict[int, list[Cluster]] = defaultdict(list)
    for cluster in candidates:
        position = _single_word_difference(cluster.tokens, tokens, wildcard)
        if position is not None:
            by_position[position].append(cluster)
    for position in sorted(by_position):
        group = by_position[position]
        words = {c.tokens[position] for c in group} | {tokens[position]}
        if len(words) >= min_variants:
            return position, group
    return None


def _single_word_difference(template: list[str], tokens: list[str], wildcard: str) -> int | None:
    position: int | None = None
    for index, (t, m) in enumerate(zip(template, tokens)):
        if t == m or t == wildcard:
            continue
        if position is not None or not (t.isalpha() and m.isalpha()):
            return None
        position = index
    return position
