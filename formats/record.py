"""The normalized record every format parser produces."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(slots=True)
class ParsedRecord:
    """One log record normalized across formats.

    ``timestamp`` is timezone-aware UTC (or None), ``level`` one of :data:`LEVELS`,
    ``attributes`` holds every other field and is JSON-serializable, ``format`` names
    the parser that produced the record and ``parse_error`` says what was wrong, if anything.
    """

    format: str
    message: str
    timestamp: datetime | None = None
    level: str = "INFO"
    service: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    duration_ms: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    parse_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict (timestamp as ISO 8601 with ``+00:00``)."""
        return {
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "level": self.level,
            "service": self.service,
            "message": self.message,
            "user_id": self.user_id,
            "request_id": self.request_id,
            "error_code": self.error_code,
            "duration_ms": self.duration_ms,
            "attributes": self.attributes,
            "format": self.format,
            "parse_error": self.parse_error,
        }
