"""Rule kinds and the rules file that declares them."""
from monitoring.rules.base import Rule
from monitoring.rules.flatline import FlatlineRule
from monitoring.rules.frequency import FrequencyRule
from monitoring.rules.spec import RuleSpec, RulesFile, load_rules, parse_rules
from monitoring.rules.threshold import ThresholdRule

RULE_KINDS: dict[str, type[Rule]] = {cls.kind: cls for cls in (FrequencyRule, FlatlineRule, ThresholdRule)}


def build_rule(spec: RuleSpec) -> Rule:
    """The rule object of a specification."""
    return RULE_KINDS[spec.kind](spec)


__all__ = ["RULE_KINDS", "Rule", "RuleSpec", "RulesFile", "build_rule", "load_rules", "parse_rules"]
