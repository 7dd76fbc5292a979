"""Bad input never raises; files of records in every container; stream detection; registry."""
from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.formats import FORMATS, ParsedRecord, detect, detect_stream, parse, read_records, registry
from logwarden.formats.registry import Parser
from logwarden.formats.text import TextParser, sniff as text_sniff

LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
PREFIXES = [b"", b"<34>", b"<165>1 ", b"{", b"[", b"CEF:0|", b"LEEF:1.0|", b"Oct 11 22:14:15 ",
            b"1,2021/07/20 23:59:02,1,TRAFFIC,", b"<Event>", b"#Fields: ", b"a=b ",
            b"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \""]


def check(rec: ParsedRecord) -> None:
    """The invariants every parsed record keeps."""
    assert rec.level in LEVELS
    assert rec.timestamp is None or rec.timestamp.utcoffset().total_seconds() == 0
    assert rec.duration_ms is None or rec.duration_ms >= 0
    assert rec.format in FORMATS
    assert rec.parse_error is None or isinstance(rec.parse_error, str)
    orjson.dumps(rec.to_dict())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=300), fmt=st.sampled_from(FORMATS + [None]))
def test_no_parser_raises_on_arbitrary_bytes(prefix: bytes, body: bytes, fmt: str | None) -> None:
    data = prefix + body
    found = detect(data)
    assert found.format in FORMATS and 0.0 <= found.confidence <= 1.0
    check(parse(data, fmt))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200), fmt=st.sampled_from(FORMATS))
def test_no_parser_raises_on_arbitrary_text(text: str, fmt: str) -> None:
    check(parse(text, fmt))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=20), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(obj=st.dictionaries(st.sampled_from(["msg", "level", "time", "ts", "Event", "_raw", "eventTime",
                                            "eventSource", "eventVersion", "winlog", "EventID",
                                            "resourceLogs", "status", "x"]), json_values, max_size=6),
       fmt=st.sampled_from(FORMATS + [None]))
def test_no_parser_raises_on_arbitrary_dicts(obj: dict, fmt: str | None) -> None:
    check(parse(obj, fmt))


@pytest.mark.parametrize("data", [
    b"\x00" * 50, b"\xff\xfe\xfd invalid utf8 \xc3(", b"<34>Oct 11 22:14:15 host app: \x00nul\x00",
    b'{"msg": "truncated', b"<165>1 2003-10-11T22:14:15.003Z host app - - [bad", b"\n\n\n",
    b"<Event><System><EventID>1</EventID>", b"CEF:0|only|three", b"LEEF:1.0|x",
])
def test_bad_input_is_flagged_not_raised(data: bytes) -> None:
    rec = parse(data)
    check(rec)


def test_binary_junk_is_text_with_parse_error() -> None:
    rec = parse(b"\x00\x01\x02\x03\x04\x05 junk \x00")
    assert rec.format == "text" and rec.parse_error == "binary data"
    assert text_sniff(b"\x00\x01") < text_sniff(b"plain")


def test_invalid_utf8_is_kept_and_flagged() -> None:
    rec = parse(b"<34>Oct 11 22:14:15 host app: caf\xe9")
    assert rec.format == "syslog-rfc3164" and rec.attributes["invalid_utf8"] is True
    assert rec.message == "caf\ufffd"


@pytest.mark.parametrize("fmt", FORMATS)
def test_huge_lines_are_truncated_text(fmt: str) -> None:
    huge = b"<34>Oct 11 22:14:15 host app: " + b"x" * (2 << 20)
    rec = parse(huge, fmt)
    assert rec.format == "text" and "too large" in rec.parse_error
    assert len(rec.message) <= 64 * 1024


def test_unknown_format_name_is_a_clear_rejection() -> None:
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        parse(b"x", "nope")


def test_configured_text_header_pattern() -> None:
    original = registry.get("text")
    custom = TextParser([r"(?P<ts>\S+) \[(?P<service>\w+)\] (?P<level>\w+) (?P<msg>.*)"])
    registry.register(Parser("text", original.sniff, custom.parse))
    try:
        rec = parse(b"2024-01-02T03:04:05Z [billing] error payment failed", "text")
    finally:
        registry.register(original)
    assert (rec.service, rec.level, rec.message) == ("billing", "ERROR", "payment failed")
    assert rec.timestamp.isoformat() == "2024-01-02T03:04:05+00:00"


def test_detect_stream_names_the_dominant_format() -> None:
    lines = [b"<34>Oct 11 22:14:15 host app: hello"] * 9 + [b"free text"]
    found = detect_stream(lines)
    assert found.format == "syslog-rfc3164" and 0.7 < found.confidence < 0.9
    assert detect_stream([]).confidence == 0.0


def test_unknown_format_falls_back_to_text_with_low_confidence() -> None:
    found = detect(b"Lorem ipsum dolor sit amet")
    assert found.format == "text" and found.confidence <= 0.2


SYSLOG = b"<34>Oct 11 22:14:15 host app: one\n<34>Oct 11 22:14:16 host app: two\n"


def write(tmp: Path, name: str, data: bytes) -> Path:
    """Write a fixture file."""
    path = tmp / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("pack", [lambda b: b, gzip.compress, lambda b: zstandard.ZstdCompressor().compress(b)])
def test_read_records_plain_gzip_zstd(tmp_path: Path, pack: Callable[[bytes], bytes]) -> None:
    recs = list(read_records(write(tmp_path, "log", pack(SYSLOG))))
    assert [(r.number, r.data) for r in recs] == [(1, SYSLOG.splitlines()[0]), (2, SYSLOG.splitlines()[1])]


def test_read_records_zip_members(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("b.log", SYSLOG)
        archive.writestr("a.json", json.dumps({"Records": [{"eventTime": "2024-01-01T00:00:00Z"}]}))
    recs = list(read_records(write(tmp_path, "x.zip", buf.getvalue())))
    assert [r.source for r in recs] == ["a.json", "b.log", "b.log"]
    assert isinstance(recs[0].data, dict)


def test_read_records_json_array_and_single_document(tmp_path: Path) -> None:
    recs = list(read_records(write(tmp_path, "a.json", b'[\n {"msg": "a"},\n {"msg": "b"}\n]')))
    assert [r.data for r in recs] == [{"msg": "a"}, {"msg": "b"}]
    doc = list(read_records(write(tmp_path, "d.json", b'{\n  "msg": "pretty",\n  "level": "warn"\n}\n')))
    assert len(doc) == 1 and parse(doc[0]).level == "WARNING"


def test_read_records_xml_events(tmp_path: Path) -> None:
    event = (b'<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
             b'<Provider Name="P"/><EventID>%d</EventID><Level>2</Level>'
             b'<TimeCreated SystemTime="2024-01-01T00:00:00Z"/></System></Event>')
    data = b'<?xml version="1.0"?>\n<Events>\n' + b"\n".join(event % i for i in range(3)) + b"\n</Events>"
    recs = [parse(r) for r in read_records(write(tmp_path, "e.xml", data))]
    assert [r.attributes["event_id"] for r in recs] == [0, 1, 2]
    assert all(r.level == "ERROR" and r.service == "P" for r in recs)


def test_read_records_folds_continuations_and_skips_blank_lines(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfpanic: boom\n   at a.py:1\n\tat b.py:2\n\nnext line\n"
    recs = list(read_records(write(tmp_path, "t.log", data)))
    assert [(r.number, r.data) for r in recs] == [(1, b"panic: boom\n   at a.py:1\n\tat b.py:2"),
                                                  (5, b"next line")]


def test_read_records_cuts_huge_lines(tmp_path: Path) -> None:
    data = b"a" * (3 << 20) + b"\nsmall\n"
    recs = list(read_records(write(tmp_path, "h.log", data)))
    assert recs[-1].data == b"small" and len(recs[0].data) <= (1 << 20) + 1
    assert parse(recs[0]).parse_error


def test_read_records_salvages_json_without_commas(tmp_path: Path) -> None:
    data = b'{"Records": [{"eventTime": "t1"}\n{"eventTime": "t2"}, {"eventTime": "t3"}, {broken'
    recs = list(read_records(write(tmp_path, "c.json", data)))
    assert [r.data for r in recs[:3]] == [{"eventTime": "t1"}, {"eventTime": "t2"}, {"eventTime": "t3"}]
    assert recs[3].data == b"{broken"


def test_read_records_empty_file(tmp_path: Path) -> None:
    assert list(read_records(write(tmp_path, "empty", b""))) == []


def test_integers_beyond_64_bits_in_a_decoded_dict_become_strings():
    rec = parse({"msg": "m", "Event": -(2 ** 63) - 1, "nested": {"n": 2 ** 70, "ok": 5}}, "json")
    assert rec.attributes["Event"] == str(-(2 ** 63) - 1)
    assert rec.attributes["nested"] == {"n": str(2 ** 70), "ok": 5}
    orjson.dumps(rec.to_dict())
