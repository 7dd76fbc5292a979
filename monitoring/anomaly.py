"""The anomaly: what a detector hands to alerting."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from logwarden.common.tenants import DEFAULT_TENANT

FIRING = "firing"
RESOLVED = "resolved"


def iso_us(micros: int | None) -> str | None:
    """RFC 3339 UTC text of epoch microseconds."""
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Anomaly:
    """One firing (or resolved) condition of one rule for one key of one tenant, in event time.

    ``key`` is the group-by key as shown (``payment-service``); ``tenant`` the tenant whose records
    raised it (``default`` for records without one). Identity (``id``, ``dedup_key``) includes the
    tenant when it is not the default, so a single-tenant installation keeps the identities it had."""

    rule: str
    kind: str
    severity: str
    key: str
    window_start: str
    window_end: str
    value: float
    threshold: str
    status: str = FIRING
    first_event: str | None = None
    last_event: str | None = None
    samples: list[str] = field(default_factory=list)
    action: str = ""
    description: str = ""
    channels: list[str] = field(default_factory=list)
    id: str = ""
    confidence: float | None = None  # ML anomalies: how sure the model is, in [0, 1]
    explanation: dict = field(default_factory=dict)  # ML anomalies: the features and templates behind it
    actionable: float | None = None  # learned from verdicts: the confidence that it is actionable, in [0, 1]
    tenant: str = DEFAULT_TENANT

    def __post_init__(self) -> None:
        if not self.tenant:
            self.tenant = DEFAULT_TENANT
        if not self.id:
            text = f"{self.rule}|{self.key}|{self.window_end}|{self.status}"
            if self.tenant != DEFAULT_TENANT:
                text += f"\x1f{self.tenant}"
            self.id = hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def dedup_key(self) -> str:
        """Identifies the incident across its firing and resolved events: ``rule:key``, and
        ``tenant/rule:key`` for a tenant other than the default (rule names hold neither ``/`` nor ``:``,
        so the two forms cannot collide as long as tenant names hold no ``:``)."""
        if self.tenant == DEFAULT_TENANT:
            return f"{self.rule}:{self.key}"
        return f"{self.tenant}/{self.rule}:{self.key}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for Ray, JSON and the outbox."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Anomaly":
        """The inverse of ``to_dict``."""
        return cls(**data)
