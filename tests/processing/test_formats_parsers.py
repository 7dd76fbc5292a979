"""Field mapping of each parser on real sample records and crafted ones (CEF, LEEF, ELB...)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from logwarden.formats import detect, parse, read_records

UTC = timezone.utc


def records(shared_data: Path, rel: str) -> list:
    """All records of one sample file."""
    return list(read_records(shared_data / "formats" / rel))


def test_bunyan_numeric_levels(shared_data: Path) -> None:
    recs = [parse(r) for r in records(shared_data, "json/lnav/logfile_bunyan.0")]
    first = recs[0]
    assert first.format == "json"
    assert first.timestamp == datetime(2023, 3, 24, 14, 26, 16, 243000, tzinfo=UTC)
    assert first.level == "DEBUG" and first.service == "renovate"
    assert first.message == "Found gitlabci-include package files"
    assert first.attributes["hostname"] == "renovate-gitlab-67c4bcb5-9ggbv"
    assert {r.level for r in recs} >= {"DEBUG", "INFO"}


def test_pino_epoch_millis_and_trace_id(shared_data: Path) -> None:
    rec = parse(records(shared_data, "json/lnav/logfile_pino.0")[0])
    assert rec.timestamp == datetime(2025, 4, 24, 22, 8, 37, 537000, tzinfo=UTC)
    assert rec.level == "INFO" and rec.service == "payment"
    assert rec.request_id == "c759f29f5f1e2162be56f32dd1e77fce"


def test_ecs_dotted_level_and_logger(shared_data: Path) -> None:
    recs = [parse(r) for r in records(shared_data, "json/lnav/logfile_ecs_log.json")]
    assert [r.level for r in recs][:3] == ["DEBUG", "INFO", "WARNING"]
    assert recs[0].service == "app" and recs[0].message == "this is a debug message num=39"
    assert recs[0].timestamp == datetime(2025, 1, 13, 9, 58, 13, 631000, tzinfo=UTC)


def test_journald_priority_and_microsecond_epoch(shared_data: Path) -> None:
    rec = parse(records(shared_data, "json/lnav/logfile_journald.json")[0])
    assert rec.timestamp == datetime(2018, 8, 21, 14, 4, 21, 221373, tzinfo=UTC)
    assert rec.level == "CRITICAL"  # PRIORITY 1 = alert
    assert rec.service == "python"
    assert rec.message == "GPS Reference longitude: 7.358143333"


def test_http_status_sets_level_in_json(shared_data: Path) -> None:
    recs = [parse(r) for r in records(shared_data, "json/lnav/logfile_json3.json")]
    assert [r.level for r in recs] == ["INFO", "ERROR", "WARNING"]
    assert recs[0].message == "GET /example/uri/5 200"


def test_otlp_and_rust_tracing(shared_data: Path) -> None:
    otlp = parse(records(shared_data, "json/lnav/logfile_otel_collector.jsonl")[0])
    assert otlp.service == "payment-service" and otlp.message == "Processing payment request"
    assert otlp.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    rust = parse(records(shared_data, "json/lnav/logfile_rust_tracing.0")[0])
    assert rust.message == "preparing to shave yaks" and rust.service == "fmt_json"


def test_broken_json_line_becomes_flagged_text(shared_data: Path) -> None:
    recs = records(shared_data, "json/lnav/logfile_invalid_json2.json")
    assert detect(recs[-1]).format == "json" and detect(recs[-1]).confidence < 0.5
    rec = parse(recs[-1])
    assert rec.format == "text" and rec.parse_error.startswith("invalid JSON")


def test_logfmt(shared_data: Path) -> None:
    rec = parse(records(shared_data, "json/lnav/logfile_logfmt.0")[1])
    assert rec.format == "logfmt" and rec.level == "WARNING"
    assert rec.message == "Failed to DeletePod in the provider"
    assert rec.timestamp == datetime(2021, 9, 15, 21, 17, 11, 674149, tzinfo=UTC)
    assert rec.attributes["namespace"] == "inc-1-domain-c14-ns-6"


def test_text_header_and_docker_compose_prefix(shared_data: Path) -> None:
    zap = parse(records(shared_data, "json/lnav/logfile_zap_console.0")[1])
    assert zap.format == "text" and zap.level == "ERROR"
    assert zap.timestamp == datetime(2025, 4, 24, 22, 9, 20, 856000, tzinfo=UTC)
    caddy = parse(records(shared_data, "access/lnav/logfile_caddy_log.0")[0])
    assert caddy.service == "caddy" and caddy.message.startswith("maxprocs: Leaving GOMAXPROCS=12")
    assert caddy.timestamp.year == 2025


def test_access_log_combined_and_status_levels(shared_data: Path) -> None:
    recs = [parse(r) for r in records(shared_data, "access/elastic-beats/apache/test.log")]
    first = recs[0]
    assert first.format == "access-log" and first.level == "WARNING"  # 404
    assert first.timestamp == datetime(2016, 12, 26, 14, 16, 29, tzinfo=UTC)
    assert first.attributes["client"] == "::1" and first.attributes["path"] == "/favicon.ico"
    assert recs[4].level == "INFO" and recs[4].attributes["user_agent"].startswith("Mozilla/5.0")


def test_access_log_vhost_user_and_xff(shared_data: Path) -> None:
    rec = parse(records(shared_data, "access/lnav/logfile_regexp_access_log.0")[0])
    assert rec.service == "localhost:443" and rec.user_id == "jsmith"
    nginx = parse(records(shared_data, "access/elastic-beats/nginx/test.log")[0])
    assert nginx.attributes["client"] == "10.0.0.2, 10.0.0.1, 127.0.0.1"


def test_access_log_w3c_with_fields(shared_data: Path) -> None:
    recs = records(shared_data, "access/evtx-attack-samples/Tunna_rdp_tunnel_IIS.log")
    data = [r for r in recs if not r.data.startswith(b"#")]
    rec = parse(data[0])
    assert rec.format == "access-log" and rec.timestamp == datetime(2019, 9, 3, 10, 13, 36, tzinfo=UTC)
    assert rec.attributes["cs-uri-query"] == "proxy&port=3389&ip=127.0.0.1"
    assert rec.duration_ms == 7.0 and rec.level == "INFO"


def test_access_log_with_unescaped_quotes_in_request(shared_data: Path) -> None:
    rel = "access/evtx-attack-samples/web_attack_and_isp_webshell_localhost_access_log.txt"
    recs = records(shared_data, rel)
    rec = parse(recs[878])
    assert rec.parse_error is None and rec.attributes["status"] == 404 and rec.level == "WARNING"


def test_cloudtrail_records_and_error_codes(shared_data: Path) -> None:
    recs = [parse(r) for r in records(shared_data, "cloudtrail/awsdocs/cloudtrail-log-file-examples.records.json")]
    first = recs[0]
    assert first.format == "cloudtrail" and first.service == "ec2.amazonaws.com"
    assert first.message == "StartInstances" and first.user_id == "arn:aws:iam::123456789012:user/Alice"
    assert first.timestamp == datetime(2014, 3, 6, 21, 22, 54, tzinfo=UTC)
    assert any(r.error_code and r.level == "WARNING" for r in recs)


def test_cloudtrail_zip_with_a_broken_member_is_salvaged(shared_data: Path) -> None:
    recs = records(shared_data, "cloudtrail/cloudtrail2sightings/cloudtrail.zip")
    salvaged = [r for r in recs if r.source == "aws.execution.ec2-user-data.json"]
    assert len(salvaged) == 3 and all(isinstance(r.data, dict) for r in salvaged)
    assert all(parse(r).format == "cloudtrail" for r in recs)


def test_panos_traffic_system_config(shared_data: Path) -> None:
    parsed = [parse(r) for r in records(shared_data, "panw/cribl-pack-samples/all_samples_raw.log")]
    recs = {rec.attributes["type"]: rec for rec in parsed}
    traffic = recs["TRAFFIC"]
    assert traffic.format == "panos" and traffic.service == "PA-VM"
    assert traffic.duration_ms is not None and traffic.timestamp.tzinfo is not None
    assert recs["SYSTEM"].level == "INFO" and recs["CORRELATION"].level == "WARNING"
    assert recs["CONFIG"].message == "commit by admin: Submitted"


def test_panos_cribl_envelope_is_unwrapped(shared_data: Path) -> None:
    rec = parse(records(shared_data, "panw/cribl-pack-samples/zU8yWr.json")[0])
    assert rec.format == "panos" and rec.attributes["type"] == "THREAT"
    assert rec.attributes["envelope"]["host"] == "firewall"


def test_panos_double_syslog_header(shared_data: Path) -> None:
    rec = parse(records(shared_data, "panw/splunk-apps-demo/pan_globalprotect.samplelog")[0])
    assert rec.service == "BD-Panorama" and rec.user_id is None
    assert rec.message.startswith("GlobalProtect gateway user logout succeeded")


def test_windows_evtx_xml_and_json_agree(shared_data: Path) -> None:
    evtx = parse(records(shared_data, "windows/evtx-attack-samples/LM_Remote_Service02_7045.evtx")[0])
    xml = parse(records(shared_data, "windows/xml-exports-derived/LM_Remote_Service02_7045.xml")[0])
    for rec in (evtx, xml):
        assert rec.format == "windows-event" and rec.service == "Service Control Manager"
        assert rec.timestamp == datetime(2019, 3, 3, 9, 20, 28, 621489, tzinfo=UTC)
        assert rec.attributes["event_id"] == 7045 and rec.level == "INFO"
        assert rec.attributes["event_data"]["ServiceName"] == "spoolfool"


def test_windows_failed_logon_is_a_warning(shared_data: Path) -> None:
    rel = "windows/evtx-attack-samples/CA_4624_4625_LogonType2_LogonProc_chrome.evtx"
    recs = [parse(r) for r in records(shared_data, rel)]
    failed = [r for r in recs if r.attributes["event_id"] == 4625]
    assert failed and all(r.level == "WARNING" and r.error_code for r in failed)


def test_windows_sigma_json_and_level(shared_data: Path) -> None:
    rel = ("windows/sigma-regression-data/win_wmi_activity_nteventlogfile_cleareventlog/"
           "d4f1a2b3-7c8e-4d5f-b6a9-1e0c2d3f4e5b.json")
    rec = parse(records(shared_data, rel)[0])
    assert rec.level == "ERROR" and rec.service == "Microsoft-Windows-WMI-Activity"
    assert rec.timestamp == datetime(2026, 7, 2, 2, 5, 27, 438557, tzinfo=UTC)


def test_windows_snare_over_syslog(shared_data: Path) -> None:
    rec = parse(records(shared_data, "windows/rsyslog-mmsnareparse/sample-events.data")[1])
    assert rec.format == "windows-event" and rec.level == "WARNING"  # Failure Audit
    assert rec.attributes["event_id"] == 5157
    assert rec.service == "Microsoft-Windows-Security-Auditing"
    assert rec.message.startswith("The Windows Filtering Platform has blocked a connection.")


CRAFTED = [
    (b'CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 '
     b'dst=2.1.2.2 spt=1232 suser=alice msg=Detected a threat. No action needed rt=1700000000000', "cef"),
    (b"<13>Jan 18 11:07:53 host CEF:0|Vendor|Product|1.2|42|Name with \\| pipe|3|act=blocked", "cef"),
    (b"LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=10.50.1.1\tdst=2.10.20.20\tsev=5\t"
     b"usrName=joe\tdevTime=2024-01-02T03:04:05Z", "leef"),
    (b"LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=8", "leef"),
    (b'2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 '
     b'0.001048 0.000057 503 503 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -', "access-log"),
    (b'{"@timestamp":"2024-05-01T10:00:00.000Z","winlog":{"event_id":4625,"provider_name":'
     b'"Microsoft-Windows-Security-Auditing","channel":"Security","computer_name":"dc1",'
     b'"event_data":{"TargetUserName":"bob","Status":"0xc000006d"}},"log":{"level":"information"},'
     b'"message":"An account failed to log on."}', "windows-event"),
    (b'{"EventTime":"2024-05-01 10:00:00","Hostname":"dc1","EventID":4624,"SourceName":'
     b'"Microsoft-Windows-Security-Auditing","Channel":"Security","Severity":"INFO",'
     b'"Message":"An account was successfully logged on.","TargetUserName":"bob"}', "windows-event"),
    (b'{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com",'
     b'"eventName":"GetObject","errorCode":"AccessDenied","requestID":"R1"}', "cloudtrail"),
    (b"ts=2024-01-01T00:00:00Z level=warn msg=\"disk almost full\" duration_ms=12.5 user_id=42", "logfmt"),
    (b"just some words here", "text"),
    (b"\x00\x01\x02\x03binary\xff\xfe", "text"),
]


@pytest.mark.parametrize(("data", "fmt"), CRAFTED)
def test_crafted_records_are_detected(data: bytes, fmt: str) -> None:
    assert detect(data).format == fmt
    assert parse(data).format == fmt


def test_cef_mapping() -> None:
    rec = parse(CRAFTED[0][0])
    assert rec.service == "threatmanager" and rec.message == "worm successfully stopped"
    assert rec.level == "CRITICAL" and rec.user_id == "alice"
    assert rec.attributes["msg"] == "Detected a threat. No action needed"
    assert rec.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    escaped = parse(CRAFTED[1][0])
    assert escaped.message == "Name with | pipe" and escaped.level == "INFO"


def test_leef_mapping() -> None:
    rec = parse(CRAFTED[2][0])
    assert rec.service == "MSExchange" and rec.user_id == "joe" and rec.level == "WARNING"
    assert rec.timestamp == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    custom = parse(CRAFTED[3][0])
    assert custom.attributes["dst"] == "10.0.0.5" and custom.level == "ERROR"


def test_elb_mapping() -> None:
    rec = parse(CRAFTED[4][0])
    assert rec.service == "my-loadbalancer" and rec.level == "ERROR"
    assert rec.duration_ms == pytest.approx(1.178)


def test_winlogbeat_and_nxlog_mapping() -> None:
    beat = parse(CRAFTED[5][0])
    assert beat.user_id == "bob" and beat.error_code == "0xc000006d"
    assert beat.message == "An account failed to log on."
    nx = parse(CRAFTED[6][0])
    assert nx.service == "Microsoft-Windows-Security-Auditing" and nx.user_id == "bob"
    assert nx.timestamp == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_cloudtrail_error_and_logfmt_fields() -> None:
    ct = parse(CRAFTED[7][0])
    assert ct.error_code == "AccessDenied" and ct.level == "WARNING" and ct.request_id == "R1"
    lf = parse(CRAFTED[8][0])
    assert lf.level == "WARNING" and lf.duration_ms == 12.5 and lf.user_id == "42"
