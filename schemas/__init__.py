"""The schemas that define logwarden, shipped as package data of ``logwarden.schemas``.

The YAML files beside this module are the one source: ``log_schema.yaml`` (what a valid log is),
``anomaly_schema.yaml`` (the default detectors and routing) and ``service_inventory.yaml`` (the
default service metadata). A wheel carries them; an editable install reads them in place.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SCHEMAS_DIR = Path(str(files(__name__)))
LOG_SCHEMA_PATH = SCHEMAS_DIR / "log_schema.yaml"
ANOMALY_SCHEMA_PATH = SCHEMAS_DIR / "anomaly_schema.yaml"
SERVICE_INVENTORY_PATH = SCHEMAS_DIR / "service_inventory.yaml"
