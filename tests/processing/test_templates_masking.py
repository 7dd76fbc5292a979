"""Generic masks and Loghub header formats."""
from __future__ import annotations

import pytest

from logwarden.processing.templates import HeaderFormat, Masker
from logwarden.processing.templates.evaluation import grouping_accuracy, normalize_template, parsing_accuracy


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("connect to 10.250.19.102:50010 failed", "connect to <*>:<*> failed"),
        ("from /10.250.19.102:54106 ok", "from <*>:<*> ok"),
        ("retry 3 of 12 after -5 ms", "retry <*> of <*> after <*> ms"),
        ("took 3.25 s, load 1.5e3", "took <*> s, load <*>"),
        ("flags=0x1f00 mask 0XDEADBEEF addr deadbeefcafe", "flags=<*> mask <*> addr <*>"),
        ("session 70293f72-d7ad-4f6e-8e4b-7c2cd4c8d7d5 closed", "session <*> closed"),
        ("wrote /var/log/app/server.log and C:\\Temp\\x.txt", "wrote <*> and <*>"),
        ("fetch hdfs://10.10.34.11:9000/pjhe/logs/a.log:0+7 now", "fetch hdfs://<*> now"),
        ("nic 00:1a:2b:3c:4d:5e up", "nic <*> up"),
        ("block blk_-6952295868487656571 from attempt_01_000001", "block <*> from <*>"),
        ("stored 384.0 B, free 317.5 KB", "stored <*> B, free <*> KB"),
        ("state (HWID=1973) generating core.2275", "state (HWID=<*>) generating core.<*>"),
        ("delete blk_1 blk_2 blk_3 now", "delete <*> now"),
    ],
)
def test_generic_masks(masker: Masker, message: str, expected: str) -> None:
    assert masker.mask(message) == expected


def test_words_and_punctuation_are_kept(masker: Masker) -> None:
    message = 'Registered signal handlers for [TERM, HUP, INT] in org.apache.Main "ok"'
    assert masker.mask(message) == message


def test_masking_cache_is_transparent(masker: Masker) -> None:
    uncached = Masker(cache_size=0)
    for message in ("job 12 took 3.5 s", "job 98 took 1.0 s", "id deadbeef01 at 10.0.0.1", "id 12345678 x"):
        assert masker.mask(message) == uncached.mask(message)


def test_invalid_mask_is_rejected() -> None:
    with pytest.raises(ValueError):
        Masker([("broken", "(unclosed")])


def test_header_format_with_escaped_brackets_and_optional_group() -> None:
    header = HeaderFormat("<Label> <Date> <Component>(\\[<PID>\\])?: <Content>")
    fields = header.parse("- 2005.11.09 crond[2915]: session closed for user root")
    assert fields == {"Label": "-", "Date": "2005.11.09", "Component": "crond", "PID": "2915",
                      "Content": "session closed for user root"}
    assert header.parse("- 2005.11.09 kernel: boot")["PID"] == ""


def test_header_runs_of_spaces_match_any_whitespace() -> None:
    header = HeaderFormat("<Date> <Time>  <Pid> <Level> <Component>: <Content>")
    assert header.content("03-17 16:13:38.811  1702 D WindowManager: a  b") == "a  b"


def test_lines_not_matching_the_header_keep_the_whole_line() -> None:
    header = HeaderFormat("<Date> <Time> <Level> <Component>: <Content>")
    assert header.parse("just some text without header") is None
    assert header.content("  just some text without header \n") == "just some text without header"
    assert header.content("17/06/09 20:10:40 INFO spark.Executor: Running task 1.0") == "Running task 1.0"


def test_header_format_needs_content() -> None:
    with pytest.raises(ValueError):
        HeaderFormat("<Date> <Time>")


def test_grouping_accuracy_requires_identical_groups() -> None:
    truth = ["A", "A", "B", "B", "C"]
    assert grouping_accuracy(truth, [1, 1, 2, 2, 3]) == 1.0
    assert grouping_accuracy(truth, [1, 1, 2, 3, 3]) == pytest.approx(2 / 5)
    assert grouping_accuracy(truth, [1, 1, 1, 1, 2]) == pytest.approx(1 / 5)


def test_parsing_accuracy_normalises_wildcards() -> None:
    assert normalize_template("size <NUM> from <IP>") == "size <*> from <*>"
    assert parsing_accuracy(["a <*> b", "c"], ["a <NUM> b", "d"]) == 0.5
