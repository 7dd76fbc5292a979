"""The alert channels of the soak: local Slack, PagerDuty (Events API v2) and SMTP receivers
(``logwarden.testing.receivers``), the config file that points ``logwarden up`` at them, and what
each received, as (rule, key, status, time) deliveries.

How a delivery is read:
- PagerDuty: each accepted event (HTTP 202): ``trigger`` is a firing, ``resolve`` a resolved
  event, of the incident ``dedup_key`` = ``rule:key``;
- Slack: each accepted webhook post (HTTP 200): one alert per attachment, identified by its
  ``incident `rule:key``` context line, resolved when its heading starts with ``[RESOLVED]``;
- e-mail: each accepted message (250): one alert per heading line ``[SEVERITY] rule · key``
  (``[RESOLVED] …`` for resolved events) of the body (a digest carries several).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from logwarden.testing.receivers import ProtocolServer, SmtpServer, self_signed

SLACK_PATH = "/services/T000SOAK/B000SOAK/soakwebhooksecret"
_INCIDENT = re.compile(r"incident `([^`]+)`")
_HEADING = re.compile(r"^\[(CRITICAL|HIGH|MEDIUM|LOW|RESOLVED)\] (\S+) · (.+)$", re.MULTILINE)
FIRING, RESOLVED = "firing", "resolved"


@dataclass(frozen=True)
class Delivery:
    """One alert as a channel received it."""

    channel: str
    rule: str
    key: str
    status: str
    at: float

    @property
    def name(self) -> str:
        """``rule:key``."""
        return f"{self.rule}:{self.key}"


class FakeChannels:
    """The three receivers; ``outage`` takes Slack and PagerDuty down and makes SMTP refuse."""

    def __init__(self, workdir: Path) -> None:
        tls_dir = workdir / "tls"
        tls_dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = self_signed(tls_dir)
        self.slack = ProtocolServer()
        self.pagerduty = ProtocolServer()
        self.smtp = SmtpServer(self.cert, self.key, mode="starttls")
        self.outages = 0

    def start(self) -> "FakeChannels":
        """Start the three servers."""
        self.slack.up()
        self.pagerduty.up()
        self.smtp.start()
        return self

    def stop(self) -> None:
        """Stop the three servers."""
        self.slack.down()
        self.pagerduty.down()
        self.smtp.stop()

    def outage(self, down: bool) -> None:
        """Start (``down``) or end the outage of the three channels."""
        if down:
            self.outages += 1
            self.slack.down()
            self.pagerduty.down()
            self.smtp.refuse(True)
        else:
            self.slack.up()
            self.pagerduty.up()
            self.smtp.refuse(False)

    def config(self, syslog_port: int, digest_every: float) -> dict:
        """The soak's config file: embedded defaults, but the channels are these receivers, alerts go out
        at once (``group_wait: 0``), MEDIUM digests every ``digest_every`` seconds, retries come back
        within seconds after an outage, and no escalation re-pages (an unacknowledged page would be
        paged again after 15 minutes, a delivery the soak does not expect). The ``disk_low`` self-rule is
        off: the ``disk_full`` fault fills the disk by design (and a shared machine's disk may be low
        anyway), and its alerts are not among those the plan expects."""
        return {
            "collector": {"syslog_port": syslog_port, "udp_syslog": False},
            "monitoring": {"self_rules": {"disabled": ["disk_low"]}},
            "alerting": {
                "group_wait": 0,
                "poll_interval": 0.2,
                "flush_timeout": 20,
                "delivery": {"max_attempts": 1000, "initial_backoff": 0.5, "max_backoff": 4,
                             "breaker_failures": 5, "breaker_reset": 3},
                "escalation": {"enabled": False},
                "pagerduty": {"routing_key": ProtocolServer.PD_ROUTING_KEY,
                              "events_url": f"{self.pagerduty.url}/v2/enqueue", "timeout": 5},
                "slack": {"webhook_url": f"{self.slack.url}{SLACK_PATH}", "timeout": 5},
                "email": {"smtp_host": "127.0.0.1", "smtp_port": self.smtp.port, "security": "starttls",
                          "username": SmtpServer.USER, "password": SmtpServer.PASSWORD,
                          "from": "logwarden@soak.test", "to": ["oncall@soak.test"], "ca_file": str(self.cert),
                          "timeout": 5, "digest": {"every": digest_every, "max_alerts": 20}},
            },
        }

    def write_config(self, path: Path, syslog_port: int, digest_every: float = 5.0) -> Path:
        """Write the config file; its path."""
        path.write_text(yaml.safe_dump(self.config(syslog_port, digest_every), sort_keys=False))
        return path

    # what arrived ------------------------------------------------------------------------------
    def deliveries(self) -> list[Delivery]:
        """Every alert accepted by a channel, in arrival order per channel."""
        return self._pagerduty() + self._slack() + self._email()

    def _pagerduty(self) -> list[Delivery]:
        out = []
        with self.pagerduty.lock:
            requests = list(self.pagerduty.requests)
        for request in requests:
            body = request["body"]
            if request.get("status") != 202 or body.get("event_action") not in ("trigger", "resolve"):
                continue
            rule, _, key = str(body.get("dedup_key", "")).partition(":")
            rule = rule.rsplit("/", 1)[-1]  # ``tenant/rule`` for an alert of another tenant (``*/``: self-alerts)
            status = FIRING if body["event_action"] == "trigger" else RESOLVED
            out.append(Delivery("pagerduty", rule, key, status, request["at"]))
        return out

    def _slack(self) -> list[Delivery]:
        out = []
        with self.slack.lock:
            requests = list(self.slack.requests)
        for request in requests:
            if request.get("status") != 200 or not request["path"].startswith("/services/"):
                continue
            for attachment in request["body"].get("attachments", []):
                heading, incident = "", None
                for block in attachment.get("blocks", []):
                    if block.get("type") == "header":
                        heading = block["text"]["text"]
                    if block.get("type") == "context":
                        for element in block.get("elements", []):
                            match = _INCIDENT.search(element.get("text", ""))
                            incident = match.group(1) if match else incident
                if incident is None:
                    continue
                rule, _, key = incident.partition(":")
                out.append(Delivery("slack", rule, key, RESOLVED if "[RESOLVED]" in heading else FIRING,
                                    request["at"]))
        return out

    def _email(self) -> list[Delivery]:
        out = []
        for message, at in zip(list(self.smtp.messages), list(self.smtp.accepted_at)):
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            for severity, rule, key in _HEADING.findall(text):
                out.append(Delivery("email", rule, key.strip(), RESOLVED if severity == "RESOLVED" else FIRING, at))
        return out

    def stats(self) -> dict:
        """Requests each receiver saw, accepted or not (refused during outages are not seen by the HTTP
        receivers: they were down)."""
        return {"slack_posts": len(self.slack.requests), "pagerduty_events": len(self.pagerduty.requests),
                "smtp_messages_accepted": len(self.smtp.messages), "smtp_messages_refused": self.smtp.handler.refused,
                "outages": self.outages}
