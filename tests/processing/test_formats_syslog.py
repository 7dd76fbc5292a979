"""Syslog parsers against the shared test vectors (exact bytes, expected valid/invalid verdicts)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from logwarden.formats import detect, parse
from logwarden.formats.syslog3164 import parse as parse_3164

VECTORS = {"go-syslog_rfc5424_machine_test_vectors.jsonl": "syslog-rfc5424",
           "go-syslog_rfc3164_machine_test_vectors.jsonl": "syslog-rfc3164"}


def load_vectors(path: Path) -> list[tuple[bytes, bool | None, str]]:
    """(exact bytes, expected verdict or None, comment) of every vector."""
    out = []
    for line in path.read_text().splitlines():
        case = json.loads(line)
        data = base64.b64decode(case["input_b64"]) if "input_b64" in case else case["input"].encode()
        out.append((data, case.get("valid"), case.get("comment", "")))
    return out


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_verdicts_agree_with_go_syslog_vectors(shared_data: Path, name: str) -> None:
    vectors = load_vectors(shared_data / "formats" / "syslog" / name)
    disagree = [(data, valid) for data, valid, _ in vectors
                if (parse(data, VECTORS[name]).parse_error is None) != valid]
    assert len(vectors) >= 8
    assert disagree == []


def test_easypost_vectors_parse_except_out_of_range_pri(shared_data: Path) -> None:
    """The lenient EasyPost parser accepts PRI 409; RFC 5424 (and go-syslog) cap PRI at 191."""
    vectors = load_vectors(shared_data / "formats" / "syslog" /
                           "syslog-rfc5424-parser_test_message_parser_vectors.jsonl")
    rejected = [data for data, _, _ in vectors if parse(data, "syslog-rfc5424").parse_error]
    assert rejected == [b"<409>1 2016-01-15T00:00:00Z host2 prg - - - message"]
    assert all(detect(data).format == "syslog-rfc5424" for data, _, _ in vectors)


def test_valid_5424_vectors_are_detected_as_5424(shared_data: Path) -> None:
    vectors = load_vectors(shared_data / "formats" / "syslog" / "go-syslog_rfc5424_machine_test_vectors.jsonl")
    valid = [data for data, ok, _ in vectors if ok]
    assert all(detect(data).format == "syslog-rfc5424" for data in valid)


def test_rfc5424_field_mapping(shared_data: Path) -> None:
    data = (shared_data / "formats/syslog/rsyslog-fuzz-corpus/rfc5424-basic").read_bytes().strip()
    rec = parse(data)
    assert rec.format == "syslog-rfc5424" and rec.parse_error is None
    assert rec.timestamp == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=timezone.utc)
    assert rec.level == "INFO"  # <165> = local4.notice
    assert rec.service == "evntslog"
    assert rec.message == "An application event log entry"
    assert rec.attributes["msgid"] == "ID47"
    assert rec.attributes["structured_data"]["exampleSDID@32473"]["eventSource"] == "Application"


def test_rfc5424_escaped_sd_and_offset(shared_data: Path) -> None:
    data = (shared_data / "formats/syslog/rsyslog-fuzz-corpus/rfc5424-escaped-sd").read_bytes().strip()
    rec = parse(data)
    assert rec.attributes["structured_data"]["meta@32473"] == {"value": "escaped]bracket", "quote": '"'}
    assert rec.timestamp == datetime(2026, 7, 23, 7, 30, 45, tzinfo=timezone.utc)
    assert rec.level == "CRITICAL" and rec.message == "payload"


def test_rfc3164_field_mapping_with_year_inference(shared_data: Path) -> None:
    line = (shared_data / "formats/syslog/rsyslog-fuzz-corpus/rfc3164-basic").read_bytes().strip()
    rec = parse_3164(line, reference=datetime(2024, 1, 5, tzinfo=timezone.utc))
    assert rec.timestamp == datetime(2023, 10, 11, 22, 14, 15, tzinfo=timezone.utc)
    assert rec.level == "CRITICAL"  # <34> = auth.crit
    assert rec.service == "su"
    assert rec.attributes["hostname"] == "mymachine"
    assert rec.message == "'su root' failed for lonvick on /dev/pts/8"


def test_rfc3164_file_without_pri(shared_data: Path) -> None:
    line = (shared_data / "formats/syslog/elastic-examples/auth.log").read_bytes().splitlines()[0]
    rec = parse(line)
    assert rec.format == "syslog-rfc3164"
    assert (rec.timestamp.month, rec.timestamp.day, rec.timestamp.hour) == (3, 27, 13)
    assert rec.service == "sshd" and rec.attributes["pid"] == "1291"
    assert rec.message == "Server listening on 0.0.0.0 port 22."


def test_rfc3339_timestamps_convert_to_utc(shared_data: Path) -> None:
    lines = (shared_data / "formats/syslog/elastic-beats/tz-offset.log").read_bytes().splitlines()
    first = parse(lines[0])
    assert first.timestamp == datetime(1986, 4, 25, 21, 23, 45, 101000, tzinfo=timezone.utc)
    assert first.service == "shutdown"


def test_localized_month_names(shared_data: Path) -> None:
    line = (shared_data / "formats/syslog/lnav/logfile_syslog_fr.0").read_bytes().strip()
    rec = parse(line)
    assert rec.format == "syslog-rfc3164"
    assert (rec.timestamp.month, rec.timestamp.day) == (8, 19)
    assert rec.service == "symphorien" and rec.message == "test"


def test_truncated_and_broken_syslog_becomes_flagged_text() -> None:
    for data in (b"<34>1 2003-10-11T22:14", b"<999>Oct 11 22:14:15 host x", b"", b"<1>1 - - - - - [x"):
        fmt = "syslog-rfc5424" if b">1 " in data else "syslog-rfc3164"
        rec = parse(data, fmt)
        assert rec.format == "text" and rec.parse_error


@pytest.mark.parametrize("line, level", [
    (b"2026-12-07T20:00:19.978Z ERROR payment-service: charge failed", "ERROR"),
    (b"2026-12-07T20:00:19Z [WARN] checkout: slow response", "WARNING"),
    (b"Dec  7 20:00:18 ERROR payment-service: charge failed", "ERROR"),
])
def test_a_level_word_where_the_host_would_be_is_an_application_line_not_syslog(line, level):
    from logwarden.formats import detect, parse

    found = detect(line)
    assert found.format != "syslog-rfc3164"
    parsed = parse(line, found.format)
    assert parsed.level == level and "hostname" not in parsed.attributes
