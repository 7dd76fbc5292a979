"""``MlRule``: an ML detector behaving like a rule kind (``add_data``, ``advance``, ``garbage_collect``).

It reuses ``monitoring.rules.base.Rule`` for event time, filtering, re-alert throttling and
resolution, and delegates detection to one of the streaming models (window, session,
new_template, forecast). Anomalies carry ``value`` = score and ``threshold`` = the learned
threshold; the confidence and the explanation (features, templates) are the first sample line
(``ml: {json}``) and part of the description — and the ``confidence`` / ``explanation`` fields
themselves when ``Anomaly`` has them.

Warm-up (``warm_up``): no finding of a tenant is raised before the rule has seen that many minutes of
its event time with records (``WarmUp``, part of the rule's state and so of its checkpoint). Every
anomaly's ``explanation`` carries ``signals`` (the top contributing signals against normal,
``explain.signals_of``) and ``text`` (one line), which the channels show.

Tenants: the records of each tenant go to a stream of their own (``stream`` for the default tenant,
``tenant_streams`` for the others, made on a tenant's first records), so every finding is computed
from one tenant's records and carries that tenant; alert state is per (tenant, key). The model loaded
from the registry (trained on the lake, whatever tenants it holds) is handed to every tenant's stream;
a model trained in process is trained on that tenant's data, and only the default tenant's is saved to
the registry. Feedback patterns of a tenant other than the default are qualified with the tenant, so a
false-positive verdict suppresses the pattern for that tenant only.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import fields as dataclass_fields
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.durations import parse_duration
from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.ml.explain import signals_of, why_text
from logwarden.monitoring.ml.feedback import FeedbackStore
from logwarden.monitoring.ml.finding import MINUTE_US, Finding
from logwarden.monitoring.ml.forecast_stream import ForecastStream
from logwarden.monitoring.ml.registry import ModelRegistry
from logwarden.monitoring.ml.schema import MlConfig
from logwarden.monitoring.ml.session_stream import SessionStream
from logwarden.monitoring.ml.sessions import SessionTracker
from logwarden.monitoring.ml.template_stream import TemplateStream
from logwarden.monitoring.ml.templates import TemplateNoveltyDetector
from logwarden.monitoring.ml.warmup import WarmUp
from logwarden.monitoring.ml.window_stream import WindowStream
from logwarden.monitoring.rules.base import US, Rule, timestamps_of
from logwarden.monitoring.rules.filters import compile_filter
from logwarden.monitoring.rules.keys import TENANT_SEPARATOR, scoped_key, tenant_column
from logwarden.monitoring.rules.spec import RuleSpec, Threshold

log = logging.getLogger(__name__)

_ANOMALY_FIELDS = {f.name for f in dataclass_fields(Anomaly)}
RELOAD_CHECK_S = 30.0
FEEDBACK_REFRESH_S = 10.0


def _rule_spec(raw: dict[str, Any]) -> RuleSpec:
    defaults = raw.get("_defaults") or {}

    def seconds(name: str, default: float) -> float:
        value = raw.get(name, defaults.get(name))
        return default if value is None else parse_duration(value)

    threshold = raw.get("threshold") or {"op": ">", "value": 0}
    return RuleSpec(name=raw["name"], kind="ml", severity=raw["severity"],
                    threshold=Threshold(threshold["op"], float(threshold["value"])), filter=raw.get("filter"),
                    group_by=(), window=60.0, realert=seconds("realert", 300.0),
                    allowed_lateness=seconds("allowed_lateness", 60.0),
                    channels=tuple(raw.get("channels", ())),
                    action=raw.get("action", ""), description=raw.get("description", ""),
                    enabled=raw.get("enabled", True), source=dict(raw))


def build_stream(config: MlConfig, realert_us: int):
    """The streaming detector of an ML rule's model. With a model registry, scheduled retraining is
    ``train_remote``'s job (on Ray, from the lake) and the rule only trains its first model itself;
    without one, the rule also retrains in process every ``retrain_every``."""
    retrain_us = 0 if config.model_dir else int(config.retrain_every * US)
    if config.model == "window":
        return WindowStream(int(config.min_duration * US), config.threshold_quantile, config.min_train,
                            retrain_us)
    if config.model == "session":
        tracker = SessionTracker(config.session_key, config.session_regex, int(config.session_timeout * US),
                                 config.max_session_events)
        return SessionStream(tracker, realert_us, config.threshold_quantile, config.history, config.min_train,
                             retrain_every_us=retrain_us, min_probability=config.min_probability)
    if config.model == "new_template":
        detector = TemplateNoveltyDetector(None, int(config.learn_for * US), config.levels,
                                           config.rise_factor, config.min_count)
        return TemplateStream(detector, max(realert_us, MINUTE_US))
    if config.threshold is None:
        raise ValueError(f"ML rule {config.name!r}: a forecast needs threshold: {{op, value}}")
    return ForecastStream(config.op, config.threshold, int(config.horizon * US), config.alpha, config.beta,
                          config.min_points, quiet_us=max(realert_us, MINUTE_US))


class MlRule(Rule):
    """An ML model as a rule kind. Built from the rule's dict as written in the rules file (durations
    as text) or from a ``RuleSpec`` whose ``source`` is that dict; ``model_dir`` / ``data_dir`` keys
    locate the model registry and the feedback store."""

    kind = "ml"

    def __init__(self, spec: dict[str, Any] | RuleSpec) -> None:
        raw = dict(spec.source) if isinstance(spec, RuleSpec) else dict(spec)
        self.config = MlConfig.from_dict(raw)
        super().__init__(_rule_spec(raw))
        self.stream = build_stream(self.config, self.realert_us)  # the default tenant's
        self.tenant_streams: dict[str, Any] = {}  # the other tenants', made on their first records
        self._model: Any = None  # the model last loaded from the registry, for every tenant's stream
        self.registry = ModelRegistry(self.config.model_dir) if self.config.model_dir else None
        self.feedback = FeedbackStore.for_data_dir(self.config.data_dir) if self.config.data_dir else None
        self.model_version: str | None = None
        self.last_finding: dict[str, tuple[int, int]] = {}
        self.suppressed = 0
        self._suppressed_patterns: set[str] = set()
        self._feedback_checked = 0.0
        self._registry_checked = 0.0
        self.warm_up = WarmUp.of(self.config.warm_up)
        self.reload_model()

    # pickling: the compiled filter is a closure; rebuild it from the spec --------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("matches", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("tenant_streams", {})
        self.__dict__.setdefault("_model", None)
        self.__dict__.setdefault("warm_up", WarmUp.of(self.config.warm_up))
        self.matches = compile_filter(self.spec.filter)
        self._registry_checked = self._feedback_checked = 0.0  # monotonic clocks do not cross processes

    # models ------------------------------------------------------------------------------
    def reload_model(self) -> bool:
        """Load the registry's latest version if it is not the one in use; whether one was loaded."""
        self._registry_checked = time.monotonic()
        if self.registry is None:
            return False
        latest = self.registry.latest_version(self.config.model_name)
        if latest is None or latest == self.model_version:
            return False
        loaded = self.registry.load(self.config.model_name, latest)
        if loaded is None:
            return False
        model, info = loaded
        if info.manifest.get("kind") != self.stream.kind:
            log.warning("rule %s: model %s %s is a %s model, not %s; ignored", self.spec.name,
                        self.config.model_name, latest, info.manifest.get("kind"), self.stream.kind)
            return False
        self._model = model
        self.stream.use_model(model)
        for stream in self.tenant_streams.values():
            stream.use_model(copy.deepcopy(model))  # a stream may learn into its model (templates)
        self.model_version = latest
        log.info("rule %s: using model %s %s", self.spec.name, self.config.model_name, latest)
        return True

    # tenants ------------------------------------------------------------------------------
    def stream_of(self, tenant: str) -> Any:
        """The stream of ``tenant``'s records (made, with the registry's model, on first use)."""
        if tenant == DEFAULT_TENANT:
            return self.stream
        stream = self.tenant_streams.get(tenant)
        if stream is None:
            stream = self.tenant_streams[tenant] = build_stream(self.config, self.realert_us)
            if self._model is not None:
                stream.use_model(copy.deepcopy(self._model))
        return stream

    def streams(self) -> list[tuple[str, Any]]:
        """(tenant, stream) of every tenant seen, the default first, then by name."""
        return [(DEFAULT_TENANT, self.stream), *sorted(self.tenant_streams.items())]

    @staticmethod
    def by_tenant(table: pa.Table) -> list[tuple[str, pa.Table]]:
        """``table``'s rows per tenant (records without a tenant are the default tenant's)."""
        tenants = tenant_column(table)
        if isinstance(tenants, pa.Scalar):
            return [(DEFAULT_TENANT, table)]
        distinct = sorted(pc.unique(tenants).to_pylist())
        if len(distinct) == 1:
            return [(distinct[0], table)]
        return [(tenant, table.filter(pc.equal(tenants, tenant))) for tenant in distinct]

    @staticmethod
    def pattern_of(tenant: str, pattern: str) -> str:
        """A finding's feedback pattern: as the model says for the default tenant, tenant-qualified else."""
        return pattern if tenant == DEFAULT_TENANT else f"{tenant}{TENANT_SEPARATOR}{pattern}"

    def _train_in_process(self, watermark_us: int, tenant: str = DEFAULT_TENANT, stream: Any = None) -> None:
        stream = self.stream if stream is None else stream
        extra = self.feedback.false_positive_payloads(self.spec.name) if self.feedback else []
        extra = [p for p in extra if p.get("tenant", DEFAULT_TENANT) == tenant]
        if stream.kind == "window":
            rows: dict[str, list] = {}
            for payload in extra:
                rows.setdefault(payload.get("service", ""), []).extend(payload.get("rows", []))
            model = stream.fit(watermark_us, rows)
            summary = model.summary()
        else:
            model = stream.fit(watermark_us, [p["sequence"] for p in extra if "sequence" in p])
            summary = {"sessions": model.n_train, "threshold": model.threshold}
        if tenant != DEFAULT_TENANT:
            log.info("rule %s: trained a model for tenant %s in process (kept in memory only)", self.spec.name,
                     tenant)
            return
        if self.registry is not None:
            saved = self.registry.save(self.config.model_name, model, self.stream.kind,
                                       {**summary, "trained_in": "rule", "false_positives": len(extra)})
            self.model_version = saved.version

    # the Rule surface ----------------------------------------------------------------------
    def add_data(self, table: pa.Table, cache: dict | None = None) -> list[Anomaly]:
        """Count the batch's minutes towards each tenant's warm-up (every record, matched or not), then
        evaluate it as any rule does."""
        if table.num_rows and self.warm_up.needed_minutes:
            self._count_warm_up(table, timestamps_of(table, cache))
        return super().add_data(table, cache)

    def _count_warm_up(self, table: pa.Table, micros: Any) -> None:
        tenants = tenant_column(table)
        if isinstance(tenants, pa.Scalar) or pc.count_distinct(tenants).as_py() <= 1:
            tenant = tenants.as_py() if isinstance(tenants, pa.Scalar) else tenants[0].as_py()
            self.warm_up.observe(tenant or DEFAULT_TENANT, micros)
            return
        for tenant in pc.unique(tenants).to_pylist():
            mask = pc.equal(tenants, tenant).to_numpy(zero_copy_only=False)
            self.warm_up.observe(tenant or DEFAULT_TENANT, micros[mask])

    def on_matches(self, matched: pa.Table) -> list[Anomaly]:
        anomalies: list[Anomaly] = []
        for tenant, records in self.by_tenant(matched):
            anomalies += self._raise(self.stream_of(tenant).add(records), tenant)
        return anomalies

    def evaluate(self) -> list[Anomaly]:
        watermark = self.watermark_us
        if time.monotonic() - self._registry_checked >= RELOAD_CHECK_S:
            self.reload_model()
        anomalies: list[Anomaly] = []
        for tenant, stream in self.streams():
            anomalies += self._raise(stream.close(watermark), tenant)
            if stream.due(watermark):
                self._train_in_process(watermark, tenant, stream)
        for key, (start, last) in list(self.last_finding.items()):
            if watermark - last >= self.stream.quiet_us:
                resolved = self.resolve(key, lambda: self.resolved(key, start, watermark, 0.0))
                if resolved:
                    anomalies.append(resolved)
        return anomalies

    def garbage_collect(self) -> None:
        watermark = self.watermark_us
        if watermark is None:
            return
        for _, stream in self.streams():
            stream.garbage_collect(watermark)
        quiet = self.stream.quiet_us
        for key in [k for k, (_, last) in self.last_finding.items() if watermark - last >= quiet]:
            state = self.alerts.get(key)
            if not (state and state.active):
                del self.last_finding[key]
                self.alerts.pop(key, None)

    # findings -> anomalies ----------------------------------------------------------------
    def _suppressed_now(self) -> set[str]:
        if self.feedback is not None and time.monotonic() - self._feedback_checked >= FEEDBACK_REFRESH_S:
            self._suppressed_patterns = self.feedback.suppressed_patterns(self.spec.name)
            self._feedback_checked = time.monotonic()
        return self._suppressed_patterns

    def refresh_feedback(self) -> None:
        """Re-read the false-positive patterns now (normally every few seconds)."""
        self._feedback_checked = 0.0
        self._suppressed_now()

    def _raise(self, findings: list[Finding], tenant: str = DEFAULT_TENANT) -> list[Anomaly]:
        anomalies = []
        suppressed = self._suppressed_now() if findings else set()
        for finding in findings:
            if not self.warm_up.done(tenant):
                self.warm_up.hold()
                continue
            pattern = self.pattern_of(tenant, finding.pattern)  # what feedback suppresses, per tenant
            if pattern in suppressed:
                self.suppressed += 1
                continue
            key = scoped_key(tenant, finding.key)  # alert state per (tenant, key)
            previous = self.last_finding.get(key)
            self.last_finding[key] = (previous[0] if previous else finding.start_us,
                                      max(finding.end_us, previous[1] if previous else 0))
            anomaly = self.fire(key, finding.end_us, lambda key=key, finding=finding: self._anomaly(key, finding))
            if anomaly is not None:
                anomalies.append(anomaly)
                self._store(anomaly, finding, tenant, pattern)
        return anomalies

    def _anomaly(self, key: str, finding: Finding) -> Anomaly:
        anomaly = self.anomaly(key, finding.start_us, finding.end_us, finding.score,
                               first_us=finding.start_us, last_us=finding.end_us)
        signals = signals_of(finding.explanation, finding.score, finding.threshold, finding.samples)
        why = why_text(signals)
        explanation = {**finding.explanation, "confidence": round(finding.confidence, 4),
                       "score": round(finding.score, 5), "threshold": round(finding.threshold, 5),
                       "pattern": finding.pattern, "model_version": self.model_version,
                       "signals": signals, "text": why}
        anomaly.threshold = f"> {finding.threshold:.6g}"
        anomaly.samples = [f"ml: {orjson.dumps(explanation).decode()}", *finding.samples[-4:]]
        text = (f"{finding.summary} (score {finding.score:.4g} > {finding.threshold:.4g}, "
                f"confidence {finding.confidence:.2f}). Why: {why}")
        anomaly.description = f"{self.spec.description} {text}".strip()
        if "confidence" in _ANOMALY_FIELDS:
            anomaly.confidence = round(finding.confidence, 4)
        if "explanation" in _ANOMALY_FIELDS:
            anomaly.explanation = explanation
        return anomaly

    def _store(self, anomaly: Anomaly, finding: Finding, tenant: str = DEFAULT_TENANT,
               pattern: str | None = None) -> None:
        if self.feedback is None:
            return
        try:
            payload = finding.payload if tenant == DEFAULT_TENANT else {**finding.payload, "tenant": tenant}
            self.feedback.record(anomaly.id, self.spec.name, self.stream.kind, finding.key,
                                 finding.pattern if pattern is None else pattern,
                                 finding.score, finding.confidence,
                                 {**payload, "explanation": finding.explanation,
                                  "window_start": anomaly.window_start, "window_end": anomaly.window_end})
        except Exception:  # the anomaly must still be routed when the feedback store is unavailable
            log.exception("rule %s: could not store anomaly %s for feedback", self.spec.name, anomaly.id)

    def stats(self) -> dict[str, Any]:
        """The base rule's figures plus the model, its version, scored items and suppressed findings."""
        return {**super().stats(), "model": self.stream.kind, "model_version": self.model_version,
                "scored": sum(stream.scored for _, stream in self.streams()), "suppressed": self.suppressed,
                "tenants": 1 + len(self.tenant_streams), "warm_up": self.warm_up.progress(),
                "held_back_in_warm_up": self.warm_up.held_back}
