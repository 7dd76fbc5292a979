"""The load generator: paced sender threads (HTTP NDJSON and JSON arrays, TCP NDJSON, syslog over TCP,
RFC 3164 text lines over TCP), the incident sender, and the bookkeeping of what was acknowledged.

Each sender keeps its share of the rate (times the plan's multiplier during a burst). A sender that
falls more than ``MAX_LAG`` seconds behind drops the backlog instead of catching up, so the
sustained rate measured from the acknowledgements is what the stack really took.
"""
from __future__ import annotations

import logging
import random
import socket
import threading
import time
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field

import requests

from bench.soak.ledger import Ledger
from bench.soak.plan import GHOST_SERVICE, Incident, Plan
from bench.soak.workload import JSON_SERVICES, RecordFactory, iso_now

log = logging.getLogger(__name__)
MAX_LAG = 2.0
HTTP_TIMEOUT = 30.0
STREAM_TIMEOUT = 60.0
STREAM_INTERVAL = 0.5
REFUSED_STATUSES = {408, 413, 429, 503}
SHARES = {"http": 0.70, "tcp": 0.10, "syslog": 0.10, "text": 0.10}
HOSTILE_PER_RECORDS = 200  # about one hostile record per this many valid ones (at least one per request)


class Epoch:
    """Counts the collector kills; the soak bumps it *before* sending the signal, so a stream chunk
    whose clean close was seen under the same epoch it was sent under was closed by a live collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def bump(self) -> int:
        """A kill is about to happen; the new epoch."""
        with self._lock:
            self.value += 1
            return self.value


@dataclass
class Body:
    """One HTTP request body and which of its records are hostile."""

    ids: list[int]
    hostile: dict[int, int] = field(default_factory=dict)  # index in the body -> id
    lines: list[bytes] = field(default_factory=list)
    as_array: bool = False

    def data(self) -> bytes:
        """The bytes to post."""
        if self.as_array:
            return b"[" + b",".join(self.lines) + b"]"
        return b"\n".join(self.lines) + b"\n"

    @property
    def valid_ids(self) -> list[int]:
        """Ids of the valid records, in body order."""
        hostile = set(self.hostile.values())
        return [n for n in self.ids if n not in hostile]


def post_body(session: requests.Session, url: str, body: Body, ledger: Ledger) -> list[int]:
    """Post ``body`` and record the outcome; the acknowledged valid ids (empty when not acknowledged)."""
    headers = {"Content-Type": "application/json" if body.as_array else "application/x-ndjson"}
    valid = body.valid_ids
    hostile = list(body.hostile.values())
    try:
        response = session.post(url, data=body.data(), headers=headers, timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        ledger.status(f"http error {type(exc).__name__}")
        ledger.record("http", "in_doubt", valid, hostile)
        return []
    ledger.status(f"http {response.status_code}")
    if response.status_code in REFUSED_STATUSES:
        ledger.record("http", "refused", valid, hostile)
        return []
    try:
        answer = response.json() if response.status_code in (200, 400) else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "accepted" not in answer:
        ledger.record("http", "in_doubt", valid, hostile)
        return []
    errors = answer.get("errors") or []
    if any(e.get("index") is None for e in errors):  # the whole body was turned away
        ledger.record("http", "refused", valid, hostile)
        return []
    if answer.get("errors_truncated"):  # rejections not listed: the records cannot be told apart
        ledger.status("http answer with errors_truncated")
        ledger.record("http", "in_doubt", valid, hostile)
        return []
    refused_index = {int(e["index"]) for e in errors}
    accepted, rejected, valid_refused = [], [], []
    for index, n in enumerate(body.ids):
        is_hostile = index in body.hostile
        if index in refused_index:
            rejected.append(n)
            if not is_hostile:
                valid_refused.append({"id": n, "error": next(e for e in errors if e["index"] == index)})
        else:
            accepted.append(n)
    hostile_accepted = [body.hostile[i] for i in body.hostile if i not in refused_index]
    if valid_refused or hostile_accepted:
        ledger.answer_mismatch(valid_refused, hostile_accepted)
    if answer.get("accepted") != len(accepted) or answer.get("rejected") != len(rejected):
        ledger.count_mismatch({"answer": {k: answer.get(k) for k in ("accepted", "rejected")},
                               "by_index": {"accepted": len(accepted), "rejected": len(rejected)}})
    ledger.record("http", "acked", accepted, rejected)
    valid_set = set(valid)
    return [n for n in accepted if n in valid_set]


class PacedSender(threading.Thread, metaclass=ABCMeta):
    """A thread sending ``rate`` records/s (times the plan's multiplier) in units of ``unit`` records."""

    def __init__(self, name: str, rate: float, unit: int, plan: Plan, stop: threading.Event, t0: float) -> None:
        super().__init__(name=name, daemon=True)
        self.rate, self.unit, self.plan, self.stop_event, self.t0 = rate, unit, plan, stop, t0
        self.dropped = 0.0
        self.errors = 0

    def run(self) -> None:
        """Send until stopped."""
        due = time.monotonic()
        start_mono, start_wall = due, self.t0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now < due:
                self.stop_event.wait(due - now)
                continue
            elapsed = start_wall - self.t0 + (now - start_mono)
            rate = self.rate * self.plan.rate_multiplier(elapsed)
            try:
                self.send(self.unit, elapsed)
            except Exception:  # noqa: BLE001 - a sender must keep going; the error is counted and logged
                self.errors += 1
                log.exception("%s: send failed", self.name)
                self.stop_event.wait(0.2)
            due += self.unit / rate
            lag = time.monotonic() - due
            if lag > MAX_LAG:
                self.dropped += lag * rate
                due = time.monotonic()

    @abstractmethod
    def send(self, count: int, elapsed: float) -> None:
        """Send ``count`` records, ``elapsed`` seconds into the load."""


class HttpSender(PacedSender):
    """JSON app logs over HTTP: NDJSON bodies with hostile lines mixed in; every fourth body a JSON array."""

    def __init__(self, name: str, url: str, rate: float, plan: Plan, factory: RecordFactory, ledger: Ledger,
                 stop: threading.Event, t0: float, seed: int) -> None:
        unit = int(min(2000, max(20, rate / 10)))
        super().__init__(name, rate, unit, plan, stop, t0)
        self.url, self.factory, self.ledger = url, factory, ledger
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.services = list(JSON_SERVICES) + plan.incident_services()
        self.sent_bodies = 0

    def send(self, count: int, elapsed: float) -> None:
        """One request of ``count`` valid records (plus hostile ones in NDJSON bodies)."""
        stamp = iso_now()
        services = self.services + ([GHOST_SERVICE] if elapsed >= self.plan.ghost_resumes_at else [])
        body = Body([], as_array=self.sent_bodies % 4 == 3)
        for _ in range(count):
            n, line = self.factory.json_record(self.rng, stamp, self.rng.choice(services))
            body.ids.append(n)
            body.lines.append(line)
        if not body.as_array:
            hostile = [self.factory.hostile(stamp) for _ in range(max(1, count // HOSTILE_PER_RECORDS))]
            self.ledger.note_hostile([(n, kind) for n, kind, _ in hostile])
            for n, _, raw in hostile:
                index = self.rng.randint(1, len(body.lines))  # never first: a body starting with '[' is an array
                body.lines.insert(index, raw)
                body.ids.insert(index, n)
            hostile_ids = {h[0] for h in hostile}
            body.hostile = {i: n for i, n in enumerate(body.ids) if n in hostile_ids}
        self.sent_bodies += 1
        if not post_body(self.session, self.url, body, self.ledger):
            self.stop_event.wait(0.1)  # the collector is down or refusing: do not spin


class StreamSender(PacedSender):
    """Records over a TCP listener: one connection per chunk, acknowledged by the collector's clean close."""

    def __init__(self, name: str, kind: str, address: tuple[str, int], rate: float, plan: Plan,
                 factory: RecordFactory, ledger: Ledger, stop: threading.Event, t0: float, epoch: Epoch,
                 seed: int) -> None:
        super().__init__(name, rate, max(1, int(rate * STREAM_INTERVAL)), plan, stop, t0)
        self.kind, self.address, self.factory, self.ledger, self.epoch = kind, address, factory, ledger, epoch
        self.rng = random.Random(seed)
        self.protocol = "tcp" if kind == "tcp" else "syslog"

    def _chunk(self, count: int) -> tuple[bytes, list[int], list[int]]:
        now = time.time()
        stamp = iso_now(now)
        valid: list[int] = []
        hostile: list[int] = []
        parts: list[bytes] = []
        for _ in range(count):
            if self.kind == "tcp":
                n, line = self.factory.json_record(self.rng, stamp, "soak-tcp")
                parts.append(line + b"\n")
            elif self.kind == "syslog":
                n, line = self.factory.syslog_5424(self.rng, stamp)
                parts.append(line)
            else:
                n, line = self.factory.text_3164(self.rng, now)
                parts.append(line)
            valid.append(n)
        if self.kind == "tcp":
            n, kind, raw = self.factory.hostile(stamp)
            parts.insert(self.rng.randint(0, len(parts)), raw + b"\n")
        elif self.kind == "syslog":
            n, kind, raw = self.factory.hostile_syslog()
            parts.insert(self.rng.randint(0, len(parts)), raw)
        else:
            return b"".join(parts), valid, hostile
        hostile.append(n)
        self.ledger.note_hostile([(n, kind)])
        return b"".join(parts), valid, hostile

    def send(self, count: int, elapsed: float) -> None:
        """One connection: the chunk, a half-close, then wait for the collector to close."""
        data, valid, hostile = self._chunk(count)
        epoch = self.epoch.value
        try:
            sock = socket.create_connection(self.address, timeout=5)
        except OSError:
            self.ledger.status(f"{self.protocol} connect refused")
            self.ledger.record(self.protocol, "refused", valid, hostile)
            self.stop_event.wait(0.2)
            return
        try:
            sock.settimeout(STREAM_TIMEOUT)
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except OSError as exc:
            self.ledger.status(f"{self.protocol} {type(exc).__name__}")
            self.ledger.record(self.protocol, "in_doubt", valid, hostile)
            return
        finally:
            sock.close()
        if self.epoch.value == epoch:
            self.ledger.status(f"{self.protocol} clean close")
            self.ledger.record(self.protocol, "acked", valid, hostile)
        else:
            self.ledger.status(f"{self.protocol} close across a collector kill")
            self.ledger.record(self.protocol, "in_doubt", valid, hostile)


class IncidentSender(threading.Thread):
    """Sends the incidents' records at their scheduled times over HTTP, each moment in one request;
    a request that is not acknowledged is sent again with fresh ids until it is (the incident needs
    its records, as a service retrying would)."""

    RETRY_FOR = 60.0

    def __init__(self, url: str, plan: Plan, factory: RecordFactory, ledger: Ledger, stop: threading.Event,
                 t0: float) -> None:
        super().__init__(name="incidents", daemon=True)
        self.url, self.plan, self.factory, self.ledger, self.stop_event, self.t0 = url, plan, factory, ledger, stop, t0
        self.session = requests.Session()
        self.gave_up: list[str] = []

    def schedule(self) -> list[tuple[float, Incident]]:
        """(seconds after t0, incident) of every incident record, in time order."""
        moments = []
        for incident in self.plan.incidents:
            if incident.count == 0:
                continue
            step = incident.span / incident.count if incident.count > 1 else 0.0
            moments += [(incident.start + k * step, incident) for k in range(incident.count)]
        return sorted(moments, key=lambda item: item[0])

    def run(self) -> None:
        """Send until the schedule is done or the soak stops."""
        pending = self.schedule()
        while pending and not self.stop_event.is_set():
            at = pending[0][0]
            wait = self.t0 + at - time.time()
            if wait > 0:
                self.stop_event.wait(wait)
                continue
            due = [item for item in pending if item[0] <= at + 0.05]
            pending = pending[len(due):]
            by_incident: dict[str, list[Incident]] = {}
            for _, incident in due:
                by_incident.setdefault(incident.name, []).append(incident)
            for name, items in by_incident.items():
                self._send_until_acked(name, items[0], len(items))

    def _send_until_acked(self, name: str, incident: Incident, count: int) -> None:
        deadline = time.monotonic() + self.RETRY_FOR
        while not self.stop_event.is_set():
            stamp = iso_now()
            made = [self.factory.incident_record(incident, stamp) for _ in range(count)]
            body = Body([n for n, _ in made], lines=[line for _, line in made])
            acked = post_body(self.session, self.url, body, self.ledger)
            if acked:
                self.ledger.incident_acked(name, acked, time.time())
                return
            if time.monotonic() > deadline:
                self.gave_up.append(name)
                log.error("incident %s: records not acknowledged for %.0fs; giving up", name, self.RETRY_FOR)
                return
            self.stop_event.wait(0.2)


def send_ghost(url: str, factory: RecordFactory, ledger: Ledger, count: int, age: float) -> list[int]:
    """Before the load: ``count`` records of the ghost service stamped ``age`` seconds ago (one minute
    spread); retried with fresh ids until acknowledged. The acknowledged ids."""
    session = requests.Session()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = time.time()
        made = [factory.json_record(random.Random(n), iso_now(now - age - 60 + n * 60 / count), GHOST_SERVICE)
                for n in range(count)]
        body = Body([n for n, _ in made], lines=[line for _, line in made])
        acked = post_body(session, url, body, ledger)
        if acked:
            return acked
        time.sleep(0.5)
    raise RuntimeError("the ghost service's records were never acknowledged")

