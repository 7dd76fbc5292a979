"""Delivery: one worker thread per channel, retries with backoff and jitter, a circuit breaker,
a rate limit, and a dead letter after the last attempt."""

from logwarden.alerting.delivery.breaker import CircuitBreaker
from logwarden.alerting.delivery.retry import backoff_delay
from logwarden.alerting.delivery.worker import ChannelWorker

__all__ = ["ChannelWorker", "CircuitBreaker", "backoff_delay"]
