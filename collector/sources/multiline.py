"""Multi-line records: which line continues the record before it.

A rule sees one line at a time and says whether it continues the pending record; a line that
does not begins a new record. The built-in rules recognise stack traces:

- ``java``: ``\\tat …`` frames, ``... 12 more``, ``Caused by:``, ``Suppressed:``, an exception class
  line (``java.lang.IllegalStateException: …``) and any indented line;
- ``python``: ``Traceback (most recent call last):``, its indented frames, the exception line that
  ends it, and the chained tracebacks (``During handling of the above exception…``,
  ``The above exception was the direct cause…``) with their blank lines; any indented line;
- ``go``: a ``panic:`` or ``fatal error:`` line begins a record that takes the goroutine dumps
  (``goroutine 1 [running]:``, function lines, tab-indented file lines, ``created by``, blank lines,
  ``exit status 2``).

``start`` (a regex) is the generic rule: a line matching it begins a record, any other line
continues the pending one.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod

from logwarden.collector.sources.config import Multiline

_INDENTED = re.compile(rb"[ \t]+\S")
_JAVA = re.compile(
    rb"[ \t]+at |[ \t]*\.\.\. \d+ (?:more|common frames omitted)|[ \t]*(?:Caused by|Suppressed): "
    rb"|(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable)(?::|$)"
)
_PY_TRACEBACK = re.compile(rb"[ \t]*Traceback \(most recent call last\):")
_PY_CHAIN = re.compile(rb"During handling of the above exception|The above exception was the direct cause")
_PY_EXCEPTION = re.compile(rb"[A-Za-z_][\w.]*(?::|$)")
_GO_START = re.compile(rb"panic: |fatal error: ")
_GO_TRACE = re.compile(
    rb"goroutine \d+ \[|[ \t]|created by |\[signal |exit status \d+|\.\.\.additional frames elided"
    rb"|[\w./*()\[\]-]+\(.*\)$|panic: .*\[recovered\]"
)

# states of the pending record
NORMAL, TRACE, EXCEPTION, CHAIN = 0, 1, 2, 3


class Rule(ABC):
    """Decides whether a line continues the pending record; ``state`` is the rule's state of that record."""

    def start_state(self, line: bytes) -> int:
        """The state of a record that ``line`` begins."""
        return NORMAL

    @abstractmethod
    def continues(self, line: bytes, state: int) -> tuple[bool, int]:
        """(whether ``line`` continues the record, the record's new state)."""


class StartPattern(Rule):
    """A line matching ``pattern`` begins a record; every other line continues it."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern.encode())

    def continues(self, line: bytes, state: int) -> tuple[bool, int]:
        return self.pattern.match(line) is None, state


class Java(Rule):
    def continues(self, line: bytes, state: int) -> tuple[bool, int]:
        return bool(_JAVA.match(line) or _INDENTED.match(line)), state


class Python(Rule):
    def start_state(self, line: bytes) -> int:
        return TRACE if _PY_TRACEBACK.match(line) else NORMAL

    def continues(self, line: bytes, state: int) -> tuple[bool, int]:
        if _PY_TRACEBACK.match(line):
            return (state in (NORMAL, CHAIN, EXCEPTION)), TRACE
        if state == TRACE:
            if _INDENTED.match(line):
                return True, TRACE
            if line.strip() and _PY_EXCEPTION.match(line):
                return True, EXCEPTION
            return False, NORMAL
        if state in (EXCEPTION, CHAIN):
            if not line.strip():
                return True, state
            if _PY_CHAIN.match(line):
                return True, CHAIN
            if _INDENTED.match(line):
                return True, state
            return False, NORMAL
        return bool(_INDENTED.match(line)), NORMAL


class Go(Rule):
    def start_state(self, line: bytes) -> int:
        return TRACE if _GO_START.match(line) else NORMAL

    def continues(self, line: bytes, state: int) -> tuple[bool, int]:
        if _GO_START.match(line) and not line.endswith(b"[recovered]"):
            return False, TRACE
        if state == TRACE:
            if not line.strip() or _GO_TRACE.match(line):
                return True, TRACE
            return False, NORMAL
        return bool(_INDENTED.match(line)), NORMAL


def rule_of(config: Multiline) -> Rule:
    """The rule a ``multiline`` setting names."""
    if config.rule == "start":
        return StartPattern(config.start or "")
    return {"java": Java, "python": Python, "go": Go}[config.rule]()


__all__ = ["Go", "Java", "Python", "Rule", "StartPattern", "rule_of"]
