"""The README's "Send logs from…" section, read by the tests that run its snippets: the snippets of the
clients the tests use are the README's own text."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SEND_LOGS = "## Send logs from"
#: The default ports the snippets name, replaced by a test's own.
HTTP_PORT, FORWARD_PORT, SYSLOG_PORT = 8080, 24224, 5514


def send_logs_section() -> str:
    """The text of the section, up to the next second-level heading."""
    text = README.read_text(encoding="utf-8")
    assert text.count(SEND_LOGS) == 1, f"README.md has no single {SEND_LOGS!r} section"
    body = text.split(SEND_LOGS, 1)[1]
    return body.split("\n## ", 1)[0]


def fenced_blocks(text: str, info: str) -> list[str]:
    """The fenced code blocks of ``text`` whose info string is ``info`` ("" for blocks without one)."""
    return [match.group(2) for match in re.finditer(r"^```([^\n`]*)\n(.*?)^```\s*$", text, re.S | re.M)
            if match.group(1).strip() == info]


def with_ports(code: str, http: int, forward: int, syslog: int) -> str:
    """``code`` with the default ports replaced."""
    for default, port in ((HTTP_PORT, http), (FORWARD_PORT, forward), (SYSLOG_PORT, syslog)):
        code = re.sub(rf"\b{default}\b", str(port), code)
    return code


def rsyslog_action(port: int) -> str:
    """The README's rsyslog ``omfwd`` action (the whole ``action(...)`` statement) for ``port``."""
    blocks = [block for block in fenced_blocks(send_logs_section(), "") if 'type="omfwd"' in block]
    assert len(blocks) == 1, "the README has no single rsyslog block with an omfwd action"
    match = re.search(r'action\(type="omfwd".*?\)', blocks[0], re.S)
    assert match is not None
    return with_ports(match.group(0), HTTP_PORT, FORWARD_PORT, port)
