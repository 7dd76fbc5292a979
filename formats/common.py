"""Helpers shared by the format parsers: decoding, field picking, error records."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from logwarden.formats.record import ParsedRecord

#: Records larger than this are not parsed structurally: they become truncated text records.
MAX_RECORD_BYTES = 1 << 20
#: Longest message kept on a record.
MAX_MESSAGE_CHARS = 64 * 1024

BOM = b"\xef\xbb\xbf"


def decode(data: bytes | str) -> tuple[str, bool]:
    """Decode bytes as UTF-8; on invalid UTF-8 fall back to replacement chars and say so."""
    if isinstance(data, str):
        return data, False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def to_bytes(data: bytes | str) -> bytes:
    """Encode text as UTF-8 (lone surrogates escaped) or return bytes unchanged."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return data


def pick(obj: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """Return the first ``(key, value)`` of ``keys`` present in ``obj`` (dotted keys descend)."""
    for key in keys:
        if key in obj:
            value = obj[key]
            if value is not None and value != "":
                return key, value
        elif "." in key and key[: key.index(".")] in obj:  # (the cheap test first: most heads are absent)
            value = dig(obj, key)
            if value is not None and value != "":
                return key, value
    return None, None


def dig(obj: Mapping[str, Any], dotted: str) -> Any:
    """Follow a dotted path (``log.level``) through nested dicts; None when absent."""
    current: Any = obj
    for part in dotted.split("."):
        if not (type(current) is dict or isinstance(current, Mapping)) or part not in current:
            return None
        current = current[part]
    return current


def field(obj: Mapping[str, Any], key: str) -> Any:
    """The value of ``key`` in ``obj``: a flattened dotted key (``"event.original"``, as Kibana and
    Beats' test files write them) or a nested path (``{"event": {"original": ...}}``); None when absent."""
    value = obj.get(key)
    if value is not None:
        return value
    dot = key.find(".")
    return dig(obj, key) if dot > 0 and key[:dot] in obj else None


def embedded(obj: Mapping[str, Any], keys: tuple[str, ...],
             markers: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, object)`` for each of ``keys`` whose value is an object, or a JSON object in a string that
    contains one of ``markers`` (the test that keeps application messages from being decoded for nothing)."""
    for key in keys:
        value = field(obj, key)
        if isinstance(value, dict):
            yield key, value
        elif isinstance(value, str):
            decoded = json_in(value, markers)
            if decoded is not None:
                yield key, decoded


def json_in(value: str, markers: tuple[str, ...]) -> dict[str, Any] | None:
    """The JSON object a string holds, when it starts like one and contains one of ``markers``."""
    if value[:1] != "{" or len(value) > MAX_RECORD_BYTES or not any(marker in value for marker in markers):
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of ``obj`` without ``key``, flattened or nested (``event.original`` leaves the rest of ``event``)."""
    if key in obj:
        return {k: v for k, v in obj.items() if k != key}
    head, _, rest = key.partition(".")
    copy = dict(obj)
    if rest and isinstance(copy.get(head), dict):
        copy[head] = without(copy[head], rest)
    return copy


def drop(obj: dict[str, Any], key: str | None) -> None:
    """Remove a (possibly dotted) key picked by :func:`pick` from ``obj``; keep emptied parents."""
    if key is None:
        return
    if key in obj:
        del obj[key]
        return
    parts = key.split(".")
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)


def as_str(value: Any) -> str | None:
    """Render a scalar as a string (None stays None, ``-`` and empty become None)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value)
    return None if text in ("", "-") else text


def as_float(value: Any) -> float | None:
    """A non-negative float from a number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == number and number != float("inf") else None


def as_int(value: Any) -> int | None:
    """An int from an int or digit string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def clip(message: str) -> str:
    """Truncate a message to :data:`MAX_MESSAGE_CHARS`."""
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS]


def error_record(data: bytes | str | Mapping[str, Any], reason: str) -> ParsedRecord:
    """A ``text`` record carrying the raw input as message and ``reason`` as parse_error."""
    if isinstance(data, Mapping):
        try:
            text = orjson.dumps(data, default=str).decode()
        except TypeError:
            text = repr(data)
        invalid = False
    else:
        text, invalid = decode(data)
    attributes: dict[str, Any] = {"invalid_utf8": True} if invalid else {}
    return ParsedRecord(format="text", message=clip(text.replace("\x00", "\\x00")),
                        attributes=attributes, parse_error=reason)
