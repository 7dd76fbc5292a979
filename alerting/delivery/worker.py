"""The delivery worker of one channel: claims due messages from the store and delivers them."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from typing import Callable

from logwarden.alerting.config import DeliveryPolicy, RateLimit
from logwarden.alerting.delivery.breaker import CircuitBreaker
from logwarden.alerting.delivery.retry import backoff_delay
from logwarden.alerting.notify.base import Outgoing, Receiver
from logwarden.alerting.store import DEAD, PENDING, SENT, SKIPPED, AlertStore

log = logging.getLogger(__name__)


class ChannelWorker:
    """A background thread delivering the messages of one channel, in order of due time.

    A failed attempt is retried after an exponential backoff with jitter, up to the policy's
    ``max_attempts``; then (or at once, when the error is permanent) the message is dead-lettered.
    The circuit breaker stops attempts while the channel is down; the rate limit defers messages
    (or skips them, for receivers such as remediation actions where a late run would do harm).
    """

    def __init__(
        self,
        store: AlertStore,
        channel: str,
        receiver: Receiver,
        policy: DeliveryPolicy,
        rate_limit: RateLimit | None,
        build: Callable[[sqlite3.Row], Outgoing],
        poll_interval: float = 1.0,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.channel = channel
        self.receiver = receiver
        self.policy = policy
        self.rate_limit = rate_limit
        self.build = build
        self.poll_interval = poll_interval
        self.on_result = on_result or (lambda channel, outcome: None)
        self.breaker = CircuitBreaker(policy.breaker_failures, policy.breaker_reset)
        self.skip_when_rate_limited = bool(getattr(receiver, "skip_when_rate_limited", False))
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._busy = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"alerting-{channel}", daemon=True)
        self._rng = random.Random()

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """Look for due messages now."""
        self._wakeup.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the message in hand (if any) is finished."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def busy(self) -> bool:
        """Whether a delivery is in progress."""
        return self._busy.is_set()

    def _sleep(self, seconds: float) -> None:
        self._wakeup.wait(max(0.0, min(seconds, self.poll_interval)))
        self._wakeup.clear()

    def _rate_limited_for(self, now: float) -> float:
        """Seconds until the rate limit allows another message (0: allowed now)."""
        if self.rate_limit is None:
            return 0.0
        sent = self.store.sent_since(self.channel, now - self.rate_limit.per)
        if len(sent) < self.rate_limit.count:
            return 0.0
        return max(0.01, sent[-self.rate_limit.count] + self.rate_limit.per - now)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception:  # the store was unavailable: log, wait, go on
                log.exception("delivery worker of %s", self.channel)
                self._sleep(self.poll_interval)

    def _step(self) -> None:
        if not self.breaker.allow():
            self._sleep(self.breaker.seconds_until_trial())
            return
        now = time.time()
        wait = 0.0 if self.skip_when_rate_limited else self._rate_limited_for(now)
        if wait:
            self._sleep(wait)
            return
        row = self.store.claim(self.channel, now)
        if row is None:
            due = self.store.next_due(self.channel)
            self._sleep(self.poll_interval if due is None else due - time.time())
            return
        self._busy.set()
        try:
            self._deliver(row, now)
        finally:
            self._busy.clear()

    def _deliver(self, row: sqlite3.Row, now: float) -> None:
        attempts = int(row["attempts"]) + 1
        if self.skip_when_rate_limited and self._rate_limited_for(now):
            self.store.finish(row["id"], SKIPPED, attempts - 1, time.time(), result="rate limited: not run")
            log.warning("%s: message %s skipped by the rate limit", self.channel, row["id"])
            self.on_result(self.channel, "skipped")
            return
        try:
            message = self.build(row)
            result = self.receiver.deliver(message)
        except Exception as exc:  # any failure of a receiver is a failed attempt
            retryable = getattr(exc, "retryable", True)
            if retryable:
                self.breaker.failure()
            if not retryable or attempts >= self.policy.max_attempts:
                self.store.finish(row["id"], DEAD, attempts, time.time(), error=str(exc)[:1000])
                log.error(
                    "%s: message %s dead-lettered after %d attempt(s): %s",
                    self.channel,
                    row["id"],
                    attempts,
                    exc,
                )
                self.on_result(self.channel, "dead")
                return
            delay = backoff_delay(attempts, self.policy.initial_backoff, self.policy.max_backoff, self._rng)
            self.store.finish(
                row["id"],
                PENDING,
                attempts,
                time.time(),
                error=str(exc)[:1000],
                next_attempt_at=time.time() + delay,
            )
            log.warning(
                "%s: message %s attempt %d failed (%s); next in %.1fs",
                self.channel,
                row["id"],
                attempts,
                exc,
                delay,
            )
            self.on_result(self.channel, "failed")
            return
        self.breaker.success()
        self.store.finish(
            row["id"], SENT, attempts, time.time(), result=result if isinstance(result, str) else None
        )
        self.on_result(self.channel, "sent")
