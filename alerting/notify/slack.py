"""Slack through slack-sdk: an incoming webhook, or chat.postMessage with a bot token.

Messages are Block Kit blocks inside an attachment whose colour is the severity's: title, type,
service, count and window, value against threshold, time, action, sample lines, dashboard link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from logwarden.alerting.format import AlertView, group_title, view
from logwarden.alerting.notify.base import ACKNOWLEDGE, DeliveryError, Outgoing
from logwarden.alerting.notify.registry import (
    DURATION,
    Channel,
    ReceiverContext,
    SectionConfig,
    SectionError,
    duration,
    register_receiver,
    setting,
)

log = logging.getLogger(__name__)
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "webhook_url": {"type": "string"},
        "token": {"type": "string"},
        "channel": {"type": "string"},
        "base_url": {"type": "string"},
        "timeout": DURATION,
    },
}


@dataclass(frozen=True)
class SlackConfig(SectionConfig):
    """``alerting.slack``: an incoming webhook URL, or a bot token and the channel to post to."""

    webhook_url: str | None = None
    token: str | None = None
    channel: str | None = None
    base_url: str = "https://slack.com/api/"
    timeout: float = setting(10.0, convert=duration)

    def __post_init__(self) -> None:
        if not self.webhook_url and not self.token:
            raise SectionError([], "set webhook_url (incoming webhook) or token and channel (chat.postMessage)")
        if self.token and not self.channel:
            raise SectionError(["channel"], "a bot token needs the channel to post to")

MAX_ALERTS_SHOWN = 10
_PERMANENT_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "no_text",
    "msg_too_long",
}


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alert_blocks(v: AlertView, escalation_level: int = 0) -> list[dict]:
    """The Block Kit blocks of one alert."""
    heading = v.title if not escalation_level else f"ESCALATION {escalation_level} · {v.title}"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": heading[:150]}},
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Type*\n{_escape(v.type)}"),
                _mrkdwn(f"*Service*\n{_escape(v.service)}"),
                _mrkdwn(f"*Severity*\n{v.severity}" + (" (resolved)" if v.status == "resolved" else "")),
                _mrkdwn(f"*Count*\n{_escape(v.count_and_window)}"),
                _mrkdwn(f"*Value*\n{_escape(v.value_vs_threshold)}"),
                _mrkdwn(f"*Window*\n{v.window}"),
            ],
        },
    ]
    if v.why:
        blocks.append({"type": "section", "text": _mrkdwn(f"*Why:* {_escape(v.why)[:2900]}")})
    if v.action:
        blocks.append({"type": "section", "text": _mrkdwn(f"*Action required:* {_escape(v.action)}")})
    if v.samples:
        sample_text = "\n".join(_escape(line)[:300] for line in v.samples[-5:])
        blocks.append({"type": "section", "text": _mrkdwn(f"*Sample lines*\n```{sample_text[:2900]}```")})
    context = [_mrkdwn(f"time {v.time} · incident `{_escape(v.dedup_key)}`")]
    blocks.append({"type": "context", "elements": context})
    if v.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open dashboard"},
                        "url": v.link,
                    }
                ],
            }
        )
    return blocks


def message_payload(message: Outgoing) -> tuple[str, list[dict]]:
    """(fallback text, attachments) of a message: one coloured attachment per alert shown."""
    anomalies = message.anomalies
    views = [view(a, message.dashboard_url) for a in anomalies]
    text = group_title(anomalies)
    if message.kind == ACKNOWLEDGE:
        text = f"Acknowledged by {message.meta.get('by', '?')}: {text}"
    attachments = [
        {"color": v.colour, "fallback": v.title, "blocks": alert_blocks(v, message.escalation_level)}
        for v in views[:MAX_ALERTS_SHOWN]
    ]
    if len(views) > MAX_ALERTS_SHOWN:
        attachments.append(
            {
                "color": views[0].colour,
                "blocks": [
                    {
                        "type": "context",
                        "elements": [_mrkdwn(f"… and {len(views) - MAX_ALERTS_SHOWN} more alerts")],
                    }
                ],
            }
        )
    return text, attachments


class SlackReceiver:
    """Posts to an incoming webhook, or with chat.postMessage when a bot token is configured."""

    name = "slack"

    def __init__(self, config: SlackConfig) -> None:
        timeout = int(config.timeout) or 1
        self.channel = config.channel
        self.webhook: WebhookClient | None = None
        self.client: WebClient | None = None
        if config.token:
            self.client = WebClient(
                token=config.token, base_url=config.base_url.rstrip("/") + "/", timeout=timeout, retry_handlers=[]
            )
        else:
            self.webhook = WebhookClient(config.webhook_url, timeout=timeout, retry_handlers=[])

    def deliver(self, message: Outgoing) -> None:
        """Post the message; a refusal Slack will repeat is not retried."""
        if message.kind == ACKNOWLEDGE:
            return
        text, attachments = message_payload(message)
        try:
            if self.client is not None:
                self.client.chat_postMessage(channel=self.channel, text=text, attachments=attachments)
                return
            response = self.webhook.send(text=text, attachments=attachments)
        except SlackApiError as exc:
            error = exc.response.get("error", "") if exc.response is not None else ""
            raise DeliveryError(
                f"Slack refused the message: {error or exc}", retryable=error not in _PERMANENT_ERRORS
            ) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack unreachable: {exc}") from exc
        if response.status_code != 200:
            retryable = response.status_code >= 500 or response.status_code == 429
            raise DeliveryError(
                f"Slack webhook answered HTTP {response.status_code}: {response.body[:200]}",
                retryable=retryable,
            )

    def close(self) -> None:
        """Nothing to release (the clients open a connection per request)."""


def build(config: SlackConfig, context: ReceiverContext) -> Channel:
    """The Slack channel."""
    return Channel(context.name, SlackReceiver(config))


register_receiver("slack", SCHEMA, SlackConfig, build)
