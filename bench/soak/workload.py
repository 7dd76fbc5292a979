"""The records the soak sends: JSON app logs, RFC 5424 syslog, RFC 3164 text lines, incident records
and hostile input. Every record carries a unique id, ``<marker><n>`` (``n`` an integer):

- JSON records: the field ``soak_id`` (the lake keeps it in the ``attributes`` JSON column);
- RFC 5424 syslog: the structured-data parameter ``[soak@32473 sid="…"]`` (``attributes.syslog``);
- RFC 3164 text lines: ``id=…`` at the end of the message text;
- hostile records: the id within their first bytes (the dead-letter store keeps the raw bytes).

The marker (``LWS<run tag>x``) is unique to the run, so ``regexp_extract`` over
``attributes || message`` finds the id of any record of this soak in the lake.
"""
from __future__ import annotations

import itertools
import random
import secrets
from datetime import datetime, timezone

import orjson

from bench.soak.plan import Incident

LEVELS = ("INFO",) * 18 + ("DEBUG",) + ("WARNING",)
PATHS = ("/api/v1/orders", "/api/v1/users/me", "/api/v1/cart", "/api/v1/search", "/healthz")
JSON_SERVICES = ("soak-web", "soak-api", "soak-db")
TCP_SERVICE = "soak-tcp"
SYSLOG_SERVICE = "soak-sys"
TEXT_SERVICE = "soak-text"
HOSTILE_KINDS = ("malformed", "bad_level", "no_message", "bad_type", "future", "bad_utf8", "deep",
                 "many_fields", "not_object", "bad_timestamp")
OVERSIZED_EVERY = 997  # one hostile record in this many is a line over the collector's 1 MiB limit
SYSLOG_SEVERITY = {"INFO": 6, "DEBUG": 7, "WARNING": 4}
SYSLOG_FACILITY = 16  # local0


def iso_now(epoch: float | None = None) -> str:
    """RFC 3339 UTC with milliseconds."""
    when = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bsd_time(epoch: float) -> str:
    """The RFC 3164 timestamp (``Nov 22 03:04:05``, day padded with a space)."""
    when = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return f"{when:%b} {when.day:>2} {when:%H:%M:%S}"


class RecordFactory:
    """Makes records with ids unique to this run; thread-safe (one shared counter)."""

    def __init__(self, seed: int, run_tag: str | None = None) -> None:
        self.run_tag = run_tag or secrets.token_hex(3)
        self.marker = f"LWS{self.run_tag}x"
        self._ids = itertools.count(1)
        self._hostile = itertools.count()
        self.seed = seed

    @property
    def id_pattern(self) -> str:
        """The regular expression of an id; group 1 is the integer."""
        return f"{self.marker}([0-9]+)"

    def next_id(self) -> int:
        """A new id number."""
        return next(self._ids)

    def tag(self, n: int) -> str:
        """The id text of number ``n``."""
        return f"{self.marker}{n}"

    # valid records -------------------------------------------------------------------------
    def json_record(self, rng: random.Random | None, stamp: str, service: str, **fields) -> tuple[int, bytes]:
        """A normal JSON app log of ``service`` (INFO/DEBUG/WARNING, never an error), or with ``fields``."""
        n = self.next_id()
        if fields:
            record = {"timestamp": stamp, "service": service, "soak_id": self.tag(n), **fields}
        else:
            path = rng.choice(PATHS)
            duration = round(rng.uniform(2.0, 900.0), 1)
            record = {"timestamp": stamp, "level": rng.choice(LEVELS), "service": service,
                      "message": f"GET {path} 200 in {duration:.0f}ms", "soak_id": self.tag(n),
                      "request_id": f"req-{rng.getrandbits(40):010x}", "user_id": f"u-{rng.randint(1000, 1399)}",
                      "duration_ms": duration, "host": f"{service}-{rng.randint(1, 3)}"}
        return n, orjson.dumps(record)

    def syslog_5424(self, rng: random.Random, stamp: str) -> tuple[int, bytes]:
        """An RFC 5424 message, octet-counted (RFC 6587) for TCP."""
        n = self.next_id()
        level = rng.choice(LEVELS)
        pri = SYSLOG_FACILITY * 8 + SYSLOG_SEVERITY[level]
        message = (f"<{pri}>1 {stamp} host-{rng.randint(1, 4)} {SYSLOG_SERVICE} {rng.randint(100, 999)} AUTH "
                   f'[soak@32473 sid="{self.tag(n)}"] session opened for user u-{rng.randint(1000, 1399)}')
        data = message.encode()
        return n, f"{len(data)} ".encode() + data

    def text_3164(self, rng: random.Random, epoch: float) -> tuple[int, bytes]:
        """An RFC 3164 (BSD) text line, newline-terminated."""
        n = self.next_id()
        level = rng.choice(LEVELS)
        pri = SYSLOG_FACILITY * 8 + SYSLOG_SEVERITY[level]
        line = (f"<{pri}>{bsd_time(epoch)} web-{rng.randint(1, 4)} {TEXT_SERVICE}[{rng.randint(100, 999)}]: "
                f"served {rng.choice(PATHS)} in {rng.randint(1, 400)} ms id={self.tag(n)}\n")
        return n, line.encode()

    def incident_record(self, incident: Incident, stamp: str) -> tuple[int, bytes]:
        """One record of ``incident``: it matches the incident's rule and no other."""
        rule = incident.rule
        if rule == "slow_response":
            return self.json_record(None, stamp, incident.service, level="WARNING",
                                    message="GET /api/v1/reports/yearly 200 in 7400ms", duration_ms=7400.0)
        if rule == "db_connection_failure":
            return self.json_record(None, stamp, incident.service, level="ERROR",
                                    message="Database connection failed: connection refused by db-primary:5432",
                                    error_code="DB_CONNECTION_FAILED")
        if rule == "error_spike":
            return self.json_record(None, stamp, incident.service, level="ERROR",
                                    message="Payment provider returned 503 Service Unavailable",
                                    error_code="PROVIDER_UNAVAILABLE")
        if rule == "suspicious_user":
            return self.json_record(None, stamp, incident.service, level="ERROR",
                                    message=f"Authentication failed for user {incident.key}: invalid password",
                                    user_id=incident.key, error_code="AUTH_FAILED")
        raise ValueError(f"no incident records for rule {rule!r}")

    # hostile records -----------------------------------------------------------------------
    def hostile(self, stamp: str) -> tuple[int, str, bytes]:
        """(id, kind, raw NDJSON line) of a record the collector must refuse and dead-letter."""
        n = self.next_id()
        count = next(self._hostile)
        tag = self.tag(n)
        if count % OVERSIZED_EVERY == OVERSIZED_EVERY - 1:
            filler = "x" * (1024 * 1024 + 16)
            return n, "oversized", f'{{"soak_id":"{tag}","timestamp":"{stamp}","message":"{filler}"}}'.encode()
        kind = HOSTILE_KINDS[count % len(HOSTILE_KINDS)]
        base = {"soak_id": tag, "timestamp": stamp, "level": "INFO", "service": "soak-hostile", "message": "m"}
        if kind == "malformed":
            raw = f'{{"soak_id":"{tag}","timestamp":"{stamp}","level":"INFO","message":"cut'.encode()
        elif kind == "bad_level":
            raw = orjson.dumps({**base, "level": "LOUD"})
        elif kind == "no_message":
            raw = orjson.dumps({k: v for k, v in base.items() if k != "message"})
        elif kind == "bad_type":
            raw = orjson.dumps({**base, "duration_ms": "slow"})
        elif kind == "future":
            raw = orjson.dumps({**base, "timestamp": "2099-01-01T00:00:00Z"})
        elif kind == "bad_utf8":
            raw = f'{{"soak_id":"{tag}","timestamp":"{stamp}","level":"INFO","service":"s","message":"'.encode() \
                + b"\xff\xfe\xfa broken" + b'"}'
        elif kind == "deep":
            raw = orjson.dumps(base)[:-1] + b',"deep":' + b"[" * 40 + b"1" + b"]" * 40 + b"}"
        elif kind == "many_fields":
            raw = orjson.dumps({**base, **{f"f{i}": i for i in range(1100)}})
        elif kind == "not_object":
            raw = orjson.dumps(f"{tag} is a string, not a record")
        else:  # bad_timestamp
            raw = orjson.dumps({**base, "timestamp": "yesterday at noon"})
        return n, kind, raw

    def hostile_syslog(self) -> tuple[int, str, bytes]:
        """(id, kind, octet-counted frame) of a syslog message with an impossible priority."""
        n = self.next_id()
        data = f"<999>1 - - {SYSLOG_SERVICE} - - - bad priority {self.tag(n)}".encode()
        return n, "syslog_bad_pri", f"{len(data)} ".encode() + data
