"""Why an ML finding fired: its top contributing signals, each with its value against normal.

Every model reports its own evidence in ``Finding.explanation``; ``signals_of`` turns it into one
shape that every channel can show: ``[{"signal", "value", "normal", ...}]`` (at most ``TOP``), and
``why_text`` into one line such as
``count_error=45 (normal 1, z +8.2); error_rate=0.31 (normal 0.005, z +6.1)``.

- window: the features that deviate most from the training median, in robust z-scores;
- session: the surprising transition, its probability under the model and the expected ones;
- new_template: the new (or rising) template, its rate against its baseline, its first lines;
- forecast: the error rate now, its trend and the forecast at the horizon against the threshold.
"""
from __future__ import annotations

import math
from typing import Any

TOP = 3
MAX_TEXT = 400


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _window(explanation: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"signal": r["feature"], "value": r["value"], "normal": r["baseline"], "z": r["z"]}
            for r in explanation.get("features", [])[:TOP]]


def _session(explanation: dict[str, Any], score: float) -> list[dict[str, Any]]:
    after = explanation.get("after") or []
    previous = next((str(c) for c in reversed(after) if c not in ("<s>", "")), "start of session")
    expected = explanation.get("expected") or []
    normal = ", ".join(f"'{e.get('template') or e.get('template_id')}' (p {e['p']:.3g})" for e in expected[:2])
    return [{"signal": "transition", "value": f"{previous} -> '{explanation.get('template', '')}'",
             "normal": normal or "no continuation seen in training",
             "probability": round(math.exp(-score), 6)}]


def _template(explanation: dict[str, Any], samples: list[str]) -> list[dict[str, Any]]:
    if explanation.get("reason") == "new":
        return [{"signal": "new template", "value": explanation.get("template", ""), "normal": "never seen",
                 "level": explanation.get("level", ""), "first_lines": samples[:3]}]
    return [{"signal": "template rate", "value": f"{explanation.get('count')}/min",
             "normal": f"{explanation.get('baseline_rate')}/min", "template": explanation.get("template", ""),
             "first_lines": samples[:3]}]


def _forecast(explanation: dict[str, Any], threshold: float) -> list[dict[str, Any]]:
    feature = (explanation.get("features") or [{}])[0]
    minutes = explanation.get("minutes_ahead")
    return [{"signal": "error_rate forecast", "value": explanation.get("forecast"), "normal": f"<= {threshold:g}",
             "horizon_min": minutes},
            {"signal": "error_rate", "value": feature.get("value"), "normal": feature.get("level"),
             "trend_per_min": feature.get("trend_per_min")}]


def signals_of(explanation: dict[str, Any], score: float, threshold: float,
               samples: list[str] | None = None) -> list[dict[str, Any]]:
    """The top contributing signals of a finding's ``explanation`` (as its model wrote it)."""
    model = explanation.get("model")
    if model == "window":
        return _window(explanation)
    if model == "session":
        return _session(explanation, score)
    if model == "new_template":
        return _template(explanation, samples or [])
    if model == "forecast":
        return _forecast(explanation, threshold)
    return []


def _signal_text(signal: dict[str, Any]) -> str:
    name, value, normal = signal["signal"], signal.get("value"), signal.get("normal")
    if name == "new template":
        return f"new {signal.get('level', '')} template '{value}' (never seen before)".replace("  ", " ")
    if name == "transition":
        return f"unexpected {value} (p {signal['probability']:.2g}; normal: {normal})"
    if name == "error_rate forecast":
        return f"error rate forecast {_number(value)} {normal.replace('<=', '>')} in {signal['horizon_min']} min"
    extra = f", z {signal['z']:+}" if "z" in signal else ""
    extra += f", trend {signal['trend_per_min']:+.2g}/min" if signal.get("trend_per_min") is not None else ""
    return f"{name}={_number(value)} (normal {_number(normal)}{extra})"


def why_text(signals: list[dict[str, Any]]) -> str:
    """One line naming every signal with its value against normal."""
    text = "; ".join(_signal_text(s) for s in signals)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
