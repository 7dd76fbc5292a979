"""The JSON Schema of an ML rule (``kind: ml``) in the rules file, and its parsed configuration."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logwarden.common.durations import parse_duration
from logwarden.common.records import LEVELS

MODELS = ["window", "session", "new_template", "forecast"]
_DURATION = {"type": ["string", "number"], "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$", "minimum": 0}
_SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]

#: Keys only ML rules have.
ML_RULE_PROPERTIES: dict[str, Any] = {
    "model": {"enum": MODELS, "description": "window | session | new_template | forecast"},
    "model_name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$",
                   "description": "registry name of the model (default: the rule name)"},
    "model_dir": {"type": "string", "description": "model registry folder (default <data_dir>/lake/models)"},
    "data_dir": {"type": "string", "description": "the data directory (injected by the stack)"},
    "retrain_every": _DURATION,
    "threshold_quantile": {"type": "number", "exclusiveMinimum": 0.5, "maximum": 1},
    "min_train": {"type": "integer", "minimum": 10},
    "min_duration": _DURATION,
    "session_key": {"type": "string", "minLength": 1},
    "session_regex": {"type": "string", "minLength": 1},
    "session_timeout": _DURATION,
    "max_session_events": {"type": "integer", "minimum": 2},
    "history": {"type": "integer", "minimum": 1, "maximum": 10},
    "min_probability": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "levels": {"type": "array", "items": {"enum": list(LEVELS)}, "minItems": 1},
    "rise_factor": {"type": "number", "exclusiveMinimum": 1},
    "min_count": {"type": "integer", "minimum": 1},
    "learn_for": _DURATION,
    "horizon": _DURATION,
    "smoothing": {"type": "object", "additionalProperties": False,
                  "properties": {"alpha": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                 "beta": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}},
    "min_points": {"type": "integer", "minimum": 2},
    "warm_up": {**_DURATION, "description": "no alert until this much event time, in minutes that had records, "
                                           "was seen (kept in the detector's checkpoint)"},
}

#: A whole ML rule (``filter`` refers to the rules file's ``#/$defs/filter``).
ML_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "kind", "severity", "model"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"},
        "description": {"type": "string"},
        "kind": {"const": "ml"},
        "enabled": {"type": "boolean"},
        "filter": {"$ref": "#/$defs/filter"},
        "severity": {"enum": _SEVERITIES},
        "channels": {"type": "array", "items": {"type": "string"}},
        "action": {"type": "string"},
        "realert": _DURATION,
        "allowed_lateness": _DURATION,
        "threshold": {"type": "object", "required": ["op", "value"], "additionalProperties": False,
                      "properties": {"op": {"enum": [">", ">=", "<", "<="]}, "value": {"type": "number"}}},
        **ML_RULE_PROPERTIES,
    },
    "allOf": [
        {"if": {"properties": {"model": {"const": "forecast"}}}, "then": {"required": ["threshold"]}},
        {"if": {"properties": {"model": {"const": "session"}}},
         "then": {"anyOf": [{"required": ["session_key"]}, {"required": ["session_regex"]}],
                  "not": {"required": ["session_key", "session_regex"]}}},
    ],
}


def _seconds(raw: dict, name: str, default: float) -> float:
    value = raw.get(name)
    return default if value is None else parse_duration(value)


@dataclass(frozen=True)
class MlConfig:
    """An ML rule's options, durations in seconds, defaults filled in."""

    name: str
    model: str
    model_name: str
    model_dir: Path | None
    data_dir: Path | None
    retrain_every: float
    threshold_quantile: float
    min_train: int
    min_duration: float
    session_key: str | None
    session_regex: str | None
    session_timeout: float
    max_session_events: int
    history: int
    min_probability: float
    levels: tuple[str, ...]
    rise_factor: float
    min_count: int
    learn_for: float
    op: str
    threshold: float | None
    horizon: float
    alpha: float
    beta: float
    min_points: int
    warm_up: float = 0.0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "MlConfig":
        """Parse an ML rule's dict (as written in the rules file)."""
        model = raw.get("model")
        if model not in MODELS:
            raise ValueError(f"ML rule {raw.get('name')!r}: model must be one of {', '.join(MODELS)}")
        data_dir = Path(raw["data_dir"]).expanduser() if raw.get("data_dir") else None
        model_dir = Path(raw["model_dir"]).expanduser() if raw.get("model_dir") else (
            data_dir / "lake" / "models" if data_dir else None)
        threshold = raw.get("threshold") or {}
        smoothing = raw.get("smoothing") or {}
        session_key = raw.get("session_key")
        if model == "session" and not session_key and not raw.get("session_regex"):
            session_key = "request_id"
        return cls(
            name=raw["name"], model=model, model_name=raw.get("model_name") or raw["name"],
            model_dir=model_dir, data_dir=data_dir,
            retrain_every=_seconds(raw, "retrain_every", 86400.0),
            threshold_quantile=float(raw.get("threshold_quantile", 0.99)),
            min_train=int(raw.get("min_train", 120 if model == "window" else 1000)),
            min_duration=_seconds(raw, "min_duration", 180.0),
            session_key=session_key, session_regex=raw.get("session_regex"),
            session_timeout=_seconds(raw, "session_timeout", 300.0),
            max_session_events=int(raw.get("max_session_events", 1000)),
            history=int(raw.get("history", 3)), min_probability=float(raw.get("min_probability", 0.001)),
            levels=tuple(raw.get("levels", ("WARNING", "ERROR", "CRITICAL"))),
            rise_factor=float(raw.get("rise_factor", 5.0)), min_count=int(raw.get("min_count", 10)),
            learn_for=_seconds(raw, "learn_for", _seconds(raw, "warm_up", 3600.0)),
            op=threshold.get("op", ">"),
            threshold=None if "value" not in threshold else float(threshold["value"]),
            horizon=_seconds(raw, "horizon", 1800.0),
            alpha=float(smoothing.get("alpha", 0.3)), beta=float(smoothing.get("beta", 0.1)),
            min_points=int(raw.get("min_points", 10)),
            warm_up=_seconds(raw, "warm_up", 0.0),
        )
