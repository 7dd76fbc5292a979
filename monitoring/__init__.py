"""Monitoring layer: detectors declared in ``schemas/anomaly_schema.yaml``, evaluated in event time.

``monitoring.engine.DetectorSet`` evaluates rules in process; ``monitoring.actors.DetectorPool``
runs them as Ray actors (imported on demand, so that importing this package does not import Ray).
"""
from logwarden.monitoring.anomaly import FIRING, RESOLVED, Anomaly
from logwarden.monitoring.engine import DetectorSet
from logwarden.monitoring.rules import RulesFile, load_rules, parse_rules

__all__ = ["FIRING", "RESOLVED", "Anomaly", "DetectorSet", "RulesFile", "load_rules", "parse_rules"]
