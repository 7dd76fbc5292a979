"""Loghub accuracy metrics: Grouping Accuracy (GA) and Parsing Accuracy (PA)."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

_WILDCARD_TOKEN = re.compile(r"<[A-Za-z_*][A-Za-z0-9_*]*>")


def grouping_accuracy(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """Fraction of lines whose predicted group holds exactly the lines of their true group."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    if not truth:
        return 1.0
    truth_sizes = Counter(truth)
    groups: dict[Hashable, list[Hashable]] = defaultdict(list)
    for true_id, pred_id in zip(truth, predicted):
        groups[pred_id].append(true_id)
    correct = 0
    for members in groups.values():
        first = members[0]
        if truth_sizes[first] == len(members) and all(m == first for m in members):
            correct += len(members)
    return correct / len(truth)


def normalize_template(template: str) -> str:
    """Normalise any wildcard token (``<*>``, ``<NUM>``, ``<IP>``...) to ``<*>``."""
    return _WILDCARD_TOKEN.sub("<*>", template)


def parsing_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Fraction of lines whose predicted template equals the true one after wildcard normalisation."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    if not truth:
        return 1.0
    correct = sum(normalize_template(t) == normalize_template(p) for t, p in zip(truth, predicted))
    return correct / len(truth)
