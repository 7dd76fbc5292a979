"""Inhibition: silences set by people (``logwarden silence``)."""

from logwarden.alerting.inhibit.silences import Silence, SilenceStore

__all__ = ["Silence", "SilenceStore"]
