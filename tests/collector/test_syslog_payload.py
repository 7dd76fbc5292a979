"""Syslog with any payload: after the RFC 3164/5424 header, the message goes through format detection (CEF,
LEEF, PAN-OS, Windows Snare, JSON, logfmt, access logs), so its severity, user, source and destination
land in the record, the header supplying host, app and time where the payload does not. Checked on real
samples relayed by a real rsyslog daemon (TCP with octet counting, and UDP), with Python's
``SysLogHandler``, and the fast header path against the formats' parsers."""

from __future__ import annotations

import base64
import logging
import logging.handlers
import shutil
import socket
import subprocess
import time
from pathlib import Path

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwarden.collector.syslog import SyslogFramer, fast_header, parsed_header, syslog_record
from logwarden.formats import parse
from tests.collector.helpers import RunningCollector, collector_config, spooled_rows
from tests.readme import rsyslog_action

CEF = (
    b"<134>Nov 22 10:00:00 dsm CEF:0|Trend Micro|Deep Security Manager|10.0|600|User Signed In|10|"
    b"src=10.52.116.160 suser=admin target=admin msg=User signed in from 10.52.116.160"
)
LEEF = (
    b"<13>Nov 22 10:00:00 qradar LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1"
    b"\tsev=5\tcat=anomaly\tusrName=joe.black\tdevTime=Nov 22 2026 10:00:00"
)


def attributes(row_or_record: dict) -> dict:
    value = row_or_record.get("attributes", row_or_record)
    return orjson.loads(value) if isinstance(value, str) else value


def test_cef_over_syslog_is_read_as_logwarden_detect_reads_it():
    record, error = syslog_record(CEF)
    detected = parse(CEF)  # what `logwarden detect` finds on the same line
    assert error is None and detected.format == "cef"
    assert (record["level"], record["user_id"], record["service"], record["message"]) == (
        detected.level, detected.user_id, detected.service, detected.message
    ) == ("CRITICAL", "admin", "Deep Security Manager", "User Signed In")
    assert record["src"] == "10.52.116.160" and record["format"] == "cef"
    assert record["syslog"]["hostname"] == "dsm" and record["syslog"]["format"] == "syslog-rfc3164"


@pytest.mark.parametrize(
    "message, expected",
    [
        (LEEF, {"level": "WARNING", "user_id": "joe.black", "service": "MSExchange", "format": "leef"}),
        (b'<14>Nov 22 10:00:00 app1 api[7]: {"level":"error","msg":"db down","user_id":"u1","request_id":"r9"}',
         {"level": "ERROR", "service": "api", "message": "db down", "user_id": "u1", "request_id": "r9",
          "format": "json"}),
        (b'<14>Nov 22 10:00:00 app1 {"level":"warn","msg":"no tag","service":"inner"}',
         {"level": "WARNING", "service": "inner", "message": "no tag"}),
        (b'<11>Nov 22 10:00:00 app1 api: @cee: {"msg":"cee cookie"}',
         {"level": "ERROR", "service": "api", "message": "cee cookie"}),  # no level: the syslog severity
        (b'<30>1 2026-11-22T10:00:00Z web app 1 - - level=warn msg="cache storm" user_id=u-4 duration_ms=12',
         {"level": "WARNING", "service": "app", "message": "cache storm", "user_id": "u-4", "duration_ms": 12.0,
          "format": "logfmt"}),
        (b'<190>Nov 22 10:00:00 web nginx: 10.0.0.1 - - [22/Nov/2026:10:00:00 +0000] "GET /api HTTP/1.1" 503 12',
         {"level": "ERROR", "service": "nginx", "status": 503, "format": "access-log"}),
        (b"<13>Nov 22 10:00:00 web02 sshd[99]: Accepted key for bob",
         {"level": "INFO", "service": "sshd", "message": "Accepted key for bob"}),
        (b"<11>1 2026-11-22T10:00:00.5Z web01 billing 42 ID7 - plain text, error words alone do not count",
         {"level": "ERROR", "service": "billing", "message": "plain text, error words alone do not count"}),
    ],
)
def test_payload_formats_fill_the_record_and_the_header_the_rest(message, expected):
    record, error = syslog_record(message)
    assert error is None
    assert {key: record.get(key) for key in expected} == expected
    assert record["syslog"]["format"] in ("syslog-rfc3164", "syslog-rfc5424")


def test_the_payloads_time_wins_and_the_headers_fills_in():
    leef, _ = syslog_record(LEEF)
    assert leef["timestamp"].startswith("2026-11-22T10:00:00")  # devTime
    plain, _ = syslog_record(b"<13>1 2026-11-22T09:00:00Z h app - - - hello")
    assert plain["timestamp"] == "2026-11-22T09:00:00+00:00"


# --- the fast header path gives what the formats' parsers give -----------------------------------------

def shared_syslog_lines(shared: Path) -> list[bytes]:
    lines: list[bytes] = []
    folder = shared / "formats" / "syslog"
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix != ".jsonl":
            lines += [line for line in path.read_bytes().splitlines() if line.strip()]
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            vector = orjson.loads(line)
            raw = vector.get("input_b64") or vector.get("raw_b64") or vector.get("b64")
            if raw:
                lines.append(base64.b64decode(raw))
    for path in sorted((shared / "formats" / "windows" / "rsyslog-mmsnareparse").glob("*.data")):
        lines += path.read_bytes().splitlines()
    lines += (shared / "formats" / "panw" / "cribl-pack-samples" / "all_samples_raw.log").read_bytes().splitlines()
    return lines


def test_fast_header_equals_the_formats_parsers_on_the_shared_samples(shared_data):
    lines = shared_syslog_lines(shared_data)
    taken = 0
    for line in lines:
        line = line.rstrip(b"\r\n\x00")
        fast = fast_header(line)
        if fast is not None:
            taken += 1
            assert fast == parsed_header(line), line
    assert taken >= 250  # the fast path is exercised (484 of these lines have a PRI, many are edge vectors)


HEADERS = st.builds(
    lambda pri, month, day, hms, host, tag, pid, msg: (
        f"<{pri}>{month} {day:>2} {hms} {host} {tag}{pid}: {msg}".encode("utf-8", "surrogatepass")
    ),
    st.integers(0, 200),
    st.sampled_from(["Jan", "Feb", "Nov", "Dec", "Foo"]),
    st.integers(0, 32),
    st.sampled_from(["10:00:00", "23:59:59", "00:00:60", "24:00:00", "1:2:3"]),
    st.sampled_from(["web01", "10.0.0.1", "2026", "host:", "---", "h\u00e9", "{x"]),
    st.sampled_from(["sshd", "app-1", "a.b", "[x]", ""]),
    st.sampled_from(["", "[42]", "[]", "[a b]"]),
    st.text(max_size=30),
)
HEADERS_5424 = st.builds(
    lambda pri, version, stamp, host, app, procid, msgid, sd, msg: (
        f"<{pri}>{version} {stamp} {host} {app} {procid} {msgid} {sd}".encode() + msg
    ),
    st.integers(0, 200),
    st.sampled_from(["1", "2"]),
    st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123456Z", "2026-02-30T10:00:00Z",
                     "2026-11-22T10:00:00+00:00", "2026-11-22T10:00:00.1234567Z", "2026-11-22T25:00:00Z", "-"]),
    st.sampled_from(["web01", "-"]),
    st.sampled_from(["billing", "-"]),
    st.sampled_from(["42", "-"]),
    st.sampled_from(["ID7", "-"]),
    st.sampled_from(["-", "- ", '[a b="c"]', "-x"]),
    st.binary(max_size=20) | st.sampled_from([b" hello", b" \xef\xbb\xbfbom", b" caf\xc3\xa9", b" \xff"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HEADERS | HEADERS_5424)
def test_fast_header_equals_the_formats_parsers_on_generated_headers(message):
    message = message.rstrip(b"\r\n\x00")
    fast = fast_header(message)
    if fast is not None:
        assert fast == parsed_header(message)


def test_nul_terminated_frames_as_pythons_syslog_handler_sends_them():
    framer = SyslogFramer(max_message=1024)
    frames = framer.feed(b"<11>app: one\x00<12>app: two\x00<13>app: thr")
    assert [frame.data for frame in frames] == [b"<11>app: one", b"<12>app: two"]
    assert [frame.data for frame in framer.feed(b"ee\n")] == [b"<13>app: three"]


# --- Python's logging.handlers.SysLogHandler, over UDP and TCP ------------------------------------------

def wait_for(collector: RunningCollector, protocol: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pattern = f'records_accepted_total{{protocol="{protocol}"}} '
    while True:
        text = requests.get(f"{collector.url}/metrics", timeout=5).text
        done = next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(
            "logwarden_collector_" + pattern)), 0.0)
        if done >= count:
            return
        assert time.monotonic() < deadline, f"{protocol}: {done} of {count} records after {timeout}s"
        time.sleep(0.1)


def test_pythons_syslog_handler_with_text_and_json_payloads(tmp_path):
    with RunningCollector(tmp_path, collector_config()) as collector:
        port = collector.server.syslog_port
        for socktype, protocol in ((socket.SOCK_DGRAM, "syslog-udp"), (socket.SOCK_STREAM, "syslog-tcp")):
            logger = logging.getLogger(f"test.syslog.{protocol}")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            handler = logging.handlers.SysLogHandler(("127.0.0.1", port), facility="local3", socktype=socktype)
            handler.setFormatter(logging.Formatter("checkout: %(message)s"))
            logger.addHandler(handler)
            json_handler = logging.handlers.SysLogHandler(("127.0.0.1", port), socktype=socktype)
            json_handler.setFormatter(logging.Formatter(
                'orders: {"level": "%(levelname)s", "msg": "%(message)s", "user_id": "u-17", "via": "' + protocol
                + '"}'))
            json_logger = logging.getLogger(f"test.syslog.json.{protocol}")
            json_logger.propagate = False
            json_logger.addHandler(json_handler)
            try:
                logger.error("card declined via %s", protocol)
                logger.warning("slow payment provider via %s", protocol)
                json_logger.critical("stock service unreachable")
            finally:
                for item, log_handler in ((logger, handler), (json_logger, json_handler)):
                    item.removeHandler(log_handler)
                    log_handler.close()
            wait_for(collector, protocol, 3)
    rows = spooled_rows(tmp_path)
    by_message = {row["message"]: row for row in rows}
    for protocol in ("syslog-udp", "syslog-tcp"):
        declined = by_message[f"card declined via {protocol}"]
        assert (declined["service"], declined["level"]) == ("checkout", "ERROR")
        assert attributes(declined)["syslog"]["facility"] == 19  # local3
        assert by_message[f"slow payment provider via {protocol}"]["level"] == "WARNING"
    stock = [row for row in rows if row["message"] == "stock service unreachable"]
    assert len(stock) == 2 and {(r["service"], r["level"], r["user_id"]) for r in stock} == {
        ("orders", "CRITICAL", "u-17")
    }
    assert {attributes(r)["via"] for r in stock} == {"syslog-udp", "syslog-tcp"}


# --- a real rsyslog daemon relaying real samples ---------------------------------------------------------

# The "wrap" ruleset forwards over TCP with the README's own omfwd action ("Send logs from…", rsyslog):
# RFC 5424, octet counting, its disk-assisted queue.
RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" PollingInterval="1")
template(name="raw" type="string" string="%rawmsg%")
ruleset(name="relay") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="octet-counted" template="raw")
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="udp" template="raw")
}}
ruleset(name="wrap") {{
  {readme_action}
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
}}
input(type="imfile" File="{relay}" Tag="relay" ruleset="relay" freshStartTail="off")
input(type="imfile" File="{wrap}" Tag="payments" Severity="error" Facility="local0" ruleset="wrap"
      freshStartTail="off")
"""


@pytest.fixture
def rsyslogd() -> str:
    path = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if path is None:
        pytest.skip("rsyslog is not installed and could not be (environment/install-test-packages.sh installs it "
                    "with apt-get when run as root): the real-daemon syslog test cannot run")
    return path


def relay_samples(shared: Path) -> list[bytes]:
    """Real syslog messages with a structured payload: PAN-OS (cribl pack), Snare over RFC 5424 and 3164
    (rsyslog's mmsnareparse test data), one CEF and one LEEF line (the formats' own test lines)."""
    formats = shared / "formats"
    lines = (formats / "panw" / "cribl-pack-samples" / "all_samples_raw.log").read_bytes().splitlines()
    lines += (formats / "windows" / "rsyslog-mmsnareparse" / "sample-events.data").read_bytes().splitlines()
    lines += (formats / "windows" / "rsyslog-mmsnareparse" / "sample-windows2022-security.data").read_bytes(
    ).splitlines()[:40]
    lines += [CEF, LEEF]
    return [line for line in lines if line.strip()]


def test_a_real_rsyslog_relays_real_samples_over_tcp_and_udp(tmp_path, shared_data, rsyslogd):
    samples = relay_samples(shared_data)
    app_lines = (shared_data / "formats" / "json" / "lnav" / "logfile_logfmt.0").read_bytes().splitlines()
    app_lines = [line for line in app_lines if line.strip()]
    data = tmp_path / "collector"
    with RunningCollector(data, collector_config()) as collector:
        port = collector.server.syslog_port
        work = tmp_path / "rsyslog"
        work.mkdir()
        (work / "relay.log").write_bytes(b"\n".join(samples) + b"\n")
        (work / "wrap.log").write_bytes(b"\n".join(app_lines) + b"\n")
        conf = work / "rsyslog.conf"
        conf.write_text(RSYSLOG_CONF.format(work=work, port=port, relay=work / "relay.log", wrap=work / "wrap.log",
                                        readme_action=rsyslog_action(port)))
        process = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            expected = len(samples) + len(app_lines)
            wait_for(collector, "syslog-tcp", expected, timeout=60)
            wait_for(collector, "syslog-udp", expected, timeout=30)
        finally:
            process.terminate()
            try:
                output = process.communicate(timeout=10)[0]
            except subprocess.TimeoutExpired:
                process.kill()
                output = process.communicate()[0]
        assert b"error" not in output.lower(), output.decode(errors="replace")
    rows = spooled_rows(data)
    assert len(rows) == 2 * (len(samples) + len(app_lines))
    for source in ("syslog-tcp", "syslog-udp"):
        relayed = [row for row in rows if row["source"].startswith(source) and attributes(row).get("syslog", {}).get(
            "app") != "payments"]
        assert len(relayed) == len(samples)
        for sample in samples:  # every sample as `logwarden detect` reads it, whatever the transport
            detected = parse(sample)
            row = next(r for r in relayed if r["message"] == detected.message and attributes(r)["format"]
                       == detected.format)
            assert (row["level"], row["user_id"], row["service"]) == (
                detected.level, detected.user_id, detected.service or row["service"]
            ), sample
    cef = [row for row in rows if attributes(row).get("format") == "cef"]
    assert len(cef) == 2 and {(r["level"], r["user_id"]) for r in cef} == {("CRITICAL", "admin")}
    snare = [row for row in rows if attributes(row).get("format") == "windows-event"]
    assert {row["level"] for row in snare} >= {"INFO", "WARNING"}  # success and failure audits
    assert any(attributes(row).get("event_id") == 4624 for row in snare)
    panos = [row for row in rows if attributes(row).get("format") == "panos"]
    assert len(panos) == 2 * 13 and "firewall" in {row["service"] for row in panos}
    wrapped = [row for row in rows if attributes(row).get("syslog", {}).get("app") == "payments"]
    assert len(wrapped) == 2 * len(app_lines)
    assert {row["service"] for row in wrapped} == {"payments"}  # rsyslog's tag: the logfmt lines name none
    assert {row["level"] for row in wrapped} == {"ERROR", "WARNING", "INFO"}  # from the logfmt payload
    assert all(attributes(row)["format"] == "logfmt" and attributes(row)["syslog"]["format"] == "syslog-rfc5424"
               for row in wrapped)
    assert any(row["message"] == "Pod deleted" for row in wrapped)
