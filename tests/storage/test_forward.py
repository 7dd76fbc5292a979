"""Forwarding to a SIEM (storage/forward/), each sink against a real receiver: logwarden's own collector (HEC,
syslog over TLS with CEF, native NDJSON and OTLP JSON ``/v1/logs``, in-process on free ports) and a real
``rsyslogd`` for RFC 5424 + CEF; retries while the receiver is down, a restart with records still buffered,
the bounded buffer, the rule filter and the configuration errors."""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import orjson
import pyarrow as pa
import pytest
from prometheus_client import REGISTRY

from logwarden.common.tls import TlsConfig
from logwarden.common.yamlconf import ConfigError
from logwarden.forwarding import build_forwarder
from logwarden.formats import cef
from logwarden.processing.batch import lake_schema
from logwarden.settings import parse_settings
from logwarden.storage.forward import parse_forward
from logwarden.storage.forward.base import Sink
from logwarden.storage.forward.syslog_cef import cef_payload
from logwarden.testing.cluster import free_port
from logwarden.testing.receivers import self_signed
from tests.collector.helpers import RunningCollector, collector_config, spooled_rows

TOKEN = "forward-test-token-0123456789"
FAST = {"batch": {"max_records": 50, "timeout": "50ms"}, "retry": {"initial_backoff": "50ms", "max_backoff": "200ms"},
        "timeout": "2s"}
LEVELS = ["INFO", "ERROR", "WARNING", "CRITICAL", "DEBUG"]


def records(count: int, start: int = 0, tenant: str = "acme") -> pa.Table:
    """Committed records as processing hands them on (the lake's columns)."""
    rows = []
    for n in range(start, start + count):
        rows.append({
            "timestamp": 1795000000_000000 + n * 1_000_000, "level": LEVELS[n % len(LEVELS)],
            "service": "payments" if n % 2 else "auth", "message": f"card declined for order {n}",
            "user_id": f"u-{n}", "request_id": f"r-{n}", "error_code": "E42" if n % 3 == 0 else None,
            "duration_ms": 12.5 + n, "record_id": f"seg-{n}", "tenant": tenant, "source": "http",
            "received_at": 1795000000_000000, "attributes": orjson.dumps({"order": n, "region": "eu"}).decode(),
            "template_id": "t1", "template": "card declined for order <*>", "team": None, "tier": None,
            "environment": None, "host": "web-1",
        })
    return pa.Table.from_pylist(rows, schema=lake_schema())


def sink_for(kind: str, url: str, data_dir: Path, **extra: Any) -> Sink:
    """A started sink of ``kind`` from its ``storage.forward`` entry."""
    (config,) = parse_forward([{"type": kind, "url": url, **FAST, **extra}])
    return config.build(data_dir).start()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def attributes(row: dict) -> dict:
    return orjson.loads(row["attributes"]) if row.get("attributes") else {}


@pytest.fixture
def collector(tmp_path):
    """logwarden's collector (HTTP, syslog) with an ingest token, batches spooled within 0.2 s."""
    config = collector_config(tokens={TOKEN: "siem"})
    config.batch = replace(config.batch, max_age=0.2)
    with RunningCollector(tmp_path / "receiver", config) as running:
        yield running


def spooled(collector: RunningCollector, count: int) -> list[dict]:
    wait_until(lambda: len(spooled_rows(collector.root)) >= count, f"{count} records in the receiver's spool")
    time.sleep(0.3)  # anything beyond would show now
    return spooled_rows(collector.root)


def check_same_records(rows: list[dict], sent: pa.Table) -> None:
    by_user = {row["user_id"]: row for row in rows}
    assert len(rows) == sent.num_rows and len(by_user) == sent.num_rows
    for record in sent.to_pylist():
        row = by_user[record["user_id"]]
        assert (row["message"], row["level"], row["service"], row["request_id"]) == (
            record["message"], record["level"], record["service"], record["request_id"])
        assert row["timestamp"] == record["timestamp"]
        assert row["tenant"] == "siem"  # the receiver's tenant: the token's
        assert attributes(row)["order"] == orjson.loads(record["attributes"])["order"]


# --- Splunk HEC, HTTP NDJSON and OTLP into logwarden's own collector ------------------------------------------

def test_splunk_hec_into_logwardens_hec_endpoint(tmp_path, collector):
    sink = sink_for("splunk_hec", collector.url, tmp_path, token=TOKEN)
    try:
        sent = records(120)
        assert sink.enqueue("b1", sent.slice(0, 70)) == 70 and sink.enqueue("b2", sent.slice(70)) == 50
        wait_until(lambda: sink.counts["sent"] == 120, "120 sent")
    finally:
        sink.stop()
    rows = spooled(collector, 120)
    check_same_records(rows, sent)
    assert all(row["source"].startswith("splunk") for row in rows)
    assert all(attributes(row)["record_id"].startswith("seg-") for row in rows)  # HEC fields: dedupe key
    assert sink.counts == {"sent": 120, "retried": 0, "dropped": 0}
    assert REGISTRY.get_sample_value("logwarden_forward_records_total",
                                     {"sink": "splunk_hec", "outcome": "sent"}) >= 120
    assert not list((tmp_path / "forward" / "splunk_hec").glob("*.parquet"))  # the buffer emptied


@pytest.mark.parametrize("form", ["ndjson", "otlp"])
def test_http_ndjson_and_otlp_into_logwardens_v1_logs(tmp_path, collector, form):
    sink = sink_for("http", f"{collector.url}/v1/logs" if form == "ndjson" else collector.url, tmp_path,
                    format=form, token=TOKEN, name=f"http-{form}")
    try:
        sent = records(30)
        sink.enqueue("b1", sent)
        wait_until(lambda: sink.counts["sent"] == 30, "30 sent")
    finally:
        sink.stop()
    rows = spooled(collector, 30)
    check_same_records(rows, sent)
    assert {row["source"].split(":")[0] for row in rows} == {"http" if form == "ndjson" else "otlp"}
    if form == "otlp":
        assert attributes(rows[0])["region"] == "eu"


# --- syslog with CEF: a real rsyslog, and logwarden's own syslog listener over TLS --------------------------

RSYSLOG_CONF = """
global(workDirectory="{work}")
module(load="imtcp")
template(name="fields" type="string"
         string="%protocol-version%|%syslogfacility%|%syslogseverity%|%hostname%|%app-name%|%msgid%|%msg%\\n")
ruleset(name="siem") {{ action(type="omfile" file="{out}" template="fields") }}
input(type="imtcp" port="{port}" ruleset="siem")
"""


@pytest.fixture
def rsyslogd(tmp_path):
    path = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if path is None:
        pytest.skip("rsyslog is not installed (environment/install-test-packages.sh installs it as root)")
    work = tmp_path / "rsyslog"
    work.mkdir()
    port = free_port()
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, out=work / "out.log", port=port))
    process = subprocess.Popen([path, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield port, work / "out.log"
    process.terminate()
    try:
        output = process.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
    assert b"error" not in output.lower(), output.decode(errors="replace")


def test_syslog_cef_into_a_real_rsyslog(tmp_path, rsyslogd):
    port, out = rsyslogd
    sent = records(10)
    tricky = sent.to_pylist()[0] | {"message": "a|b=c\\d x=1 \\= done", "user_id": "bob|=x", "level": "ERROR"}
    sent = pa.concat_tables([pa.Table.from_pylist([tricky], schema=sent.schema), sent.slice(1)])
    sink = sink_for("syslog_cef", f"tcp://127.0.0.1:{port}", tmp_path, facility=20)
    try:
        sink.enqueue("b1", sent)
        wait_until(lambda: out.exists() and len(out.read_bytes().splitlines()) >= 10, "10 lines from rsyslog",
                   timeout=20)
    finally:
        sink.stop()
    lines = out.read_text().splitlines()
    assert len(lines) == 10 and sink.counts["sent"] == 10
    severities = {"DEBUG": "7", "INFO": "6", "WARNING": "4", "ERROR": "3", "CRITICAL": "2"}
    for line, record in zip(lines, sent.to_pylist()):
        version, facility, severity, host, app, msgid, message = line.split("|", 6)
        assert (version, facility, severity, host, app, msgid) == (
            "1", "20", severities[record["level"]], "web-1", record["service"], "logwarden"), line
        parsed = cef.parse(message)  # the CEF payload, as logwarden's CEF parser reads it
        assert parsed.format == "cef" and message.startswith(f"CEF:0|logwarden|{record['service']}|1|t1|")
        assert (parsed.level, parsed.user_id, parsed.request_id, parsed.service) == (
            record["level"] if record["level"] != "DEBUG" else "INFO", record["user_id"], record["request_id"],
            record["service"])
        assert parsed.attributes["msg"] == record["message"] and parsed.message == record["message"]
        assert parsed.attributes["cs1"] == "acme" and parsed.attributes["cs2"] == record["record_id"]
        assert int(parsed.attributes["rt"]) == record["timestamp"].timestamp() * 1000
        assert parsed.error_code == record["error_code"]


def test_syslog_cef_over_tls_into_logwardens_syslog_listener(tmp_path):
    cert, key = self_signed(tmp_path)
    config = collector_config(tls=TlsConfig(cert, key))
    config.batch = replace(config.batch, max_age=0.2)
    sent = records(20)
    with RunningCollector(tmp_path / "receiver", config) as running:
        sink = sink_for("syslog_cef", f"tls://127.0.0.1:{running.server.syslog_port}", tmp_path, ca_file=str(cert))
        try:
            sink.enqueue("b1", sent)
            wait_until(lambda: sink.counts["sent"] == 20, "20 sent")
            rows = spooled(running, 20)
        finally:
            sink.stop()
    by_user = {row["user_id"]: row for row in rows}
    assert len(by_user) == 20
    for record in sent.to_pylist():
        row = by_user[record["user_id"]]
        expected_level = "INFO" if record["level"] == "DEBUG" else record["level"]  # CEF has no debug band
        assert (row["level"], row["service"], row["message"], row["request_id"]) == (
            expected_level, record["service"], record["message"], record["request_id"])
        assert attributes(row)["format"] == "cef" and attributes(row)["syslog"]["format"] == "syslog-rfc5424"


def test_cef_escaping_round_trips_through_the_cef_parser():
    row = {"_time_us": 1795000000_000000, "level": "WARNING", "service": "pay|ments\\eu",
           "message": "line one | x=1 \\ y\\=2\nline two", "user_id": "a=b c", "template_id": "t|1"}
    payload = cef_payload(row, "ven|dor", "1")
    assert payload.startswith("CEF:0|ven\\|dor|pay\\|ments\\\\eu|1|t\\|1|line one \\| x=1 \\\\ y\\\\=2|5|")
    parsed = cef.parse(payload)
    assert (parsed.service, parsed.user_id, parsed.level) == ("pay|ments\\eu", "a=b c", "WARNING")
    assert parsed.attributes["msg"] == row["message"] and parsed.attributes["device_vendor"] == "ven|dor"


# --- retries, restart, the bounded buffer --------------------------------------------------------------------

def test_receiver_down_then_up_loses_nothing_across_a_restart(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/logs"
    sent = records(40)
    sink = sink_for("http", url, tmp_path, token=TOKEN)
    sink.enqueue("b1", sent.slice(0, 25))
    wait_until(lambda: sink.counts["retried"] > 0, "a retry while the receiver is down")
    sink.stop()  # logwarden stops (or crashes) with records still buffered
    restarted = sink_for("http", url, tmp_path, token=TOKEN)
    assert restarted.buffer.pending_rows() == 25
    restarted.enqueue("b2", sent.slice(25))
    restarted.enqueue("b2", sent.slice(25))  # a batch handed on again: buffered once
    config = collector_config(http_port=port, tokens={TOKEN: "siem"})
    config.batch = replace(config.batch, max_age=0.2)
    try:
        wait_until(lambda: restarted.counts["retried"] > 0, "a retry after the restart")
        with RunningCollector(tmp_path / "receiver", config) as running:
            wait_until(lambda: restarted.counts["sent"] == 40, "40 sent once the receiver is up")
            rows = spooled(running, 40)
    finally:
        restarted.stop()
    check_same_records(rows, sent)
    assert restarted.counts["dropped"] == 0 and restarted.buffer.pending_rows() == 0


def test_a_full_buffer_drops_new_batches_and_counts_them(tmp_path):
    sink = sink_for("http", f"http://127.0.0.1:{free_port()}/v1/logs", tmp_path, name="tiny", buffer_bytes="24KiB")
    try:
        kept = dropped = 0
        for n in range(40):
            if sink.enqueue(f"b{n}", records(20, start=20 * n)):
                kept += 20
            else:
                dropped += 20
        assert kept and dropped, (kept, dropped)
        assert sink.counts["dropped"] == dropped and sink.buffer.size <= 24 * 1024
        assert sink.buffer.pending_rows() == kept
        assert REGISTRY.get_sample_value("logwarden_forward_records_total",
                                         {"sink": "tiny", "outcome": "dropped"}) == dropped
        assert REGISTRY.get_sample_value("logwarden_forward_buffer_bytes", {"sink": "tiny"}) == sink.buffer.size
    finally:
        sink.stop()


# --- the rule filter, through the configuration and the wiring ----------------------------------------------

def test_only_records_matching_the_filter_are_forwarded(tmp_path, collector):
    settings = parse_settings(f"""
storage:
  forward:
    - type: http
      url: {collector.url}/v1/logs
      token: {TOKEN}
      filter: {{all: [{{field: level, in: [ERROR, CRITICAL]}}, {{field: region, equals: eu}}]}}
      batch: {{timeout: 50ms}}
""")
    forwarder = build_forwarder(settings.storage.forward, tmp_path)
    sent = records(50)
    try:
        forwarder.forward("b1", sent)
        (sink,) = forwarder.sinks
        wait_until(lambda: sink.counts["sent"] == 20, "20 matching records sent")
    finally:
        forwarder.stop(drain_timeout=2.0)
    rows = spooled(collector, 20)
    assert {row["level"] for row in rows} == {"ERROR", "CRITICAL"} and len(rows) == 20


@pytest.mark.parametrize("entry, key, problem", [
    ("- {type: kafka, url: 'http://x'}", "storage.forward.0.type", "expected one of splunk_hec, syslog_cef, http"),
    ("- {type: splunk_hec, url: 'http://x'}", "storage.forward.0.token", "missing"),
    ("- {type: syslog_cef, url: 'udp://x:514'}", "storage.forward.0.url", "tcp://"),
    ("- {type: http, url: 'http://x', filter: {field: level, regex: '('}}", "storage.forward.0.filter",
     "not a rule filter"),
    ("- {type: http, url: 'http://x', buffer_bytes: lots}", "storage.forward.0.buffer_bytes", "expected a size"),
    ("- {type: http, url: 'http://x'}\n    - {type: http, url: 'http://y'}", "storage.forward.1.type",
     "distinct name"),
])
def test_configuration_errors_name_the_file_line_and_key(entry, key, problem):
    with pytest.raises(ConfigError) as caught:
        parse_settings(f"storage:\n  forward:\n    {entry}\n", "logwarden.yaml")
    text = str(caught.value)
    assert text.startswith(f"logwarden.yaml:{3 + entry.count(chr(10))}: {key}: ") and problem in text, text
