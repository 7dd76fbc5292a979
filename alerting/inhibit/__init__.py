"""Inhibition: silences set by people (``logwarden silence``) and inhibition rules (a firing alert
muting others)."""

from logwarden.alerting.inhibit.rules import InhibitRule, inhibitor, parse_inhibit_rules
from logwarden.alerting.inhibit.silences import Silence, SilenceStore

__all__ = ["InhibitRule", "Silence", "SilenceStore", "inhibitor", "parse_inhibit_rules"]
