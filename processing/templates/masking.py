"""Generic masking of variable parts of log messages (numbers, IPs, hex, UUIDs, paths, URLs).

A message is made of whitespace-separated tokens; each token is made of
sub-tokens separated by punctuation such as ``=``, ``:``, ``,``, ``.``, ``/`` or
brackets. Masks apply within one token and are tried only at the start of a
sub-token; all masks are merged into one precompiled alternation replaced by
the wildcard in a single ``re.sub`` pass per token.

Masking is memoised on the *digit shape* of messages and tokens (every digit
mapped to ``0``): texts that differ only in digit values mask identically when
the masks treat all digits alike (true for :data:`DEFAULT_MASKS`) and leave no
digit unmasked (checked: results that still hold a digit are not memoised).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

MaskSpec = tuple[str, str]

#: Characters that separate the sub-tokens of a token (``key=value``, ``host:port``, ``a.b``, ``(x, y)``...).
SUBTOKEN_DELIMITERS = r"\s=:,;.()\[\]{}<>\"'|/@&"
_NOT_DELIM = f"[^{SUBTOKEN_DELIMITERS}]"
#: Zero-width assertion: at the start of a sub-token.
SUBTOKEN_START = f"(?<!{_NOT_DELIM})"
#: Zero-width assertion: at the end of a sub-token.
SUBTOKEN_END = f"(?!{_NOT_DELIM})"
_PATH_CHARS = r"[\w.\-@$~+%]"

#: The built-in generic masks, in priority order, each tried at the start of a sub-token.
DEFAULT_MASKS: tuple[MaskSpec, ...] = (
    # Everything after a URL scheme: ``hdfs://host:8020/a/b`` -> ``hdfs://<*>``.
    ("url", r"(?<=://)[^\s\])}>,;'\"]+"),
    ("uuid", r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}" + SUBTOKEN_END),
    # Absolute POSIX paths with at least two components, and Windows drive paths.
    ("path", rf"(?<![./])(?:/{_PATH_CHARS}+){{2,}}/?|[A-Za-z]:\\[^\s,;'\"]*"),
    # IPv4 addresses, also in Java's ``/10.0.0.1`` form.
    ("ipv4", r"(?<!:/)/?\d{1,3}(?:\.\d{1,3}){3}" + SUBTOKEN_END),
    ("mac", r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}" + SUBTOKEN_END),
    ("hex", r"(?:0[xX][0-9a-fA-F]+|[0-9a-fA-F]{8,})" + SUBTOKEN_END),
    # Decimal numbers and dotted versions: ``3.14``, ``-2.5e3``, ``1.2.3``.
    ("decimal", r"[-+]?\d+(?:\.\d+)+(?:[eE][-+]?\d+)?" + SUBTOKEN_END),
    # Any other sub-token holding a digit: integers, ids like blk_-1234 or attempt_01_000001, R02-M1.
    ("number", rf"[^{SUBTOKEN_DELIMITERS}\d]*\d{_NOT_DELIM}*"),
)

_DIGIT_SHAPE = bytes.maketrans(b"123456789", b"000000000")
_HAS_DIGIT = re.compile(r"\d").search
#: Units of data sizes that belong to the number before them (``384.0 B``, ``12 MiB``).
SIZE_UNITS = r"(?:[KMGTPE]i?B|B)"


class Masker:
    """Replace every generic variable in a message by the wildcard token.

    A message is split on whitespace and each token is masked on its own, then
    the tokens are joined with single spaces; with ``absorb_units`` a wildcard
    followed by a data-size unit absorbs the unit (``384.0 B`` -> ``<*>``), and
    with ``collapse_runs`` a run of wildcards becomes one (so variable-length
    lists such as ``delete blk_1 blk_2 ...`` share a template). With
    ``subtokens`` off, masks apply to whole tokens only.
    """

    __slots__ = (
        "pattern", "wildcard", "names", "cache_size", "_cache", "_tokens", "_token_shapes",
        "_pair", "_run", "_unit_probe", "_unit",
    )

    def __init__(
        self,
        masks: Iterable[MaskSpec] = DEFAULT_MASKS,
        wildcard: str = "<*>",
        collapse_runs: bool = True,
        cache_size: int = 50_000,
        subtokens: bool = True,
        absorb_units: bool = False,
    ) -> None:
        masks = tuple(masks)
        self.names = tuple(name for name, _ in masks)
        self.wildcard = wildcard
        self.pattern = compile_masks(masks, subtokens)
        self.cache_size = cache_size
        self._cache: dict[bytes, str] = {}
        self._tokens: dict[str, str] = {}
        self._token_shapes: dict[bytes, str] = {}
        escaped = re.escape(wildcard)
        self._pair = f"{wildcard} {wildcard}" if collapse_runs else None
        self._run = re.compile(f"{escaped}(?: {escaped})+")
        self._unit_probe = f"{wildcard} " if absorb_units else None
        self._unit = re.compile(f"{escaped} {SIZE_UNITS}(?![\\w])")

    def mask(self, message: str) -> str:
        """Return ``message`` with every masked span replaced by the wildcard (tokens single-spaced)."""
        if not self.cache_size:
            return self._mask(message)
        # bytes.translate is ~10x faster than str.translate; ASCII digits never occur inside
        # multi-byte UTF-8 sequences, so the shape is exact.
        shape = message.encode("utf-8", "surrogatepass").translate(_DIGIT_SHAPE)
        masked = self._cache.get(shape)
        if masked is None:
            masked = self._mask(message)
            # Only a result without digits is shape-determined: digits left unmasked differ per message.
            if _HAS_DIGIT(masked) is None:
                _bounded_put(self._cache, shape, masked, self.cache_size)
        return masked

    def _mask(self, message: str) -> str:
        tokens = self._tokens
        mask_token = self._mask_token
        masked = " ".join([tokens.get(token) or mask_token(token) for token in message.split()])
        if self._unit_probe is not None and self._unit_probe in masked:
            masked = self._unit.sub(self.wildcard, masked)
        if self._pair is not None and self._pair in masked:
            masked = self._run.sub(self.wildcard, masked)
        return masked

    def _mask_token(self, token: str) -> str:
        if self.pattern is None:
            return token
        if _HAS_DIGIT(token) is None:
            masked = self.pattern.sub(self.wildcard, token)
            if self.cache_size:
                _bounded_put(self._tokens, token, masked, self.cache_size)
            return masked
        shape = token.encode("utf-8", "surrogatepass").translate(_DIGIT_SHAPE)
        masked = self._token_shapes.get(shape)
        if masked is None:
            masked = self.pattern.sub(self.wildcard, token)
            if self.cache_size and _HAS_DIGIT(masked) is None:
                _bounded_put(self._token_shapes, shape, masked, self.cache_size)
        return masked

    def clear_cache(self) -> None:
        """Forget memoised masking results."""
        self._cache.clear()
        self._tokens.clear()
        self._token_shapes.clear()


def _bounded_put(cache: dict, key: object, value: str, limit: int) -> None:
    """Store ``key``; start afresh when the cache is full (a cheap bound on memory)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def compile_masks(masks: Iterable[MaskSpec], subtokens: bool = True) -> re.Pattern[str] | None:
    """Combine ``(name, regex)`` masks into one alternation (``None`` if none).

    With ``subtokens`` the alternation is tried at every sub-token start;
    without, a mask must span a whole whitespace-separated token.
    """
    parts = []
    for name, regex in masks:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"invalid regex for mask {name!r}: {exc}") from exc
        parts.append(f"(?:{regex})")
    if not parts:
        return None
    alternation = "(?:" + "|".join(parts) + ")"
    if subtokens:
        return re.compile(SUBTOKEN_START + alternation)
    return re.compile(r"(?<!\S)" + alternation + r"(?!\S)")
