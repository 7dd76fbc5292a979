"""Out-of-order batches: the window rules give the alerts event order gives, within the allowed lateness.

Several collectors batch on their own, so their batches reach the detectors in either order; late
shippers do the same. As long as every event is within ``allowed_lateness`` of the newest event seen
when it arrives, the order must not change the alerts (rule, key, status, window, value, severity).
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.monitoring import DetectorSet, load_rules, parse_rules
from logwarden.monitoring.anomaly import FIRING, RESOLVED
from logwarden.monitoring.rules.base import US
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from tests.monitoring.helpers import T0, rec, table

SPECS = [spec for spec in load_rules(ANOMALY_SCHEMA_PATH).rules if spec.kind != "ml"]
BY_NAME = {spec.name: spec for spec in SPECS}
LATENESS_S = BY_NAME["error_spike"].allowed_lateness
END_S = 10_000.0  # far past every generated event: every window closes, every episode resolves


def fields(anomalies: list[Any]) -> list[tuple]:
    """What must not depend on the delivery order."""
    return sorted((a.rule, a.tenant, a.key, a.status, a.window_start, a.window_end, a.value, a.severity)
                  for a in anomalies)


def deliver(specs: list[Any], batches: list[list[Event]]) -> list[Any]:
    """Every batch through one DetectorSet in the given order, then event time moved past the end."""
    detectors = DetectorSet(specs)
    out = []
    for number, batch in enumerate(batches):
        out += detectors.process(f"b{number}", table(records(batch)))
    return out + detectors.advance(int((T0.timestamp() + END_S) * US))


def test_crossing_completed_by_earlier_events_fires() -> None:
    """The reproduction: 21 errors, then the 80 earlier ones that bring the count over 100."""
    spec = BY_NAME["error_spike"]
    later = [rec(200 + i, "pay", "ERROR", "boom") for i in range(21)]
    earlier = [rec(120 + i, "pay", "ERROR", "boom") for i in range(80)]
    detectors = DetectorSet([spec])
    assert detectors.process("a", table(later)) == []
    fired = detectors.process("b", table(earlier))
    assert [(a.status, a.value, a.window_end) for a in fired] == [("firing", 101.0, "2026-11-22T10:03:40Z")]
    assert fields(fired) == fields(DetectorSet([spec]).process("ab", table(later + earlier)))


def test_too_late_events_are_counted_and_raise_nothing_for_a_resolved_episode() -> None:
    """Beyond the lateness: an episode already resolved stays resolved (it is final) and the late events
    are counted; in event order the same data would have made the episode start earlier and last longer."""
    spec = BY_NAME["db_connection_failure"]  # >= 10 in 2 minutes
    burst = [rec(100 + i, "db", "ERROR", "x", error_code="DB_CONNECTION_FAILED") for i in range(10)]
    detectors = DetectorSet([spec])
    first = detectors.process("a", table(burst))
    assert [a.status for a in first] == ["firing"]
    after = detectors.process("b", table([rec(1_000, "db", "INFO", "ok")]))
    assert [(a.status, a.window_end) for a in after] == [("resolved", "2026-11-22T10:03:40Z")]
    too_late = [rec(50 + i, "db", "ERROR", "x", error_code="DB_CONNECTION_FAILED") for i in range(10)]
    assert detectors.process("c", table(too_late)) == []
    stats = detectors.stats()["db_connection_failure"]
    assert stats["late_events"] == 10 and stats["too_late_events"] == 10


KINDS = [
    {"level": "ERROR"}, {"level": "CRITICAL"}, {"level": "INFO"},
    {"level": "ERROR", "error_code": "DB_CONNECTION_FAILED"},
    {"level": "ERROR", "user_id": "u1"}, {"level": "ERROR", "user_id": "u2"},
    {"level": "ERROR", "user_id": "root", "attributes": json.dumps({"user_privileged": True})},
    {"level": "INFO", "duration_ms": 7_000.0},
    {"level": "WARN", "attributes": json.dumps({"threat_matched": True, "threat_indicator": "203.0.113.9",
                                                 "threat_list": "feed", "threat_origin": "XX"})},
]
Event = tuple[float, str, int, str]  # (seconds after T0, service, index in KINDS, record id)


def records(events: list[Event]) -> list[dict]:
    """Events as records."""
    return [{**rec(t, service, message=f"m{record_id}"), **KINDS[kind], "record_id": record_id}
            for t, service, kind, record_id in events]


@st.composite
def bursts(draw: st.DrawFn) -> list[Event]:
    """Events in bursts: a service, a kind, a start, a count and a spacing each."""
    events: list[Event] = []
    for number in range(draw(st.integers(1, 6))):
        service = draw(st.sampled_from(["pay", "auth", "cart"]))
        kind = draw(st.integers(0, len(KINDS) - 1))
        start = draw(st.integers(0, 900))
        count = draw(st.sampled_from([1, 5, 9, 10, 12, 49, 50, 60, 101, 130]))
        spacing = draw(st.sampled_from([0.1, 0.5, 1.0, 3.0]))
        events += [(round(start + i * spacing, 1), service, kind, f"{number}-{i}") for i in range(count)]
    return sorted(events)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[list[Event]], list[list[Event]]]:
    """(batches in event order, batches of the same events in an order where each is within the lateness
    of the newest event delivered before it). Either the event-order batches themselves, shuffled, or
    the batches of several collectors: each event goes to one, each cuts its own every ``period``."""
    events = draw(bursts())
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(events) - 1)), max_size=8))))
    in_event_order = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)]) if events[a:b]]
    batches = in_event_order
    if draw(st.booleans()):
        collectors, period = draw(st.integers(2, 3)), draw(st.sampled_from([0.25, 2.0, 20.0]))
        chance = draw(st.randoms(use_true_random=False))
        cut: dict[tuple[int, int], list[Event]] = {}
        for event in events:
            cut.setdefault((chance.randrange(collectors), int(event[0] // period)), []).append(event)
        batches = sorted(cut.values())
    remaining, order, newest = list(range(len(batches))), [], -math.inf
    while remaining:
        allowed = [i for i in remaining if admissible(batches, remaining, i, newest)]
        choice = allowed[draw(st.integers(0, len(allowed) - 1))]
        remaining.remove(choice)
        order.append(batches[choice])
        newest = max(newest, seconds(batches[choice][-1]))
    return in_event_order, order


def seconds(event: Event) -> float:
    """An event's time, seconds after T0."""
    return event[0]


def admissible(batches: list[list[Event]], remaining: list[int], i: int, newest: float) -> bool:
    """Whether batch ``i`` can come next: within the lateness of the newest event delivered, and leaving
    every batch still to come within the lateness of the newest one after it (always true of the earliest)."""
    if seconds(batches[i][0]) < newest - LATENESS_S:
        return False
    rest = [seconds(batches[j][0]) for j in remaining if j != i]
    after = max(newest, seconds(batches[i][-1]))
    return not rest or min(rest) >= after - LATENESS_S


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(deliveries())
def test_any_order_within_lateness_gives_the_event_order_alerts(delivery: tuple) -> None:
    """No crossing missed: every firing alert of event order, stamped alike, and the last resolved event
    of every key. An alert sent is never withdrawn, so where an episode alerted or resolved before
    earlier events arrived there may be more, only inside an episode of event order, and an alert may
    carry the count known when it was sent (flatline: see below)."""
    in_event_order, shuffled = delivery
    expected, got = fields(deliver(SPECS, in_event_order)), fields(deliver(SPECS, shuffled))
    sent = {a[:6]: a[6] for a in got if a[3] == FIRING}
    assert [a for a in expected if a[3] == FIRING and not sent.get(a[:6], math.inf) <= a[6]] == [], (got, expected)
    assert last_resolved(got) == last_resolved(expected), (got, expected)
    for extra in [a for a in got if a[:6] not in {e[:6] for e in expected}]:
        # flatline decides when the watermark reaches the silence: an event of the silence's first
        # ``allowed_lateness`` arriving after a later one leaves a silence event order does not report
        assert BY_NAME[extra[0]].kind == "flatline" or within_an_episode(extra, expected), (extra, got)


def last_resolved(alerts: list[tuple]) -> dict[tuple, tuple]:
    """The last resolved event of each rule and key, but flatline's (see the test)."""
    last = {}
    for alert in sorted((a for a in alerts if a[3] == RESOLVED), key=moment):
        if BY_NAME[alert[0]].kind != "flatline":
            last[alert[:3]] = alert
    return last


def moment(alert: tuple) -> datetime:
    """The window end of an alert's fields."""
    return datetime.fromisoformat(alert[5].replace("Z", "+00:00"))


def within_an_episode(alert: tuple, expected: list[tuple]) -> bool:
    """Whether ``alert`` is stamped inside an event-order episode of its rule and key (from its first
    alert to its resolved event)."""
    start, at = None, moment(alert)
    for other in sorted((a for a in expected if a[:3] == alert[:3]), key=moment):
        if other[3] == FIRING and start is None:
            start = moment(other)
        elif other[3] == RESOLVED and start is not None:
            if start <= at <= moment(other):
                return True
            start = None
    return start is not None and start <= at


BRUTE_FORCE = parse_rules("""version: 1
rules:
  - name: brute_force_success
    kind: sequence
    group_by: user_id
    window: 10m
    steps:
      - {filter: {field: message, regex: "(?i)login failed"}, min_count: 5}
      - {filter: {field: message, regex: "(?i)login succeeded"}}
    severity: HIGH
""").by_name()["brute_force_success"]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_a_sequence_completed_by_steps_arriving_late_fires_as_in_event_order(order: tuple[int, ...]) -> None:
    """The success arrives before the failed logins that precede it (within the lateness)."""
    failures = [rec(i * 5.0, "auth", "WARNING", "login failed", user_id="u1") for i in range(5)]
    parts = [failures[:3], failures[3:], [rec(30, "auth", "INFO", "login succeeded", user_id="u1")]]
    detectors = DetectorSet([BRUTE_FORCE])
    out = [a for i in order for a in detectors.process(f"b{i}", table(parts[i]))]
    assert [(a.status, a.key, a.value, a.first_event, a.window_end) for a in out] == [
        ("firing", "u1", 5.0, "2026-11-22T10:00:00Z", "2026-11-22T10:00:30Z")]
