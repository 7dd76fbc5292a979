"""Sensitive-data masking applied before storage and alerting.

Masks passwords/tokens in ``key=value`` text and in JSON fields, Luhn-valid credit card
numbers, AWS access key ids (AKIA.../ASIA...), bearer/basic credentials, JWTs, credentials in
URLs and, optionally, e-mail addresses. Rules are precompiled and each is guarded by a cheap
substring prefilter, so clean text costs a few lowercase/``in`` checks.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "apikey", "api_key",
    "access_key", "secret_key", "private_key", "client_secret", "credential", "credentials",
    "authorization", "auth", "cookie", "set_cookie", "session", "sessionid", "cvv", "cvc", "pin",
)
#: Key suffixes that describe a secret without holding it (``token_type``, ``password_length``...).
NON_SECRET_SUFFIXES: tuple[str, ...] = ("type", "count", "length", "len", "expires", "expires_in",
                                        "expiry", "ttl", "max", "used", "limit", "policy", "name",
                                        "id_type", "enabled", "required", "changed", "age")
#: ``key: value`` (colon, unquoted key) is masked only for these keys, to spare prose.
STRONG_KEYS = ("password", "passwd", "pwd", "secret", "api_key", "apikey", "client_secret",
               "access_token", "refresh_token", "auth_token", "private_key", "secret_key",
               "aws_secret_access_key")
#: Values that are never secrets, whatever their key says (``CredentialRotation=True``).
PLACEHOLDERS = frozenset({"", "true", "false", "yes", "no", "null", "none", "-", "n/a", "***"})
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_CARD_PREFIXES = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|2)|35")


@dataclass(frozen=True, slots=True)
class Rule:
    """A user rule: ``pattern`` matches are replaced by ``replacement`` (backrefs allowed)."""

    name: str
    pattern: str
    replacement: str = "***"


@dataclass(slots=True)
class MaskingConfig:
    """What to mask. Load from a dict (e.g. YAML config) with :meth:`from_dict`."""

    enabled: bool = True
    mask: str = "***"
    secret_keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    key_values: bool = True
    credit_cards: bool = True
    aws_keys: bool = True
    bearer_tokens: bool = True
    jwts: bool = True
    url_credentials: bool = True
    emails: bool = False
    extra_rules: tuple[Rule, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MaskingConfig:
        """Build a config from a mapping; unknown keys raise ValueError, rules are validated."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown masking option(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        if "secret_keys" in values:
            values["secret_keys"] = tuple(str(k).lower() for k in values["secret_keys"])
        if "extra_rules" in values:
            values["extra_rules"] = tuple(_rule(r) for r in values["extra_rules"])
        return cls(**values)


def _rule(raw: Rule | Mapping[str, Any]) -> Rule:
    """A :class:`Rule` from a mapping, with its regex checked."""
    rule = raw if isinstance(raw, Rule) else Rule(**dict(raw))
    try:
        re.compile(rule.pattern)
    except re.error as exc:
        raise ValueError(f"masking rule {rule.name!r}: bad regex: {exc}") from None
    return rule


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _strong(key: str) -> bool:
    """Keys whose unquoted ``key: value`` form is masked (prose like ``Token: Yes`` is not)."""
    norm = key.lower().replace("-", "_").rstrip("\"'")
    return norm.endswith(STRONG_KEYS)


class Masker:
    """A compiled :class:`MaskingConfig`: :meth:`mask_text` and :meth:`mask_record`."""

    def __init__(self, config: MaskingConfig | None = None) -> None:
        """Precompile the rules of ``config`` (defaults when None)."""
        self.config = config or MaskingConfig()
        keys = "|".join(sorted((re.escape(k) for k in self.config.secret_keys), key=len, reverse=True))
        self._kv = re.compile(
            rf"(?i)(?<![\w-])([\w.-]*(?:{keys})[\w-]*)(\s*=\s*|[\"']?\s*:\s*)"
            r"""(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s"'&,;}\]\)]+))""")
        self._key_probe = re.compile("|".join(sorted({re.escape(k[:4]) for k in self.config.secret_keys})))
        # After bearer/basic: any 8+ token characters. After "token": only something credential-like
        # (a digit in 8+ characters, or 16+), so prose ("Token refreshed for user") stays as it is.
        self._bearer = re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9\-._~+/]{8,}=*)(?=[\s\"',;]|$)"
                                  r"|\b(token)\s+((?=[A-Za-z0-9\-._~+/]*\d)[A-Za-z0-9\-._~+/]{8,}=*"
                                  r"|[A-Za-z0-9\-._~+/]{16,}=*)(?=[\s\"',;]|$)")
        self._jwt = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
        self._aws = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
        self._card = re.compile(r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d-]|\.\d)")
        self._url = re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]+:)([^/\s@]+)(@)", re.I)
        self._email = re.compile(r"\b([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b")
        self._extra = [(re.compile(r.pattern), r.replacement) for r in self.config.extra_rules]
        self._digits = re.compile(r"\d{4}[ -]?\d{4}[ -]?\d\d")
        self._step_list = [(probe, step) for enabled, probe, step in self._steps() if enabled]
        self._candidates = self._candidate_pattern()

    def _candidate_pattern(self) -> str | None:
        """An RE2 pattern matching every text some enabled step's probe would accept (a superset),
        or None when every text must be looked at (user rules)."""
        cfg = self.config
        if self._extra:
            return None
        parts = []
        if cfg.jwts:
            parts.append("(?i:eyj)")
        if cfg.bearer_tokens:
            # "token" only before something credential-like (see ``_bearer``), so prose stays out
            token_chars = r"[A-Za-z0-9\-._~+/]"
            parts.append(f"(?i:bearer|basic|token\\s+(?:{token_chars}*[0-9]|{token_chars}{{16}}))")
        if cfg.url_credentials:
            parts.append("://")
        if cfg.key_values:
            # a key holding a secret-key fragment, then a separator (as the key=value rule needs)
            fragments = "|".join(sorted({re.escape(k[:4]) for k in cfg.secret_keys}))
            parts.append(f"(?i:(?:{fragments})[\\w.-]*[\"']?\\s*[=:])")
        if cfg.aws_keys:
            parts.append("AKIA|ASIA")
        if cfg.credit_cards:
            parts.append(r"\d{4}[ -]?\d{4}[ -]?\d\d")
        if cfg.emails:
            parts.append("@")
        return "|".join(parts) if parts else "$^"

    def mask_array(self, values: "pa.Array | pa.ChunkedArray") -> "pa.Array":
        """Mask a string column: a vectorized prefilter picks the rows that may hold a secret, and
        only those go through :meth:`mask_text`."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not self.config.enabled or len(values) == 0:
            return values
        if self._candidates is None:
            return pa.array([None if v is None else self.mask_text(v) for v in values.to_pylist()], pa.string())
        hits = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(values, self._candidates), False))
        if len(hits) == 0:
            return values
        rows = hits.to_pylist()
        masked = [self.mask_text(v) for v in values.take(hits).to_pylist()]
        python = values.to_pylist()
        for row, text in zip(rows, masked):
            python[row] = text
        return pa.array(python, pa.string())

    def mask_text(self, text: str) -> str:
        """Mask every enabled kind of secret in ``text``."""
        cfg = self.config
        if not cfg.enabled or not text:
            return text
        lower = text.lower()
        for probe, step in self._step_list:
            if probe(text, lower):
                text = step(text)
                lower = text.lower()
        for pattern, replacement in self._extra:
            text = pattern.sub(replacement, text)
        return text

    def _steps(self) -> list[tuple[bool, Callable[[str, str], bool], Callable[[str], str]]]:
        """(enabled, cheap prefilter, masking step) in application order."""
        cfg = self.config
        return [
            (cfg.jwts, lambda t, lo: "eyj" in lo, lambda t: self._jwt.sub(cfg.mask, t)),
            (cfg.bearer_tokens, lambda t, lo: "bearer" in lo or "basic" in lo or "token " in lo,
             lambda t: self._bearer.sub(lambda m: f"{m.group(1) or m.group(3)} {cfg.mask}", t)),
            (cfg.url_credentials, lambda t, lo: "://" in t and "@" in t,
             lambda t: self._url.sub(lambda m: f"{m.group(1)}{cfg.mask}{m.group(3)}", t)),
            (cfg.key_values, lambda t, lo: self._key_probe.search(lo) is not None, self._mask_kv),
            (cfg.aws_keys, lambda t, lo: "AKIA" in t or "ASIA" in t, lambda t: self._aws.sub(cfg.mask, t)),
            (cfg.credit_cards, lambda t, lo: self._digits.search(t) is not None, self._mask_cards),
            (cfg.emails, lambda t, lo: "@" in t,
             lambda t: self._email.sub(lambda m: f"{cfg.mask}@{m.group(2)}", t)),
        ]

    def _mask_kv(self, text: str) -> str:
        """``password=x``, ``"token": "x"``, ``secret: x`` -> value masked (quotes kept)."""
        def repl(m: re.Match[str]) -> str:
            key, sep = m.group(1), m.group(2)
            value = next(g for g in m.groups()[2:] if g is not None)
            if value.lower() in PLACEHOLDERS or not self.is_secret_key(key) \
                    or (sep.strip() == ":" and not _strong(key)):
                return m.group(0)
            if m.group(3) is not None:
                return f'{key}{sep}"{self.config.mask}"'
            if m.group(4) is not None:
                return f"{key}{sep}'{self.config.mask}'"
            return f"{key}{sep}{self.config.mask}"

        return self._kv.sub(repl, text)

    def _mask_cards(self, text: str) -> str:
        """Luhn-valid 13-19 digit numbers with a card-network prefix -> mask + last 4 digits."""
        def repl(m: re.Match[str]) -> str:
            digits = re.sub(r"[ -]", "", m.group())
            if 13 <= len(digits) <= 19 and _CARD_PREFIXES.match(digits) and luhn_ok(digits):
                return f"{self.config.mask}{digits[-4:]}"
            return m.group()

        return self._card.sub(repl, text)

    def is_secret_key(self, key: str) -> bool:
        """True when a field name names a secret (``db_password``, ``X-Api-Key``...)."""
        norm = _CAMEL.sub(r"\1_\2", key).lower().replace("-", "_").replace(".", "_")
        last = norm.rsplit("_", 1)[-1]
        if last in NON_SECRET_SUFFIXES or norm.endswith(NON_SECRET_SUFFIXES):
            return False
        parts = set(norm.split("_"))
        return any(k in parts or (len(k) >= 6 and k in norm) for k in self.config.secret_keys)

    def mask_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A masked deep copy of a record dict: secret-named fields and every string value."""
        if not self.config.enabled:
            return dict(record)
        return {key: self._mask_value(key, value) for key, value in record.items()}

    def _mask_value(self, key: str | None, value: Any) -> Any:
        """Mask one value according to its key and type."""
        if isinstance(value, Mapping):
            return {k: self._mask_value(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask_value(key, v) for v in value]
        if key is not None and isinstance(value, (str, int, float)) and not isinstance(value, bool) \
                and str(value).lower() not in PLACEHOLDERS and self.is_secret_key(key):
            return self.config.mask
        if isinstance(value, str):
            return self.mask_text(value)
        return value


_DEFAULT = Masker()


def mask_text(text: str, config: MaskingConfig | None = None) -> str:
    """Mask secrets in one string (default rules unless ``config`` is given)."""
    return (_DEFAULT if config is None else Masker(config)).mask_text(text)


def mask_record(record: Mapping[str, Any], config: MaskingConfig | None = None) -> dict[str, Any]:
    """Mask secrets in a record dict (default rules unless ``config`` is given)."""
    return (_DEFAULT if config is None else Masker(config)).mask_record(record)
