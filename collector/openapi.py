"""The OpenAPI description of the collector's HTTP API (``collector/openapi.yaml``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


@lru_cache(maxsize=1)
def openapi_text() -> str:
    """The YAML text of the description."""
    return OPENAPI_PATH.read_text(encoding="utf-8")


def openapi_document() -> dict[str, Any]:
    """The description as a mapping."""
    return yaml.safe_load(openapi_text())
