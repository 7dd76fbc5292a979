"""Rule kinds and the rules file that declares them.

Built-in kinds: ``frequency``, ``flatline``, ``threshold``, ``spike``, ``new_term``, ``sequence``;
``ml`` (``monitoring.ml.MlRule``) is registered by name and imported only when a rule uses it.
Add a kind with ``register_kind`` (see ``monitoring.rules.registry``).
"""
import importlib.util

from monitoring.rules.base import Rule
from monitoring.rules.flatline import FlatlineRule
from monitoring.rules.frequency import FrequencyRule
from monitoring.rules.new_term import NewTermRule
from monitoring.rules.registry import kinds, register_kind, register_rule_class, rule_class
from monitoring.rules.sequence import SequenceRule
from monitoring.rules.spec import RuleSpec, RulesFile, load_rules, parse_rules
from monitoring.rules.spike import SpikeRule
from monitoring.rules.threshold import ThresholdRule

if importlib.util.find_spec("monitoring.ml") is not None:
    register_kind("ml", "monitoring.ml.rule:MlRule", schema="monitoring.ml.schema:ML_RULE_SCHEMA")

RULE_KINDS: dict[str, type[Rule]] = {cls.kind: cls for cls in (FrequencyRule, FlatlineRule, ThresholdRule,
                                                               SpikeRule, NewTermRule, SequenceRule)}


def build_rule(spec: RuleSpec) -> Rule:
    """The rule object of a specification."""
    return rule_class(spec.kind)(spec)


__all__ = ["RULE_KINDS", "Rule", "RuleSpec", "RulesFile", "build_rule", "kinds", "load_rules", "parse_rules",
           "register_kind", "register_rule_class"]
