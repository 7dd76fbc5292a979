"""Rule kinds and the rules file that declares them.

Built-in kinds: ``frequency``, ``flatline``, ``threshold``, ``spike``, ``new_term``, ``sequence``;
``ml`` (``monitoring.ml.MlRule``) is registered by name and imported only when a rule uses it.
Add a kind with ``register_kind`` (see ``monitoring.rules.registry``).
"""
import importlib.util

from logwarden.monitoring.rules.base import Rule
from logwarden.monitoring.rules.flatline import FlatlineRule
from logwarden.monitoring.rules.frequency import FrequencyRule
from logwarden.monitoring.rules.new_term import NewTermRule
from logwarden.monitoring.rules.registry import kinds, register_kind, register_rule_class, rule_class
from logwarden.monitoring.rules.sequence import SequenceRule
from logwarden.monitoring.rules.spec import RuleSpec, RulesFile, load_rules, parse_rules
from logwarden.monitoring.rules.spike import SpikeRule
from logwarden.monitoring.rules.threshold import ThresholdRule

if importlib.util.find_spec("logwarden.monitoring.ml") is not None:
    register_kind("ml", "logwarden.monitoring.ml.rule:MlRule", schema="logwarden.monitoring.ml.schema:ML_RULE_SCHEMA")

RULE_KINDS: dict[str, type[Rule]] = {cls.kind: cls for cls in (FrequencyRule, FlatlineRule, ThresholdRule,
                                                               SpikeRule, NewTermRule, SequenceRule)}


def build_rule(spec: RuleSpec) -> Rule:
    """The rule object of a specification."""
    return rule_class(spec.kind)(spec)


__all__ = ["RULE_KINDS", "Rule", "RuleSpec", "RulesFile", "build_rule", "kinds", "load_rules", "parse_rules",
           "register_kind", "register_rule_class"]
