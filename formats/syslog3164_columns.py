"""Plain BSD syslog lines parsed as Arrow columns at once: the fast path of ``syslog3164`` for big files.

It takes only the lines it can vouch for, giving exactly what :func:`logwarden.formats.syslog3164.parse`
gives them: ``[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`` with an English month, a date that exists,
a host and tag of plain characters (no level word where the host is), no payload another parser claims
(CEF, LEEF, Snare, PAN-OS candidates) and a message within the size limit. Every other line is left to the
per-record parsers (the mask says which), which detect its format and name what is wrong with it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from logwarden.formats import levels
from logwarden.formats.common import MAX_MESSAGE_CHARS
from logwarden.formats.syslog3164 import NAME
from logwarden.formats.timestamps import UTC

# Splitting at fixed places and separators costs a fraction of one regex with a capture per field.
_PRI = r"^<(?P<pri>0|[1-9][0-9]{0,2})>"
_TAG = r"^(?P<tag>[A-Za-z0-9_.\-/@+=~%,;]{1,64})(?:\[(?P<pid>[0-9]{0,32})\])?$"
_HOST = r"^[A-Za-z0-9_.][A-Za-z0-9_.\-]*$"
_YEAR = r"^[0-9]{4}$"  # "Mmm dd hh:mm:ss YYYY host": the per-record parser reads the year there
BSD_STAMP_CHARS = 15  # "Mmm dd hh:mm:ss", the day space-padded
# Payloads the detector gives to other parsers: such lines take the per-record path.
_CLAIMED = ("CEF:", "LEEF:", "MSWinEventLog")
_LEVEL_WORDS = pa.array(["TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR", "CRITICAL", "CRIT",
                         "FATAL", "SEVERE"])
_SEVERITY_LEVELS = pa.array([levels.from_syslog_severity(severity) for severity in range(8)])


def parse_lines(lines: pa.Array, reference: datetime | None = None) -> tuple[pa.Table, pa.Array]:
    """The lines taken, as columns ``timestamp`` (RFC 3339 text), ``level``, ``service``, ``message`` and
    ``attributes`` (JSON text, as the per-record path writes it), and the mask of the lines taken.

    ``reference`` dates the year-less timestamps (default now), as in the per-record parser."""
    part = _split(lines)
    stamps = _timestamps(part, reference or datetime.now(UTC))
    pri = part["pri"]
    taken = pc.and_kleene(part["plain"], pc.is_valid(stamps))
    taken = pc.and_kleene(taken, pc.is_valid(part["tag"]))
    taken = pc.and_kleene(taken, pc.match_substring_regex(part["host"], _HOST))
    taken = pc.and_kleene(taken, pc.invert(pc.match_substring_regex(part["host"], _YEAR)))
    taken = pc.and_kleene(taken, pc.invert(pc.is_in(pc.utf8_upper(part["host"]), _LEVEL_WORDS)))
    taken = pc.and_kleene(taken, pc.less_equal(pc.utf8_length(part["msg"]), MAX_MESSAGE_CHARS))
    taken = pc.and_kleene(taken, pc.less_equal(pc.fill_null(pri, 0), 191))
    for claimed in _CLAIMED:
        taken = pc.and_kleene(taken, pc.invert(pc.match_substring(lines, claimed)))
    taken = pc.and_kleene(taken, pc.invert(pc.and_(pc.match_substring(lines, ","), pc.match_substring(lines, "/"))))
    taken = pc.fill_null(taken, False)
    pri = pc.filter(pri, taken)
    table = pa.table({
        "timestamp": pc.strftime(pc.filter(stamps, taken), "%Y-%m-%dT%H:%M:%SZ"),  # %S carries the microseconds
        "level": pc.if_else(pc.is_valid(pri), pc.take(_SEVERITY_LEVELS, pc.bit_wise_and(pc.fill_null(pri, 0), 7)),
                            levels.INFO),
        "service": pc.filter(part["tag"], taken),
        "message": pc.filter(part["msg"], taken),
        "attributes": _attributes(pri, pc.filter(part["host"], taken), pc.filter(part["pid"], taken)),
    })
    return table, taken


def _split(lines: pa.Array) -> dict[str, pa.Array]:
    """``[<PRI>]STAMP HOST TAG[PID]: MSG`` cut into its parts (null where a line has no such part);
    ``plain`` is false for a line whose PRI is malformed or whose stamp is not followed by a space."""
    has_pri = pc.starts_with(lines, "<")
    pri_text = pc.struct_field(pc.extract_regex(pc.utf8_slice_codeunits(lines, 0, 6), _PRI), "pri")
    pri = pc.if_else(has_pri, pc.cast(pri_text, pa.int64()), pa.scalar(None, pa.int64()))
    body = lines
    if pc.any(has_pri).as_py():
        body = pc.replace_substring_regex(lines, _PRI, "", max_replacements=1)
    after_stamp = pc.utf8_slice_codeunits(body, BSD_STAMP_CHARS, BSD_STAMP_CHARS + 1)
    plain = pc.and_(pc.or_(pc.invert(has_pri), pc.is_valid(pri_text)), pc.equal(after_stamp, " "))
    host_and_tail = pc.split_pattern(pc.utf8_slice_codeunits(body, BSD_STAMP_CHARS + 1), " ", max_splits=1)
    tag_and_message = pc.split_pattern(_element(host_and_tail, 1), ": ", max_splits=1)
    tag = pc.extract_regex(_element(tag_and_message, 0), _TAG)
    return {"pri": pri, "stamp": pc.utf8_slice_codeunits(body, 0, BSD_STAMP_CHARS), "plain": plain,
            "host": _element(host_and_tail, 0), "tag": pc.struct_field(tag, "tag"),
            "pid": pc.struct_field(tag, "pid"), "msg": _element(tag_and_message, 1)}


def _element(lists: pa.Array, index: int) -> pa.Array:
    """Item ``index`` of each list, null where a list is null or shorter."""
    present = pc.fill_null(pc.greater(pc.list_value_length(lists), index), False)
    items = pc.list_element(pc.filter(lists, present), index)
    return pc.replace_with_mask(pa.nulls(len(lists), items.type), present, items)


def _timestamps(part: dict[str, pa.Array], reference: datetime) -> pa.Array:
    """The event times (UTC), the year inferred as the per-record parser does: this year, unless that is
    more than a day ahead of ``reference``, then last year. Dates that do not exist are null."""
    day_text = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(part["stamp"], 4, 6))
    day = pc.cast(pc.if_else(pc.utf8_is_digit(day_text), day_text, pa.scalar(None, pa.string())), pa.int64())

    def at(year: int) -> pa.Array:
        text = pc.binary_join_element_wise(str(year), part["stamp"], " ")
        stamps = pc.strptime(text, format="%Y %b %d %H:%M:%S", unit="us", error_is_null=True)
        same_day = pc.fill_null(pc.equal(pc.day(stamps), day), False)  # strptime rolls Feb 30 into March
        return pc.if_else(same_day, stamps, pa.scalar(None, stamps.type))

    this_year = at(reference.year)
    limit = pa.scalar(reference + timedelta(days=1), pa.timestamp("us", tz="UTC"))
    ahead = pc.fill_null(pc.greater(pc.assume_timezone(this_year, "UTC"), limit), True)
    return pc.assume_timezone(pc.if_else(ahead, at(reference.year - 1), this_year), "UTC")


def _attributes(pri: pa.Array, host: pa.Array, pid: pa.Array) -> pa.Array:
    """``{"facility":…,"severity":…,"hostname":"…","pid":"…","log_format":"syslog-rfc3164"}`` (facility and
    severity only with a PRI, pid only when present), the characters allowed needing no JSON escape."""
    facility = pc.cast(pc.shift_right(pri, 3), pa.string())
    severity = pc.cast(pc.bit_wise_and(pri, 7), pa.string())
    with_pri = pc.binary_join_element_wise('{"facility":', facility, ',"severity":', severity, ',"hostname":"', "")
    start = pc.fill_null(with_pri, '{"hostname":"')
    has_pid = pc.fill_null(pc.greater(pc.utf8_length(pid), 0), False)
    # the per-record parser keeps a pid only when it is not empty ("tag[]:" has none)
    pid_part = pc.if_else(has_pid, pc.binary_join_element_wise('","pid":"', pid, ""), "")
    return pc.binary_join_element_wise(start, host, pid_part, f'","log_format":"{NAME}"}}', "")
