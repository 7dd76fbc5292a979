"""ML detectors: models that learn normal behaviour and flag what deviates.

- window: per-service per-minute features scored by IsolationForest (``window_model``);
- session: template sequences per session key scored by a next-event model (``session_model``);
- new_template: new or sharply rising WARNING/ERROR templates per service (``templates``);
- forecast: per-service error-rate trend by exponential smoothing (``forecast``).

``MlRule`` runs any of them as a rule kind (``kind: ml``, keys in ``ML_RULE_SCHEMA``);
``train_remote`` trains on Ray from the lake into the model registry (``registry``);
``FeedbackStore`` / ``feedback_routes`` take false/true-positive verdicts.
"""
from logwarden.monitoring.ml.feedback import FALSE_POSITIVE, TRUE_POSITIVE, FeedbackStore, feedback_routes
from logwarden.monitoring.ml.registry import ModelRegistry
from logwarden.monitoring.ml.rule import MlRule
from logwarden.monitoring.ml.schema import ML_RULE_PROPERTIES, ML_RULE_SCHEMA, MODELS, MlConfig
from logwarden.monitoring.ml.training import retrain_due, train_and_save, train_model, train_remote

__all__ = [
    "FALSE_POSITIVE", "ML_RULE_PROPERTIES", "ML_RULE_SCHEMA", "MODELS", "TRUE_POSITIVE", "FeedbackStore",
    "MlConfig", "MlRule", "ModelRegistry", "feedback_routes", "retrain_due", "train_and_save", "train_model",
    "train_remote",
]
