"""E-mail through smtplib: STARTTLS, implicit TLS (SSL) or plain, with optional authentication.

A message carries one alert, a group of one rule and service, or a digest of many alerts.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from logwarden.alerting.format import group_title, view
from logwarden.alerting.notify.base import ACKNOWLEDGE, DIGEST, ESCALATION, DeliveryError, Outgoing
from logwarden.alerting.notify.registry import (
    DURATION,
    SEVERITY_LIST,
    Channel,
    RateLimit,
    ReceiverContext,
    SectionConfig,
    SectionError,
    as_tuple,
    duration,
    register_receiver,
    setting,
)

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["smtp_host", "from", "to"],
    "properties": {
        "smtp_host": {"type": "string"},
        "smtp_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "security": {"enum": ["starttls", "ssl", "none"]},
        "username": {"type": "string"},
        "password": {"type": "string"},
        "from": {"type": "string"},
        "to": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "ca_file": {"type": "string"},
        "timeout": DURATION,
        "digest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "every": DURATION,
                "max_alerts": {"type": "integer", "minimum": 1},
                "severities": SEVERITY_LIST,
            },
        },
    },
}
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
DEFAULT_RATE_LIMIT = RateLimit(30, 3600.0)


@dataclass(frozen=True)
class DigestPolicy(SectionConfig):
    """E-mail digest: alerts of ``severities`` sent together every ``every`` seconds, and at once
    when more than ``max_alerts`` wait."""

    every: float = setting(900.0, convert=duration)
    max_alerts: int = 20
    severities: tuple[str, ...] = setting(("MEDIUM",), convert=as_tuple)


@dataclass(frozen=True)
class EmailConfig(SectionConfig):
    """``alerting.email``: the SMTP server, the sender and the recipients, and the digest.

    ``security`` defaults to ``ssl`` on port 465 and ``starttls`` otherwise; ``smtp_port`` to the
    port of the security (465, 587 or 25)."""

    smtp_host: str
    sender: str = setting(key="from")
    to: tuple[str, ...] = setting(convert=as_tuple)
    smtp_port: int | None = None
    security: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = setting(30.0, convert=duration)
    digest: DigestPolicy = setting(default_factory=DigestPolicy, convert=DigestPolicy.from_dict)

    def __post_init__(self) -> None:
        if bool(self.username) != bool(self.password):
            raise SectionError(["password" if self.username else "username"], "username and password go together")
        security = self.security or ("ssl" if self.smtp_port == 465 else "starttls")
        object.__setattr__(self, "security", security)
        object.__setattr__(self, "smtp_port", self.smtp_port or DEFAULT_PORTS[security])


def subject_of(message: Outgoing) -> str:
    """The subject line."""
    if message.kind == DIGEST:
        counts: dict[str, int] = {}
        for anomaly in message.anomalies:
            counts[anomaly.severity] = counts.get(anomaly.severity, 0) + 1
        parts = ", ".join(f"{n} {severity}" for severity, n in counts.items())
        return f"[logwarden] digest: {len(message.anomalies)} alerts ({parts})"
    prefix = f"ESCALATION {message.escalation_level} " if message.kind == ESCALATION else ""
    return f"[logwarden] {prefix}{group_title(message.anomalies)}"


def body_of(message: Outgoing) -> str:
    """The plain-text body: every alert in the design's format."""
    views = [view(a, message.dashboard_url) for a in message.anomalies]
    header = f"{len(views)} alerts since the last digest.\n\n" if message.kind == DIGEST else ""
    return header + "\n\n" + ("\n\n" + "-" * 60 + "\n\n").join(v.text() for v in views) + "\n"


class EmailReceiver:
    """Sends e-mail over SMTP; one connection per message."""

    name = "email"

    def __init__(self, config: EmailConfig) -> None:
        self.host = config.smtp_host
        self.security = config.security
        self.port = config.smtp_port
        self.username = config.username
        self.password = config.password
        self.sender = config.sender
        self.recipients = list(config.to)
        self.timeout = config.timeout
        self.tls = ssl.create_default_context(cafile=config.ca_file)

    def build(self, message: Outgoing) -> EmailMessage:
        """The e-mail of ``message``."""
        mail = EmailMessage()
        mail["Subject"] = subject_of(message)
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=f"logwarden-{message.message_id}")
        mail["X-Logwarden-Message"] = str(message.message_id)
        mail.set_content(body_of(message))
        return mail

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.tls)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            smtp.starttls(context=self.tls)
        return smtp

    def deliver(self, message: Outgoing) -> None:
        """Connect, authenticate, send, quit."""
        if message.kind == ACKNOWLEDGE:
            return
        mail = self.build(message)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP authentication refused: {exc.smtp_code} {exc.smtp_error!r}", retryable=False
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"SMTP server {self.host}:{self.port}: {exc}", retryable=False) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP recipients refused: {exc.recipients}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP delivery to {self.host}:{self.port} failed: {exc}") from exc

    def close(self) -> None:
        """Nothing to release (one connection per message)."""


def build(config: EmailConfig, context: ReceiverContext) -> Channel:
    """The e-mail channel; alerts of the digest's severities wait for the digest."""
    return Channel(context.name, EmailReceiver(config), digest=config.digest)


register_receiver("email", SCHEMA, EmailConfig, build, rate_limit=DEFAULT_RATE_LIMIT)
