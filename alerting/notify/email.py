"""E-mail through smtplib: STARTTLS, implicit TLS (SSL) or plain, with optional authentication.

A message carries one alert, a group of one rule and service, or a digest of many alerts.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from logwarden.alerting.format import group_title, view
from logwarden.alerting.notify.base import ACKNOWLEDGE, DIGEST, ESCALATION, DeliveryError, Outgoing
from logwarden.common.durations import parse_duration


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

    def __init__(self, config: dict[str, Any]) -> None:
        self.host = config["smtp_host"]
        self.security = config.get("security") or ("ssl" if config.get("smtp_port") == 465 else "starttls")
        self.port = config.get("smtp_port") or {"ssl": 465, "starttls": 587, "none": 25}[self.security]
        self.username = config.get("username")
        self.password = config.get("password")
        self.sender = config["from"]
        self.recipients = list(config["to"])
        self.timeout = parse_duration(config.get("timeout", 30))
        self.tls = ssl.create_default_context(cafile=config.get("ca_file"))

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
