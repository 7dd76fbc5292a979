# cython: language_level=3, boundscheck=False, wraparound=False
"""Python access to the compiled decoders' JSON writers (``_textbuf.pxd``), so tests can hold them to
orjson's output."""

include "_textbuf.pxi"


def json_string(bytes text) -> bytes:
    """``text`` (UTF-8) as a JSON string, as ``orjson.dumps(text.decode())`` writes it; ValueError when
    ``text`` is not UTF-8."""
    cdef TextBuf buf
    tb_init(&buf, len(text) + 2)
    try:
        tb_json_string(&buf, text, len(text))
        return tb_bytes(&buf, 0, buf.size)
    finally:
        tb_free(&buf)


def json_int(long long value) -> bytes:
    """``value`` as a JSON integer."""
    cdef TextBuf buf
    tb_init(&buf, 24)
    try:
        tb_int(&buf, value)
        return tb_bytes(&buf, 0, buf.size)
    finally:
        tb_free(&buf)
