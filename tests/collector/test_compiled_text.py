"""The compiled decoders' JSON writer (collector/protocols/_textbuf.pxi) writes what orjson writes, and
refuses what Python's UTF-8 decoder refuses; the test install has the compiled modules built."""

from __future__ import annotations

import importlib

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from logwarden.collector.protocols._jsontext import json_int, json_string


def test_the_compiled_modules_are_built() -> None:
    """`make test` installs with Cython: a missing module would test (and benchmark) the Python fallback."""
    module = importlib.import_module("logwarden.collector.protocols._jsontext")
    assert module.__file__.endswith(".so")


@given(st.text())
@example("".join(map(chr, range(0x21))) + '\x7f"\\/é\u2028😀')
def test_json_string_is_orjson(text: str) -> None:
    assert json_string(text.encode()) == orjson.dumps(text)


@given(st.binary(max_size=40))
@example(b"\xed\xa0\x80")  # a surrogate
@example(b"\xc0\xaf")  # overlong
@example(b"\xf4\x90\x80\x80")  # past U+10FFFF
@example(b"\xe2\x82")  # cut short
def test_json_string_refuses_what_is_not_utf8(raw: bytes) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(ValueError, match="not UTF-8"):
            json_string(raw)
    else:
        assert json_string(raw) == orjson.dumps(text)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
@example(-(2**63))
@example(0)
def test_json_int_is_orjson(value: int) -> None:
    assert json_int(value) == orjson.dumps(value)
