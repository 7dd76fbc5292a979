"""Demo traffic: four simulated services sending realistic logs, with scheduled incidents.

The services run on a simulated clock that starts ``lead`` seconds in the past and runs
``speed`` times faster than the wall clock until it catches up with it (then at 1x), so
the ten-minute windows of the real rules pass in a couple of minutes of waiting while no
timestamp is ever in the future. The detectors work in event time, so this is honest.

Incidents, in simulated seconds from the start (each fires one of the five seed rules):
  30–330     auth-service: 60 failed logins of user u-7331         -> suspicious_user (MEDIUM)
  120        api-gateway: three requests over 5 s                   -> slow_response (MEDIUM)
  180–300    payment-service: 130 provider errors                   -> error_spike (HIGH)
  180–1080   database-service: silent for 15 minutes                -> service_down (CRITICAL)
  360–420    payment-service: 15 database connection failures       -> db_connection_failure (CRITICAL)
  240–300    api-gateway: 8 logins from an address on the demo's    -> threat_indicator_seen (HIGH), with the
             threat list (demo_processing adds that list)              address's country and AS in its key
  300–900    api-gateway: a new error, 3 per minute (no threshold   -> ml_new_error_pattern (LOW), with why
             rule catches it)

Before the live traffic, the demo sends ``history`` seconds of normal traffic stamped before the
simulated start (30 minutes by default, as fast as the collector takes it), so the ML detectors have
finished their warm-up when the incidents begin.
"""
from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

from logwarden.alerting.config import AlertingConfig
from logwarden.alerting.notify.email import EmailConfig
from logwarden.common.tls import local_opener
from logwarden.processing.config import ProcessingConfig
from logwarden.processing.threatintel import ThreatFeed

log = logging.getLogger(__name__)

SERVICES = ("api-gateway", "auth-service", "payment-service", "database-service")
DEMO_DIGEST_EVERY = 60.0  # seconds: the demo's e-mail digests go out within the demo, not after 15 minutes
SUSPICIOUS_USER = "u-7331"
THREAT_ADDRESS = "185.220.101.47"  # a Tor exit relay: Germany, AS60729 "Stiftung Erneuerbare Freiheit" in the GeoIP data
DEMO_THREAT_LIST = "demo-threats.txt"  # written into the data folder by demo_processing
DEMO_HISTORY = 1800.0  # seconds of normal traffic before the start: the ML rules' warm-up (schemas/anomaly_schema.yaml)
HISTORY_CHUNK = 60.0  # simulated seconds per request while sending the history


@dataclass(frozen=True)
class Incident:
    """A scheduled departure from normal traffic, in simulated seconds from the start."""

    name: str
    start: float
    end: float


INCIDENTS = (
    Incident("suspicious_user", 30, 330),
    Incident("slow_response", 120, 121),
    Incident("error_spike", 180, 300),
    Incident("service_down", 180, 1080),
    Incident("db_connection_failure", 360, 420),
    Incident("threat_indicator_seen", 240, 300),
    Incident("ml_new_error_pattern", 300, 900),
)


class SimClock:
    """Simulated time: ``lead`` seconds behind the wall clock at start, ``speed``x until caught up."""

    def __init__(self, speed: float, lead: float, wall: float | None = None) -> None:
        self.speed = speed
        self.wall_start = time.time() if wall is None else wall
        self.sim_start = self.wall_start - lead

    def at(self, wall: float) -> float:
        """Simulated epoch seconds at wall time ``wall``."""
        return min(self.sim_start + (wall - self.wall_start) * self.speed, wall)

    def offset(self, sim: float) -> float:
        """Simulated seconds since the start."""
        return sim - self.sim_start


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TrafficModel:
    """Generates the records of the four services for a span of simulated time."""

    def __init__(self, rate: float = 5.0, incidents: bool = True, seed: int = 7) -> None:
        self.rate = rate  # records per simulated second per service
        self.incidents = {i.name: i for i in INCIDENTS} if incidents else {}
        self.random = random.Random(seed)
        self.users = [f"u-{n}" for n in range(1000, 1400)]

    def _active(self, name: str, offset: float) -> bool:
        incident = self.incidents.get(name)
        return incident is not None and incident.start <= offset < incident.end

    def records(self, clock: SimClock, begin: float, end: float) -> Iterator[dict]:
        """Records with timestamps in [begin, end) (simulated epoch seconds), in time order per service."""
        for service in SERVICES:
            yield from self._normal(service, clock, begin, end)
        yield from self._incident_records(clock, begin, end)

    def _normal(self, service: str, clock: SimClock, begin: float, end: float) -> Iterator[dict]:
        silent = service == "database-service"
        count = self._poisson(self.rate * (end - begin))
        for at in sorted(self.random.uniform(begin, end) for _ in range(count)):
            if not (silent and self._active("service_down", clock.offset(at))):
                yield getattr(self, "_" + service.replace("-", "_"))(at)

    def _poisson(self, mean: float) -> int:
        whole = int(mean)
        return whole + (1 if self.random.random() < mean - whole else 0)

    def _base(self, at: float, service: str, level: str, message: str, **fields) -> dict:
        return {"timestamp": _iso(at), "level": level, "service": service, "message": message,
                "host": f"{service}-{self.random.randint(1, 3)}", **fields}

    def _level(self) -> str:
        roll = self.random.random()
        return "ERROR" if roll < 0.005 else "WARNING" if roll < 0.04 else "DEBUG" if roll < 0.09 else "INFO"

    def _api_gateway(self, at: float) -> dict:
        duration = min(round(self.random.lognormvariate(4.4, 0.6), 1), 4000.0)
        path = self.random.choice(("/api/v1/orders", "/api/v1/users/me", "/api/v1/cart", "/api/v1/search"))
        level = self._level()
        status = 502 if level == "ERROR" else 404 if level == "WARNING" else 200
        return self._base(at, "api-gateway", level, f"GET {path} {status} in {duration:.0f}ms",
                          request_id=f"req-{self.random.getrandbits(48):012x}",
                          user_id=self.random.choice(self.users), duration_ms=duration, status=status)

    def _auth_service(self, at: float) -> dict:
        user, level = self.random.choice(self.users), self._level()
        if level == "ERROR":
            return self._base(at, "auth-service", level, f"Token signature check failed for user {user}",
                              user_id=user, error_code="TOKEN_INVALID")
        message = self.random.choice((f"User {user} logged in", f"Token refreshed for user {user}",
                                      f"Session expired for user {user}"))
        return self._base(at, "auth-service", level, message, user_id=user,
                          duration_ms=round(self.random.uniform(3, 40), 1))

    def _payment_service(self, at: float) -> dict:
        level = self._level()
        if level == "ERROR":
            return self._base(at, "payment-service", level, "Card declined by issuer", error_code="CARD_DECLINED",
                              user_id=self.random.choice(self.users))
        amount = round(self.random.uniform(5, 400), 2)
        return self._base(at, "payment-service", level, f"Payment authorized amount={amount} currency=EUR",
                          user_id=self.random.choice(self.users), duration_ms=round(self.random.uniform(40, 900), 1))

    def _database_service(self, at: float) -> dict:
        duration = round(self.random.lognormvariate(2.0, 0.8), 1)
        level = "WARNING" if duration > 60 else "INFO"
        message = f"Query executed in {duration}ms rows={self.random.randint(0, 50)}"
        return self._base(at, "database-service", level, message, duration_ms=duration)

    def _incident_records(self, clock: SimClock, begin: float, end: float) -> Iterator[dict]:
        yield from self._spread(clock, begin, end, "suspicious_user", 60, lambda at: self._base(
            at, "auth-service", "ERROR", f"Authentication failed for user {SUSPICIOUS_USER}: invalid password",
            user_id=SUSPICIOUS_USER, error_code="AUTH_FAILED"))
        yield from self._spread(clock, begin, end, "slow_response", 3, lambda at: self._base(
            at, "api-gateway", "WARNING", "GET /api/v1/reports/yearly 200 in 7400ms", duration_ms=7400.0,
            request_id=f"req-{self.random.getrandbits(48):012x}", user_id=self.random.choice(self.users)))
        yield from self._spread(clock, begin, end, "error_spike", 130, lambda at: self._base(
            at, "payment-service", "ERROR", "Payment provider returned 503 Service Unavailable",
            error_code="PROVIDER_UNAVAILABLE", user_id=self.random.choice(self.users)))
        yield from self._spread(clock, begin, end, "threat_indicator_seen", 8, lambda at: self._base(
            at, "api-gateway", "WARNING", f"POST /api/v1/login 401 from {THREAT_ADDRESS}", client_ip=THREAT_ADDRESS,
            request_id=f"req-{self.random.getrandbits(48):012x}", duration_ms=35.0))
        yield from self._spread(clock, begin, end, "db_connection_failure", 15, lambda at: self._base(
            at, "payment-service", "ERROR", "Database connection failed: connection refused by db-primary:5432",
            error_code="DB_CONNECTION_FAILED"))
        yield from self._spread(clock, begin, end, "ml_new_error_pattern", 30, lambda at: self._base(
            at, "api-gateway", "ERROR",
            f"Upstream inventory-service sent malformed JSON: unexpected token at byte {self.random.randint(10, 9000)}",
            error_code="UPSTREAM_BAD_PAYLOAD", request_id=f"req-{self.random.getrandbits(48):012x}"))

    def history(self, clock: SimClock, seconds: float, chunk: float = HISTORY_CHUNK) -> Iterator[list[dict]]:
        """Normal traffic of the ``seconds`` before the simulated start, ``chunk`` seconds per list."""
        begin = clock.sim_start - seconds
        while begin < clock.sim_start:
            end = min(begin + chunk, clock.sim_start)
            yield list(self.records(clock, begin, end))
            begin = end

    def _spread(self, clock: SimClock, begin: float, end: float, name: str, total: int, make) -> Iterator[dict]:
        """``total`` records evenly spaced over the incident, those falling in [begin, end)."""
        incident = self.incidents.get(name)
        if incident is None:
            return
        step = (incident.end - incident.start) / total
        for n in range(total):
            at = clock.sim_start + incident.start + n * step
            if begin <= at < end:
                yield make(at)


class DemoTraffic:
    """Sends the traffic model to a collector in real time: HTTP for three services, TCP for api-gateway.

    With ``ssl_context`` (the collector serves TLS), both go over TLS, verified with that context; with
    ``token`` (an ingest token), HTTP requests carry ``Authorization: Bearer <token>``."""

    def __init__(self, http_url: str, tcp_address: tuple[str, int], speed: float = 10.0, lead: float = 1200.0,
                 incidents: bool = True, rate: float = 5.0, tick: float = 0.25, token: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, history: float = DEMO_HISTORY) -> None:
        self.http_url = http_url
        self.tcp_address = tcp_address
        self.ssl_context = ssl_context
        self.headers = {"Content-Type": "application/x-ndjson"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._opener = local_opener(ssl_context)
        self.clock = SimClock(speed, lead)
        self.model = TrafficModel(rate=rate, incidents=incidents)
        self.tick = tick
        self.history = history
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Send in a background thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _send_history(self) -> socket.socket | None:
        tcp = None
        for records in self.model.history(self.clock, self.history):
            while not self._stop.is_set():
                try:
                    tcp = self._send(tcp, records)
                    break
                except (urllib.error.URLError, OSError) as exc:
                    log.warning("demo traffic: sending history failed (%s); retrying", exc)
                    if tcp is not None:
                        tcp.close()
                    tcp = None
                    self._stop.wait(1.0)
        return tcp

    def _run(self) -> None:
        tcp = self._send_history() if self.history > 0 else None
        previous = self.clock.sim_start  # the live traffic follows the history without a gap
        while not self._stop.wait(self.tick):
            now = self.clock.at(time.time())
            records = list(self.model.records(self.clock, previous, now))
            previous = now
            try:
                tcp = self._send(tcp, records)
            except (urllib.error.URLError, OSError) as exc:  # HTTPError and ssl.SSLError included
                log.warning("demo traffic: send failed (%s); retrying next tick", exc)
                if tcp is not None:
                    tcp.close()
                tcp = None
        if tcp is not None:
            tcp.close()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.tcp_address, timeout=30)
        if self.ssl_context is None:
            return sock
        return self.ssl_context.wrap_socket(sock, server_hostname=self.tcp_address[0])

    def _send(self, tcp: socket.socket | None, records: list[dict]):
        over_tcp = [r for r in records if r["service"] == "api-gateway"]
        over_http = [r for r in records if r["service"] != "api-gateway"]
        if over_http:
            body = b"\n".join(orjson.dumps(r) for r in over_http)
            request = urllib.request.Request(self.http_url, data=body, headers=self.headers, method="POST")
            with self._opener.open(request, timeout=30) as answer:  # HTTPError (an OSError) unless 2xx
                answer.read()
        if over_tcp:
            tcp = tcp or self._connect()
            tcp.sendall(b"".join(orjson.dumps(r) + b"\n" for r in over_tcp))
        self.sent += len(records)
        return tcp


def _short_digest(config: object, every: float) -> object:
    if isinstance(config, EmailConfig) and config.digest.every > every:
        return replace(config, digest=replace(config.digest, every=every))
    return config


def demo_alerting(config: AlertingConfig, every: float = DEMO_DIGEST_EVERY) -> AlertingConfig:
    """``config`` with every e-mail digest sent at least every ``every`` seconds (``--demo``), so a demo
    with SMTP configured sends its digest while it runs."""
    receivers = {name: _short_digest(section, every) for name, section in config.receivers.items()}
    named = {name: replace(receiver, channels=tuple(replace(c, config=_short_digest(c.config, every))
                                                    for c in receiver.channels))
             for name, receiver in config.named_receivers.items()}
    return replace(config, receivers=receivers, named_receivers=named)


def demo_processing(config: ProcessingConfig, folder: Path) -> ProcessingConfig:
    """``config`` with the demo's threat list (``THREAT_ADDRESS``, in ``folder``) added to its indicator
    files, so the demo's ``threat_indicator_seen`` incident has a list to match."""
    path = Path(folder) / DEMO_THREAT_LIST
    path.write_text(f"# logwarden demo: a Tor exit relay\n{THREAT_ADDRESS}\n", encoding="utf-8")
    feed = ThreatFeed(str(path), "demo-tor-exits", confidence=90)
    feeds = tuple(f for f in config.threat_intel.feeds if f.path != feed.path) + (feed,)
    return replace(config, threat_intel=replace(config.threat_intel, feeds=feeds))
