"""Loghub-style header formats such as ``<Date> <Time> <Level> <Component>: <Content>``.

Angle-bracket names are fields; everything else is literal regex text (so a
format may contain escapes like ``\\[`` or an optional group), and each run of
spaces matches any run of whitespace, as in the Loghub benchmark tooling.
"""
from __future__ import annotations

import re

CONTENT_FIELD = "Content"
_FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


class HeaderFormat:
    """A compiled header format; extracts the header fields and the free-text Content."""

    __slots__ = ("format", "fields", "regex")

    def __init__(self, log_format: str) -> None:
        self.format = log_format
        self.fields, self.regex = compile_format(log_format)

    def parse(self, line: str) -> dict[str, str] | None:
        """Return the fields of ``line`` (``None`` when the line does not match the format)."""
        match = self.regex.match(line.strip())
        if match is None:
            return None
        return {name: value or "" for name, value in match.groupdict().items()}

    def content(self, line: str) -> str:
        """Return the Content field, or the whole (stripped) line when the header does not match."""
        stripped = line.strip()
        match = self.regex.match(stripped)
        if match is None:
            return stripped
        return match.group(CONTENT_FIELD) or ""


def compile_format(log_format: str) -> tuple[tuple[str, ...], re.Pattern[str]]:
    """Turn a header format into its field names and an anchored regex with one named group per field."""
    pieces = _FIELD.split(log_format)
    fields = tuple(pieces[1::2])
    if CONTENT_FIELD not in fields:
        raise ValueError(f"log format has no <{CONTENT_FIELD}> field: {log_format!r}")
    if len(set(fields)) != len(fields):
        raise ValueError(f"log format repeats a field: {log_format!r}")
    regex_parts = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            regex_parts.append(re.sub(" +", r"\\s+", piece))
        else:
            regex_parts.append(f"(?P<{piece}>.*?)")
    try:
        regex = re.compile("^" + "".join(regex_parts) + "$", re.DOTALL)
    except re.error as exc:
        raise ValueError(f"invalid log format {log_format!r}: {exc}") from exc
    return fields, regex
