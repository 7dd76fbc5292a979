"""Delivery: one worker thread per channel, retries with backoff and jitter, a circuit breaker,
a rate limit, and a dead letter after the last attempt."""

from alerting.delivery.breaker import CircuitBreaker
from alerting.delivery.retry import backoff_delay
from alerting.delivery.worker import ChannelWorker

__all__ = ["ChannelWorker", "CircuitBreaker", "backoff_delay"]
