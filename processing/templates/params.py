"""Extraction of parameter values: the parts of a raw message that sit under wildcards of its template."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from logwarden.processing.templates.model import Cluster


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to read the parameters of one template version off a raw message."""

    size: int
    #: Positions of whole-token wildcards when no token is partly variable, else ``None``.
    simple: tuple[int, ...] | None
    #: ``(position, prefix, suffix, template token)`` per variable position, in order: a whole-token
    #: wildcard has prefix ``None``; a token with one wildcard is sliced between prefix and suffix;
    #: a token with several wildcards is matched with a regex built from the template token.
    steps: tuple[tuple[int, str | None, str, str | None], ...]
    #: Template text, matched as a whole when the raw token count differs (collapsed wildcard runs).
    text: str


class ParamExtractor:
    """Align raw tokens with template tokens and return the text under each wildcard."""

    __slots__ = ("wildcard",)

    def __init__(self, wildcard: str) -> None:
        self.wildcard = wildcard

    def extract(self, cluster: Cluster, raw: str) -> list[str]:
        """Return the parameter values of ``raw`` for the current template of ``cluster``."""
        plan = cluster.plan
        if plan is None:
            plan = cluster.plan = self._build(cluster.tokens)
        raw_tokens = raw.split()
        if len(raw_tokens) != plan.size:
            match = wildcard_regex(plan.text, self.wildcard).fullmatch(" ".join(raw_tokens))
            return list(match.groups()) if match else []
        if plan.simple is not None:
            return [raw_tokens[i] for i in plan.simple]
        params: list[str] = []
        for index, prefix, suffix, template_token in plan.steps:
            token = raw_tokens[index]
            if prefix is None:
                params.append(token)
            elif template_token is None:
                end = len(token) - len(suffix)
                if end >= len(prefix) and token.startswith(prefix) and token.endswith(suffix):
                    params.append(token[len(prefix):end])
                else:
                    params.append(token)
            else:
                match = wildcard_regex(template_token, self.wildcard).fullmatch(token)
                params.extend(match.groups() if match else (token,))
        return params

    def _build(self, tokens: list[str]) -> _Plan:
        wildcard = self.wildcard
        steps: list[tuple[int, str | None, str, str | None]] = []
        for index, token in enumerate(tokens):
            if token == wildcard:
                steps.append((index, None, "", None))
            elif token.count(wildcard) == 1:
                prefix, suffix = token.split(wildcard)
                steps.append((index, prefix, suffix, None))
            elif wildcard in token:
                steps.append((index, "", "", token))
        simple = tuple(step[0] for step in steps) if all(step[1] is None for step in steps) else None
        return _Plan(len(tokens), simple, tuple(steps), " ".join(tokens))


@lru_cache(maxsize=8192)
def wildcard_regex(template_text: str, wildcard: str) -> re.Pattern[str]:
    """Regex matching ``template_text`` with one lazy capture group per wildcard (compiled once)."""
    pieces = template_text.split(wildcard)
    return re.compile("(.*?)".join(re.escape(piece) for piece in pieces), re.DOTALL)
