"""Splunk HEC: ``splunk-handler`` (a Python logging handler for Splunk) ships to the collector with
``Authorization: Splunk <token>``; concatenated events, the raw endpoint, HEC's answers and codes."""

from __future__ import annotations

import gzip
import logging
import time

import orjson
import pytest
import requests
from splunk_handler import SplunkHandler

from tests.collector.protocol_server import TOKENS, attributes, server, stop  # noqa: F401  (server: a fixture)

TOKEN = next(iter(TOKENS))
SPLUNK = {"Authorization": f"Splunk {TOKEN}"}
CEF = (
    "CEF:0|Trend Micro|Deep Security Manager|10.0|600|User Signed In|10|"
    "src=10.52.116.160 suser=admin target=admin msg=User signed in from 10.52.116.160"
)


def test_splunk_handler_ships_python_logging_records_as_concatenated_events(server):
    handler = SplunkHandler(
        host="127.0.0.1", port=server.port, token=TOKEN, index="main", protocol="http", verify=False,
        source="billing", sourcetype="python", hostname="web-1", flush_interval=3600, retry_count=0,
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("test.splunk")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        before = time.time()
        logger.info("Payment accepted for order 17")
        logger.warning("Payment provider slow")
        logger.error("Payment declined: card expired")
        handler.force_flush()  # one POST: the three events back to back ({"event":...}{"event":...})
    finally:
        logger.removeHandler(handler)
        handler.close()
    stop(server)
    rows = sorted(server.rows(), key=lambda row: row["timestamp"])
    assert [(row["message"], row["level"]) for row in rows] == [
        ("Payment accepted for order 17", "INFO"),
        ("Payment provider slow", "WARNING"),
        ("Payment declined: card expired", "ERROR"),
    ]
    for row in rows:
        assert row["service"] == "billing" and row["tenant"] == "acme"
        assert abs(row["timestamp"].timestamp() - before) < 60  # the event's "time"
        assert attributes(row)["splunk"] == {"host": "web-1", "source": "billing", "sourcetype": "python",
                                             "index": "main"}


def test_event_objects_and_text_events_are_mapped_and_fields_kept(server):
    body = (
        orjson.dumps({"time": 1795341600.25, "host": "fw-1", "source": "firewall", "event": CEF,
                      "fields": {"datacenter": "eu-1"}})
        + b"\n"
        + orjson.dumps({"time": "1795341601", "sourcetype": "_json", "event": {
            "level": "warn", "message": "Disk almost full", "service": "storage", "user_id": "u-7", "disk": "sda"}})
        + orjson.dumps({"event": "level=error msg=\"Cache miss storm\" service=cache duration_ms=12"})
    )
    answer = requests.post(f"{server.url}/services/collector/event", data=body, headers=SPLUNK)
    assert (answer.status_code, answer.json()) == (200, {"text": "Success", "code": 0})
    stop(server)
    rows = {row["message"]: row for row in server.rows()}
    cef = rows["User Signed In"]
    assert (cef["level"], cef["user_id"], cef["service"]) == ("CRITICAL", "admin", "Deep Security Manager")
    assert cef["timestamp"].isoformat() == "2026-11-22T10:00:00.250000+00:00"
    assert attributes(cef)["src"] == "10.52.116.160" and attributes(cef)["datacenter"] == "eu-1"
    assert attributes(cef)["splunk"] == {"host": "fw-1", "source": "firewall"}
    disk = rows["Disk almost full"]
    assert (disk["level"], disk["service"], disk["user_id"]) == ("WARNING", "storage", "u-7")
    assert disk["timestamp"].isoformat() == "2026-11-22T10:00:01+00:00"
    assert attributes(disk)["disk"] == "sda"
    cache = rows["Cache miss storm"]
    assert (cache["level"], cache["service"]) == ("ERROR", "cache")


def test_the_raw_endpoint_takes_lines_with_metadata_from_the_query(server):
    body = b"2026-11-22 10:00:00 ERROR Payment declined\nplain words here\n\n" + CEF.encode() + b"\n"
    answer = requests.post(
        f"{server.url}/services/collector/raw?sourcetype=app&source=payments&host=web-2",
        data=gzip.compress(body), headers={**SPLUNK, "Content-Encoding": "gzip"},
    )
    assert (answer.status_code, answer.json()) == (200, {"text": "Success", "code": 0})
    stop(server)
    rows = {row["message"]: row for row in server.rows()}
    assert len(rows) == 3
    declined = rows["Payment declined"]
    assert (declined["level"], declined["service"]) == ("ERROR", "payments")
    assert declined["timestamp"].isoformat() == "2026-11-22T10:00:00+00:00"
    assert attributes(rows["plain words here"])["splunk"] == {"host": "web-2", "source": "payments",
                                                              "sourcetype": "app"}
    assert rows["User Signed In"]["level"] == "CRITICAL"


def test_refused_events_get_hecs_codes_the_valid_ones_are_kept(server):
    good = orjson.dumps({"event": "fine", "time": 1795341600})
    cases = [
        (good + orjson.dumps({"time": 1795341600}) + good, 12, 1),
        (good + orjson.dumps({"event": ""}), 13, 1),
        (good + orjson.dumps({"event": "x", "time": "yesterday"}) + good, 6, 1),
        (good + good + b'{"event": "cut', 6, 2),
    ]
    for body, code, number in cases:
        answer = requests.post(f"{server.url}/services/collector", data=body, headers=SPLUNK)
        assert answer.status_code == 400
        assert (answer.json()["code"], answer.json()["invalid-event-number"]) == (code, number)
    for body, code in ((b"", 5), (b"  \n", 5)):
        answer = requests.post(f"{server.url}/services/collector/event", data=body, headers=SPLUNK)
        assert (answer.status_code, answer.json()["code"]) == (400, code)
    stop(server)
    assert len(server.rows()) == 2 + 1 + 2 + 2  # every valid event of every request
    assert {letter.protocol for letter in server.letters()} == {"splunk"}


def test_health_and_a_truncated_gzip_body(server):
    health = requests.get(f"{server.url}/services/collector/health", headers=SPLUNK)
    assert (health.status_code, health.json()) == (200, {"text": "HEC is healthy", "code": 17})
    packed = gzip.compress(b"".join(orjson.dumps({"event": f"e{n}"}) for n in range(3000)))
    answer = requests.post(f"{server.url}/services/collector/event", data=packed[:-20],
                           headers={**SPLUNK, "Content-Encoding": "gzip"})
    assert answer.status_code == 400 and answer.json()["code"] == 6
    stop(server)
    assert server.rows() == []
