"""Training from the lake's history, as pure functions and as Ray tasks.

``train_model`` fits one model kind from a records table (no Ray, no I/O) — what tests call.
``train_and_save`` reads the history from the lake, adds the rule's false positives from the
feedback store as normal examples, fits and saves a new registry version. ``train_remote`` runs
that as a ``ray.remote`` task; ``retrain_due`` launches it for every ML rule whose schedule
(``retrain_every``) has come.
"""
from __future__ import annotations

import logging
import math
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from logwarden.monitoring.ml.feedback import FeedbackStore
from logwarden.monitoring.ml.features import FEATURES, window_features
from logwarden.monitoring.ml.registry import ModelRegistry
from logwarden.monitoring.ml.schema import MlConfig
from logwarden.monitoring.ml.session_model import fit_session_model
from logwarden.monitoring.ml.sessions import SessionTracker
from logwarden.monitoring.ml.templates import fit_template_baseline
from logwarden.monitoring.ml.window_model import WindowModelSet, fit_window_models

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("timestamp", "service", "level", "message", "duration_ms", "user_id", "request_id",
                   "template_id", "template")
TRAINABLE = ("window", "session", "new_template")


def _log_files(lake_dir: str | Path) -> list[tuple[date | None, str]]:
    """(partition date, path) of every records file of the lake (``<lake>/logs/date=YYYY-MM-DD/...``)."""
    logs = Path(lake_dir) / "logs"
    if not logs.is_dir():
        return []
    found = []
    for path in sorted(logs.rglob("*.parquet")):
        day = next((part.removeprefix("date=") for part in path.relative_to(logs).parts
                    if part.startswith("date=")), None)
        try:
            found.append((date.fromisoformat(day) if day else None, str(path)))
        except ValueError:
            found.append((None, str(path)))
    return found


def read_history(lake_dir: str | Path, history_s: float | None = None) -> pa.Table:
    """The lake's records (``<lake>/logs``) in event-time order; with ``history_s``, only the last
    ``history_s`` seconds before the newest record (date partitions older than that are not read).

    Records written before template ids were added get them from a fresh ``TemplateMiner`` over
    the history (the same miner configuration as processing)."""
    files = _log_files(lake_dir)
    if history_s is not None:
        newest_day = max((day for day, _ in files if day is not None), default=None)
        if newest_day is not None:
            oldest_day = newest_day - timedelta(days=math.ceil(history_s / 86400.0))
            files = [(day, path) for day, path in files if day is None or day >= oldest_day]
    if not files:
        return pa.table({"timestamp": pa.array([], pa.timestamp("us", tz="UTC")),
                         **{name: pa.array([], pa.string()) for name in ("service", "level", "message",
                                                                         "template_id", "template")}})
    dataset = ds.dataset([path for _, path in files], format="parquet")
    columns = [c for c in HISTORY_COLUMNS if c in dataset.schema.names]
    table = dataset.to_table(columns=columns)
    if history_s is not None and table.num_rows:
        micros = pc.cast(table["timestamp"], pa.int64())
        table = table.filter(pc.greater_equal(micros, pc.max(micros).as_py() - int(history_s * 1e6)))
    table = table.sort_by([("timestamp", "ascending")])
    if "template_id" not in table.column_names or table["template_id"].null_count == table.num_rows:
        table = add_templates(table)
    return table


def add_templates(records: pa.Table) -> pa.Table:
    """``records`` with ``template_id`` and ``template`` columns mined from ``message``."""
    from logwarden.processing.templates import TemplateMiner

    miner = TemplateMiner()
    matches = [miner.add(m or "") for m in records["message"].to_pylist()]
    for name in ("template_id", "template"):
        if name in records.column_names:
            records = records.drop_columns([name])
    records = records.append_column("template_id", pa.array([m.template_id for m in matches], pa.string()))
    return records.append_column("template", pa.array([miner.get(m.template_id).template for m in matches],
                                                      pa.string()))


def _window_rows(records: pa.Table,
                 exclude: set[tuple[str, int]]) -> tuple[dict[str, np.ndarray], dict[str, set[str]]]:
    known: dict[str, set[str]] = {}
    features = window_features(records, known)
    rows: dict[str, list] = {}
    for service, minute, row, first in zip(features.services, features.minutes_us, features.matrix,
                                           features.first):
        if not first and (service, minute) not in exclude:
            rows.setdefault(service, []).append(row)
    return {s: np.array(r) for s, r in rows.items()}, known


def history_sessions(records: pa.Table, config: MlConfig, exclude: set[str] | None = None) -> list[list[str]]:
    """The template-id sequences of the sessions in ``records`` (keyed as the rule keys them), without
    the sessions in ``exclude``."""
    tracker = SessionTracker(config.session_key, config.session_regex, int(config.session_timeout * 1e6),
                             config.max_session_events, max_open=10**9)
    tracker.add(records)
    return [s.events for s in tracker.close(2**62) if s.key not in (exclude or ())]


def train_model(config: MlConfig, records: pa.Table, false_positives: list[dict[str, Any]] | None = None,
                flagged: list[dict[str, Any]] | None = None) -> tuple[Any, dict[str, Any]]:
    """Fit the model of ``config`` on a history table. False-positive payloads join the training data
    as normal examples; the windows and sessions of ``flagged`` anomalies (not judged false positives)
    are left out, so past incidents do not become the baseline. Returns (model, summary). Pure function."""
    false_positives = false_positives or []
    flagged = flagged or []
    if config.model == "window":
        exclude = {(p.get("service", ""), m) for p in flagged for m in p.get("minutes_us", [])}
        rows, known = _window_rows(records, exclude)
        for payload in false_positives:
            extra = np.array(payload.get("rows", []), dtype=float).reshape(-1, len(FEATURES))
            service = payload.get("service", "")
            rows[service] = np.vstack([rows[service], extra]) if service in rows else extra
        models = WindowModelSet(fit_window_models(rows, config.min_train, config.threshold_quantile), known)
        return models, {"services": models.summary(), "windows": int(sum(len(r) for r in rows.values()))}
    if config.model == "session":
        exclude = {p["session"] for p in flagged if "session" in p}
        sessions = history_sessions(records, config, exclude) + [p["sequence"] for p in false_positives
                                                                 if "sequence" in p]
        model = fit_session_model(sessions, history=config.history, quantile=config.threshold_quantile,
                                  min_probability=config.min_probability)
        return model, {"sessions": len(sessions), "templates": len(model.vocabulary),
                       "threshold": model.threshold}
    if config.model == "new_template":
        minutes = pc.cast(pc.floor_temporal(records["timestamp"], unit="minute"), pa.int64()).to_pylist()
        columns = (records["service"].to_pylist(), records["template_id"].to_pylist(), minutes)
        rows = [(s, t, m) for s, t, m in zip(*columns) if t is not None]
        rows += [(p["service"], p["template_id"], 0) for p in false_positives if "template_id" in p]
        baseline = fit_template_baseline(rows)
        return baseline, {"services": len(baseline.counts),
                          "templates": int(sum(len(c) for c in baseline.counts.values()))}
    raise ValueError(f"model {config.model!r} is not trained (it learns online)")


def train_and_save(spec: dict[str, Any], lake_dir: str | Path, data_dir: str | Path | None = None,
                   history_s: float = 7 * 86400.0) -> dict[str, Any]:
    """Read ``history_s`` of the lake, train the rule's model and save it as a new registry version.
    Returns the manifest."""
    config = MlConfig.from_dict({**spec, **({"data_dir": str(data_dir)} if data_dir else {})})
    started = time.monotonic()
    records = read_history(lake_dir, history_s)
    if "filter" in spec and spec["filter"] is not None:
        from logwarden.monitoring.rules.filters import compile_filter

        records = records.filter(compile_filter(spec["filter"])(records))
    store = FeedbackStore.for_data_dir(config.data_dir) if config.data_dir else None
    false_positives = store.false_positive_payloads(config.name) if store else []
    flagged = store.flagged_payloads(config.name) if store else []
    model, summary = train_model(config, records, false_positives, flagged)
    registry = ModelRegistry(config.model_dir or Path(lake_dir) / "models")
    saved = registry.save(config.model_name, model, config.model,
                          {**summary, "records": records.num_rows, "false_positives": len(false_positives),
                           "flagged_left_out": len(flagged),
                           "trained_in": "ray", "seconds": round(time.monotonic() - started, 3)})
    return saved.manifest


def train_remote(spec: dict[str, Any], lake_dir: str | Path, data_dir: str | Path | None = None,
                 history_s: float = 7 * 86400.0, num_cpus: float = 1):
    """Run ``train_and_save`` as a Ray task; returns its ObjectRef (``ray.get`` gives the manifest)."""
    import ray

    task = ray.remote(num_cpus=num_cpus, max_retries=1)(train_and_save)
    return task.remote(spec, str(lake_dir), None if data_dir is None else str(data_dir), history_s)


def retrain_due(specs: list[dict[str, Any]], lake_dir: str | Path, data_dir: str | Path | None = None,
                now: float | None = None) -> dict[str, Any]:
    """Launch ``train_remote`` for every trainable ML rule whose latest model is older than its
    ``retrain_every`` (or that has none). Returns {rule name: ObjectRef}."""
    launched = {}
    for spec in specs:
        config = MlConfig.from_dict({**spec, **({"data_dir": str(data_dir)} if data_dir else {})})
        if config.model not in TRAINABLE:
            continue
        registry = ModelRegistry(config.model_dir or Path(lake_dir) / "models")
        if registry.due(config.model_name, config.retrain_every, now):
            launched[config.name] = train_remote(spec, lake_dir, data_dir)
    return launched
