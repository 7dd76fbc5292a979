"""Bytes of a file -> its records, with the offset from which nothing is emitted yet.

A :class:`Framer` is fed the bytes of one file in order and hands out items:

- :class:`Block`: complete lines, untouched (plain files without multi-line rules: the fast path
  parses the whole block at once);
- :class:`Entry`: one record made of one or more lines (multi-line records, container lines, a
  line cut at ``max_line_bytes``);
- :class:`Dead`: bytes of a line past ``max_line_bytes``, for the dead-letter store.

Items are handed out **in the order of their first byte**, and an item is handed out only when it
lies wholly before everything not complete yet; so :meth:`Framer.resume` — the first byte of the
first item not handed out yet — is an exact checkpoint: every line before it was handed out, no
line after it was. Reading again from there (after a crash) neither repeats nor skips a line,
whatever the timeouts grouped before.

A line waits for its newline; after ``line_timeout`` (or at the end of a rotated or deleted file)
it is taken as it is. A line longer than ``max_line_bytes`` is cut there: its first
``max_line_bytes`` bytes are a record (``truncated``), the rest is dead-lettered in pieces of at
most ``max_line_bytes`` as it is read, so that a line without end never stalls the file nor
fills the memory (``skipping`` is then part of the checkpoint).

Container files (``cri``, ``docker-json``) are framed per stream: the ``P`` parts of a CRI line
(the parts of a docker line without ``\\n``) are joined with their final part, and multi-line
rules apply to the content of the lines, per stream.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logwarden.collector.sources.config import Multiline
from logwarden.collector.sources.multiline import Rule, rule_of
from logwarden.formats.containers import CRI, DOCKER, split_cri, split_docker

PLAIN = "plain"


@dataclass(slots=True)
class Block:
    """Complete lines (each ends with ``\\n``) from ``start`` to ``end``."""

    data: bytes
    start: int
    end: int


@dataclass(slots=True)
class Container:
    """What a container runtime says about a line: its format, time, stream and docker attrs."""

    format: str
    time: str
    stream: str
    attrs: dict[str, Any] | None = None
    partial: bool = False  # a split line whose last part never came


@dataclass(slots=True)
class Entry:
    """One record: its lines (the content of container lines), from ``start`` to ``end``."""

    lines: list[bytes]
    start: int
    end: int
    container: Container | None = None
    truncated: bool = False


@dataclass(slots=True)
class Dead:
    """Bytes of an overlong line past its cut."""

    raw: bytes
    error: str
    start: int
    end: int


@dataclass(slots=True)
class _Pending:
    """A multi-line record waiting for its next line, or the parts of a split container line."""

    lines: list[bytes]
    start: int
    end: int
    since: float
    container: Container | None = None
    state: int = 0
    size: int = 0


@dataclass
class Framer:
    """Frames the bytes of one file from ``pos`` on (see the module docstring)."""

    pos: int
    mode: str = PLAIN  # PLAIN, "cri" or "docker-json"
    multiline: Multiline | None = None
    max_line_bytes: int = 256 * 1024
    line_timeout: float = 5.0
    skipping: bool = False
    _buf: bytes = b""
    _buf_start: int = 0
    _buf_since: float = 0.0
    _rule: Rule | None = None
    _groups: dict[str, _Pending] = field(default_factory=dict)  # multi-line records, per stream
    _parts: dict[str, _Pending] = field(default_factory=dict)  # split container lines, per stream
    _held: list[Block | Entry | Dead] = field(default_factory=list)
    _out: list[Block | Entry | Dead] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._buf_start = self.pos
        self._rule = rule_of(self.multiline) if self.multiline is not None else None
        self.bulk = self.mode == PLAIN and self._rule is None

    # input ------------------------------------------------------------------------------------
    def feed(self, data: bytes, now: float) -> None:
        """The next bytes of the file."""
        if not data:
            return
        if self.skipping:
            cut = data.find(b"\n")
            piece = data if cut < 0 else data[:cut]
            self._dead(piece, self.pos, self.pos + len(piece) + (0 if cut < 0 else 1))
            self.pos += len(data) if cut < 0 else cut + 1
            if cut < 0:
                self._release()
                return
            self.skipping = False
            data = data[cut + 1:]
            self._buf_start = self.pos
            if not data:
                self._release()
                return
        buf = self._buf + data if self._buf else data
        start = self._buf_start
        last = buf.rfind(b"\n")
        if last >= 0:
            self._lines(buf[: last + 1], start, now)
            start += last + 1
            buf = buf[last + 1:]
            self._buf_since = now
        elif not self._buf:
            self._buf_since = now
        self._buf, self._buf_start = buf, start
        self.pos = start + len(buf)
        if len(buf) > self.max_line_bytes:  # a line longer than the limit: cut it, skip to its end
            self._line(buf[: self.max_line_bytes], start, start + self.max_line_bytes, now, truncated=True)
            self._dead(buf[self.max_line_bytes:], start + self.max_line_bytes, self.pos)
            self._buf, self._buf_start, self.skipping = b"", self.pos, True
        self._release()

    def tick(self, now: float, final: bool = False) -> None:
        """Take what waited too long: a line without newline, unfinished container lines, multi-line
        records; everything when ``final`` (the file will not grow any more)."""
        if self._buf and (final or now - self._buf_since >= self.line_timeout):
            buf, start = self._buf, self._buf_start
            self._buf, self._buf_start = b"", self.pos
            self._line(buf, start, self.pos, now)
        for stream, parts in list(self._parts.items()):
            if final or now - parts.since >= self.line_timeout:
                del self._parts[stream]
                parts.container.partial = True
                self._logical(b"".join(parts.lines), parts.start, parts.end, parts.container, now)
        if self._rule is not None:
            timeout = self.multiline.timeout
            for stream, group in list(self._groups.items()):
                if final or now - group.since >= timeout:
                    del self._groups[stream]
                    self._emit_group(group)
        self._release()

    # output -----------------------------------------------------------------------------------
    def take(self) -> list[Block | Entry | Dead]:
        """The items ready, in the order of their first byte."""
        out, self._out = self._out, []
        return out

    def resume(self) -> int:
        """The first byte of the first item not handed out yet (the read position when none)."""
        return min([self._floor(), *(item.start for item in self._held)])

    @property
    def pending(self) -> bool:
        """Whether anything read waits (a partial line, a split line, a multi-line record, held items)."""
        return bool(self._buf or self._parts or self._groups or self._held)

    # framing ----------------------------------------------------------------------------------
    def _floor(self) -> int:
        """The first byte of what is still being framed (a partial line, split lines, a multi-line record)."""
        starts = [self._buf_start if self._buf else self.pos]
        starts += [parts.start for parts in self._parts.values()]
        starts += [group.start for group in self._groups.values()]
        return min(starts)

    def _release(self) -> None:
        """Hand out the complete items that lie wholly before everything not handed out.

        An item of one stream may span lines of another (interleaved stdout and stderr): it waits while
        anything it spans is not complete, and so does everything after its first byte; so every line
        before :meth:`resume` is handed out, and none after it.
        """
        held = self._held
        if not held:
            return
        bound = self._floor()
        blocked = [False] * len(held)
        changed = True
        while changed:
            changed = False
            for index, item in enumerate(held):
                if not blocked[index] and item.end > bound:
                    blocked[index], changed = True, True
                    bound = min(bound, item.start)
        ready = [item for item, wait in zip(held, blocked) if not wait]
        if ready:
            ready.sort(key=_start)
            self._out.extend(ready)
            self._held = [item for item, wait in zip(held, blocked) if wait]

    def _dead(self, raw: bytes, start: int, end: int) -> None:
        step = self.max_line_bytes
        for offset in range(0, max(len(raw), 1), step):
            piece = raw[offset: offset + step]
            piece_end = end if offset + step >= len(raw) else start + offset + len(piece)
            self._held.append(Dead(piece, f"line longer than {self.max_line_bytes} bytes: bytes past the cut",
                                   start + offset, piece_end))

    def _lines(self, block: bytes, start: int, now: float) -> None:
        """Complete lines (``block`` ends with a newline)."""
        if self.bulk and not _has_long_line(block, self.max_line_bytes):
            self._held.append(Block(block, start, start + len(block)))
            return
        offset = start
        for line in block.split(b"\n")[:-1]:
            end = offset + len(line) + 1
            if len(line) > self.max_line_bytes:
                self._line(line[: self.max_line_bytes], offset, offset + self.max_line_bytes, now, truncated=True)
                self._dead(line[self.max_line_bytes:], offset + self.max_line_bytes, end)
            else:
                self._line(line, offset, end, now)
            offset = end

    def _line(self, line: bytes, start: int, end: int, now: float, truncated: bool = False) -> None:
        """One physical line (without its newline)."""
        if line.endswith(b"\r"):
            line = line[:-1]
        if self.mode == CRI:
            parts = split_cri(line)
            if parts is not None:
                self._container_part(parts.content, parts.partial, Container(CRI, parts.time, parts.stream),
                                     start, end, now)
                return
        elif self.mode == DOCKER:
            parts = split_docker(line)
            if parts is not None:
                content = parts.log.encode("utf-8", "surrogatepass")
                self._container_part(content, not parts.complete,
                                     Container(DOCKER, parts.time, parts.stream, parts.attrs), start, end, now)
                return
        if self._rule is None:
            if line.strip():
                self._held.append(Entry([line], start, end, truncated=truncated))
            return
        self._logical(line, start, end, None, now, truncated)

    def _container_part(self, content: bytes, partial: bool, container: Container, start: int, end: int,
                        now: float) -> None:
        pending = self._parts.get(container.stream)
        if pending is None and not partial:
            self._logical(content, start, end, container, now)
            return
        if pending is None:
            pending = self._parts[container.stream] = _Pending([], start, end, now, container)
        pending.lines.append(content)
        pending.end, pending.size = end, pending.size + len(content)
        if partial and pending.size < self.max_line_bytes:
            return
        del self._parts[container.stream]
        joined = b"".join(pending.lines)
        truncated = len(joined) > self.max_line_bytes
        self._logical(joined[: self.max_line_bytes], pending.start, pending.end, pending.container, now,
                      truncated)

    def _logical(self, content: bytes, start: int, end: int, container: Container | None, now: float,
                 truncated: bool = False) -> None:
        """One line of a record (the content of a container line): grouped by the multi-line rule."""
        rule = self._rule
        if rule is None:
            if content.strip():
                self._held.append(Entry([content], start, end, container, truncated))
            return
        stream = container.stream if container is not None else ""
        group = self._groups.get(stream)
        if group is not None:
            more, state = rule.continues(content, group.state)
            if more and len(group.lines) < self.multiline.max_lines and group.size < self.max_line_bytes * 4:
                group.lines.append(content)
                group.end, group.state, group.since = end, state, now
                group.size += len(content)
                return
            del self._groups[stream]
            self._emit_group(group)
        if not content.strip():
            return
        self._groups[stream] = _Pending([content], start, end, now, container, rule.start_state(content),
                                        len(content))

    def _emit_group(self, group: _Pending) -> None:
        lines = group.lines
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        self._held.append(Entry(lines, group.start, group.end, group.container))


def _has_long_line(block: bytes, limit: int) -> bool:
    """Whether a line of ``block`` is longer than ``limit`` bytes: one backward search per ``limit`` bytes."""
    pos, size = 0, len(block)
    while pos + limit < size:
        newline = block.rfind(b"\n", pos, pos + limit + 1)
        if newline < 0:
            return True
        pos = newline + 1
    return False


def _start(item: Block | Entry | Dead) -> int:
    return item.start


__all__ = ["Block", "Container", "Dead", "Entry", "Framer", "PLAIN"]
