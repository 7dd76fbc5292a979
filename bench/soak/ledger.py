"""What became of every record the soak sent, per protocol.

Outcomes (what "acknowledged" means per protocol is in ``ACKNOWLEDGED``):

- ``acked``: the collector took responsibility for the record: it must be in the lake exactly once;
- ``rejected``: the collector answered that it refused the record: it must be in the dead-letter
  store and never in the lake;
- ``refused``: the whole request was turned away (HTTP 429/503/413/408): nothing of it may be in the lake;
- ``in_doubt``: no answer (the collector was killed, a timeout): at most once in the lake.

Ids are kept in compact integer arrays; a resend always uses fresh ids, so an id has one outcome.
"""
from __future__ import annotations

import threading
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass

ACKNOWLEDGED = {
    "http": "HTTP 200 (or 400 with per-record errors) answer: the records not listed in `errors` are "
            "acknowledged, those listed are rejected (dead-lettered)",
    "tcp": "NDJSON over TCP has no answer: the soak half-closes each connection after its chunk and waits "
           "for the collector to close its side, which it does only once every record read is durable. "
           "The chunk is acknowledged when that clean close happened while the collector the chunk was "
           "sent to was still alive (no kill injected in between); otherwise it is in doubt. Hostile lines "
           "of an acknowledged chunk count as rejected",
    "syslog": "RFC 5424 over TCP (octet-counted) and RFC 3164 text lines over TCP: as tcp",
    "corrupted": "records of the garbage batch files the corrupt_spool fault drops into the spool: never sent "
                 "to the collector, never acknowledged, lost by construction; they must be in spool/failed "
                 "(quarantined) and nowhere in the lake",
}
OUTCOMES = ("acked", "rejected", "refused", "in_doubt", "corrupted")


@dataclass
class Trigger:
    """The acknowledgement of an incident's records (the trigger-th one crosses the threshold)."""

    acked_ids: list[int]
    ack_times: list[float]


class Ledger:
    """Thread-safe record of outcomes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ids: dict[str, array] = {name: array("q") for name in OUTCOMES}
        self.hostile = array("q")
        self.hostile_kinds: Counter = Counter()
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.statuses: Counter = Counter()
        self.valid_refused_by_answer: list[dict] = []
        self.hostile_accepted_by_answer: list[int] = []
        self.count_mismatches: list[dict] = []
        self.acked_per_second: Counter = Counter()
        self.incidents: dict[str, Trigger] = {}
        self.t0: float | None = None
        self.first_ack_at: float | None = None

    def start(self, t0: float) -> None:
        """The load starts at ``t0`` (epoch seconds)."""
        self.t0 = t0

    def record(self, protocol: str, outcome: str, ids: list[int], hostile: list[int] | tuple = (),
               at: float | None = None) -> None:
        """``ids`` (valid records) had ``outcome``; ``hostile`` ids were part of the same send."""
        at = time.time() if at is None else at
        with self._lock:
            if outcome == "acked":
                self.ids["acked"].extend(ids)
                self.ids["rejected"].extend(hostile)
                self.counts[protocol]["acked"] += len(ids)
                self.counts[protocol]["rejected"] += len(hostile)
                if self.t0 is not None and ids:
                    self.acked_per_second[int(at - self.t0)] += len(ids)
                    if self.first_ack_at is None:
                        self.first_ack_at = at
            else:
                self.ids[outcome].extend(ids)
                self.ids[outcome].extend(hostile)
                self.counts[protocol][outcome] += len(ids) + len(hostile)
            self.counts[protocol]["sent"] += len(ids) + len(hostile)

    def note_hostile(self, ids_and_kinds: list[tuple[int, str]]) -> None:
        """Hostile records about to be sent."""
        with self._lock:
            for n, kind in ids_and_kinds:
                self.hostile.append(n)
                self.hostile_kinds[kind] += 1

    def status(self, label: str) -> None:
        """Count one answer (e.g. ``http 200``, ``http 429``, ``tcp clean close``)."""
        with self._lock:
            self.statuses[label] += 1

    def answer_mismatch(self, valid_refused: list[dict], hostile_accepted: list[int]) -> None:
        """The collector refused valid records or accepted hostile ones in an answer."""
        with self._lock:
            self.valid_refused_by_answer += valid_refused[:100 - len(self.valid_refused_by_answer)]
            self.hostile_accepted_by_answer += hostile_accepted

    def count_mismatch(self, detail: dict) -> None:
        """An answer's ``accepted``/``rejected`` counts disagree with its per-record ``errors``."""
        with self._lock:
            if len(self.count_mismatches) < 100:
                self.count_mismatches.append(detail)

    def incident_acked(self, name: str, ids: list[int], at: float) -> None:
        """Records of incident ``name`` were acknowledged at ``at``."""
        with self._lock:
            trigger = self.incidents.setdefault(name, Trigger([], []))
            trigger.acked_ids += ids
            trigger.ack_times += [at] * len(ids)

    def array(self, outcome: str) -> array:
        """A copy of the ids that had ``outcome`` (or ``hostile``: every hostile id sent)."""
        with self._lock:
            return array("q", self.hostile if outcome == "hostile" else self.ids[outcome])

    def total(self, outcome: str) -> int:
        """How many ids had ``outcome``."""
        with self._lock:
            return len(self.ids[outcome])

    def snapshot_counts(self) -> dict[str, dict[str, int]]:
        """Per protocol, records sent and their outcomes."""
        with self._lock:
            return {protocol: dict(counter) for protocol, counter in sorted(self.counts.items())}
