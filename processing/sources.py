"""Log files as a source: records of any supported format, as records of the log schema."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

from logwarden.formats import RawRecord, detect, parse, read_records
from logwarden.formats.record import ParsedRecord

OPTIONAL_FIELDS = ("user_id", "request_id", "error_code", "duration_ms")


@dataclass
class SourceRecord:
    """One record of a file: where it came from, its original bytes, and its log-schema form."""

    path: Path
    number: int
    raw: bytes
    record: dict
    format: str


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named, and the files below folders named (sorted; hidden files skipped)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {name}")
    return files


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def to_log_record(parsed: ParsedRecord, default_service: str, fallback_time: datetime) -> dict:
    """The log-schema record of a parsed one; unnamed fields are kept as attributes."""
    record = {"timestamp": _iso(parsed.timestamp or fallback_time), "level": parsed.level,
              "service": parsed.service or default_service, "message": parsed.message}
    for name in OPTIONAL_FIELDS:
        value = getattr(parsed, name)
        if value is not None:
            record[name] = value
    extra = {k: v for k, v in parsed.attributes.items() if k not in record}
    record.update(extra, log_format=parsed.format)
    if parsed.parse_error:
        record["parse_error"] = parsed.parse_error
    return record


def raw_bytes(raw: RawRecord) -> bytes:
    """The original bytes of a record (a decoded document element as compact JSON)."""
    return raw.data if isinstance(raw.data, bytes) else orjson.dumps(raw.data, default=str)


def file_records(path: Path, format_name: str = "auto") -> Iterator[SourceRecord]:
    """Every record of ``path`` in log-schema form; a record without a time takes the previous one's
    (or the file's modification time), a record without a service is named after the file."""
    previous = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    service = path.name.split(".")[0] or "replay"
    for raw in read_records(path):
        name = raw.hint or (detect(raw).format if format_name == "auto" else format_name)
        parsed = parse(raw, name)
        if parsed.timestamp is not None:
            previous = parsed.timestamp
        yield SourceRecord(path, raw.number, raw_bytes(raw), to_log_record(parsed, service, previous),
                           parsed.format)
