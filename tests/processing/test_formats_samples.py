"""Detection accuracy and field mapping on the real samples under shared/data/formats.

``EXPECTED`` is the format of every sample file, decided from its folder and SOURCES.tsv;
``MIXED`` lists the files that legitimately mix formats, with per-record rules (first matching
prefix regex wins). ``EXCLUDED`` files are not logs (documentation, an index) or are syslog
test vectors, which ``test_formats_syslog.py`` checks for valid/invalid agreement instead.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from logwarden.formats import RawRecord, detect, parse, read_records

ACCESS, JSON, LOGFMT, TEXT = "access-log", "json", "logfmt", "text"
S3164, S5424, WIN, CT, PAN = "syslog-rfc3164", "syslog-rfc5424", "windows-event", "cloudtrail", "panos"

EXPECTED: dict[str, str] = {
    "access/elastic-beats/apache/ssl-request.log": ACCESS,
    "access/elastic-beats/apache/test.log": ACCESS,
    "access/elastic-beats/nginx/test.log": ACCESS,
    "access/elastic-examples/apache_logs": ACCESS,
    "access/evtx-attack-samples/Tunna_rdp_tunnel_IIS.log": ACCESS,
    "access/evtx-attack-samples/web_attack_and_isp_webshell_localhost_access_log.txt": ACCESS,
    "access/lnav/logfile_access_log.0": ACCESS,
    "access/lnav/logfile_access_log.1": ACCESS,
    "access/lnav/logfile_bad_access_log.0": ACCESS,
    "access/lnav/logfile_regexp_access_log.0": ACCESS,
    "access/lnav/logfile_shop_access_log.0": ACCESS,
    "access/lnav/logfile_w3c.0": ACCESS,
    "access/lnav/logfile_w3c.1": ACCESS,
    "access/lnav/logfile_w3c.2": ACCESS,
    "access/lnav/logfile_w3c.3": ACCESS,
    "access/lnav/logfile_w3c.4": ACCESS,
    "access/lnav/logfile_w3c.5": ACCESS,
    "access/lnav/logfile_w3c.6": ACCESS,
    # docker-compose output ("caddy  | {json}") is text with a service prefix
    "access/lnav/logfile_caddy_log.0": TEXT,
    # HAProxy logs arrive over BSD syslog
    "access/lnav/logfile_haproxy.0": S3164,
    "cloudtrail/awsdocs/cloudtrail-log-file-examples.records.json": CT,
    "cloudtrail/cloudtrail2sightings/cloudtrail.zip": CT,
    "json/lnav/logfile_bunyan.0": JSON,
    "json/lnav/logfile_cloudflare.json": JSON,
    "json/lnav/logfile_ecs_log.json": JSON,
    "json/lnav/logfile_invalid_json.json": JSON,
    "json/lnav/logfile_invalid_json2.json": JSON,
    "json/lnav/logfile_journald.json": JSON,
    "json/lnav/logfile_json.json": JSON,
    "json/lnav/logfile_json2.json": JSON,
    "json/lnav/logfile_json3.json": JSON,
    "json/lnav/logfile_json_invalid.json": JSON,
    "json/lnav/logfile_json_subsec.json": JSON,
    "json/lnav/logfile_jsonid.json": JSON,
    "json/lnav/logfile_nested_json.json": JSON,
    "json/lnav/logfile_otel_collector.jsonl": JSON,
    "json/lnav/logfile_pino.0": JSON,
    "json/lnav/logfile_rust_tracing.0": JSON,
    "json/lnav/logfile_logfmt.0": LOGFMT,
    # zap's console encoder and docker-compose output are text with a header
    "json/lnav/logfile_zap_console.0": TEXT,
    "json/lnav/logfile_docker_compose.0": TEXT,
    "panw/cribl-pack-samples/61hEQ9.json": PAN,
    "panw/cribl-pack-samples/6rAgpv.json": PAN,
    "panw/cribl-pack-samples/BvsW2V.json": PAN,
    "panw/cribl-pack-samples/Gq5Bjl.json": PAN,
    "panw/cribl-pack-samples/QQERZg.json": PAN,
    "panw/cribl-pack-samples/dkSNsf.json": PAN,
    "panw/cribl-pack-samples/zU8yWr.json": PAN,
    "panw/cribl-pack-samples/all_samples_raw.log": PAN,
    "panw/splunk-apps-demo/pan_correlation.samplelog": PAN,
    "panw/splunk-apps-demo/pan_globalprotect.samplelog": PAN,
    "panw/splunk-apps-demo/pan_incident_data_config.samplelog": PAN,
    "syslog/elastic-beats/darwin-syslog-sample.log": S3164,
    "syslog/elastic-beats/suse-syslog.log": S3164,
    "syslog/elastic-beats/tz-offset.log": S3164,
    "syslog/elastic-examples/auth.log": S3164,
    "syslog/lnav/logfile_bad_syslog.0": S3164,
    "syslog/lnav/logfile_syslog.0": S3164,
    "syslog/lnav/logfile_syslog.1": S3164,
    "syslog/lnav/logfile_syslog.2": S3164,
    "syslog/lnav/logfile_syslog.3": S3164,
    "syslog/lnav/logfile_syslog_fr.0": S3164,
    "syslog/lnav/logfile_syslog_with_access_log.0": S3164,
    "syslog/lnav/logfile_syslog_with_mixed_times.0": S3164,
    # JSON records whose message field carries a syslog line
    "syslog/lnav/logfile_muxed_syslog.0": JSON,
    "syslog/rsyslog-fuzz-corpus/rfc3164-basic": S3164,
    "syslog/rsyslog-fuzz-corpus/rfc3164-no-pri": S3164,
    "syslog/rsyslog-fuzz-corpus/rfc3164-rfc3339": S3164,
    "syslog/rsyslog-fuzz-corpus/rfc3164-short": S3164,
    "syslog/rsyslog-fuzz-corpus/rfc5424-basic": S5424,
    "syslog/rsyslog-fuzz-corpus/rfc5424-escaped-sd": S5424,
    "syslog/rsyslog-fuzz-corpus/rfc5424-nil": S5424,
    "windows/rsyslog-mmsnareparse/sample-events.data": WIN,
    "windows/rsyslog-mmsnareparse/sample-windows2022-security.data": WIN,
    **{f"windows/evtx-attack-samples/{name}.evtx": WIN for name in (
        "CA_4624_4625_LogonType2_LogonProc_chrome", "DE_RDP_Tunnel_5156", "LM_Remote_Service02_7045",
        "LM_ScheduledTask_ATSVC_target_host", "LM_winrm_target_wrmlogs_91_wsmanShellStarted_poorLog",
        "PanacheSysmon_vs_AtomicRedTeam01", "Powershell_4104_MiniDumpWriteDump_Lsass",
        "dc_applog_ntdsutil_dfir_325_326_327", "etw_rpc_zerologon", "exec_emotet_ps_800_new-object",
        "rundll32_cmd_schtask", "temp_scheduled_task_4698_4699")},
    **{f"windows/xml-exports-derived/{name}.xml": WIN for name in (
        "CA_4624_4625_LogonType2_LogonProc_chrome", "DE_RDP_Tunnel_5156", "LM_Remote_Service02_7045",
        "Powershell_4104_MiniDumpWriteDump_Lsass", "rundll32_cmd_schtask",
        "temp_scheduled_task_4698_4699")},
    **{f"windows/sigma-regression-data/{name}.{ext}": WIN for ext in ("evtx", "json") for name in (
        "proc_creation_win_exploit_cve_2025_55182_susp_nodejs_server_child_process/"
        "271de298-cc0e-4842-acd8-079a0a99ea65",
        "registry_set_add_load_service_in_safe_mode/1547e27c-3974-43e2-a7d7-7f484fb928ec",
        "win_defender_exploit_redsun_tiering_engine_detected_as_eicar/a7c3e5f2-8b1d-4e9a-b6c2-3d7f5e8a9b4c",
        "win_security_explicit_credential_local_logon/e3c6d245-7b8f-4e2a-c17f-a9d0e5b38f62",
        "win_taskscheduler_susp_schtasks_delete_or_disable/9e3cb244-bdb8-4632-8c90-6079c8f4f16d",
        "win_wmi_activity_nteventlogfile_cleareventlog/d4f1a2b3-7c8e-4d5f-b6a9-1e0c2d3f4e5b")},
}

#: Files that legitimately mix formats: (regex on the record's start, expected format), in order.
MIXED: dict[str, list[tuple[str, str]]] = {
    "json/lnav/logfile_mixed_json2.json": [(r"\{", JSON), (r"timestamp=", LOGFMT), (r"", TEXT)],
    "syslog/lnav/logfile_syslog_with_header.0": [(r"Header\d:", TEXT), (r"", S3164)],
}

EXCLUDED: dict[str, str] = {
    "cloudtrail/awsdocs/cloudtrail-log-file-examples.md": "documentation page (its JSON is in the .records.json)",
    "panw/cribl-pack-samples/samples.yml": "index of the Cribl samples, not a log",
    "syslog/go-syslog_rfc5424_machine_test_vectors.jsonl": "test vectors (test_formats_syslog.py)",
    "syslog/go-syslog_rfc3164_machine_test_vectors.jsonl": "test vectors (test_formats_syslog.py)",
    "syslog/syslog-rfc5424-parser_test_message_parser_vectors.jsonl": "test vectors (test_formats_syslog.py)",
}


def expected_format(rel: str, record: RawRecord) -> str:
    """The expected format of one record of the sample file ``rel``."""
    if rel not in MIXED:
        return EXPECTED[rel]
    head = record.data.decode("utf-8", "replace") if isinstance(record.data, bytes) else "{"
    return next(fmt for pattern, fmt in MIXED[rel] if re.match(pattern, head))


def sample_records(formats_dir: Path) -> list[tuple[str, RawRecord, str]]:
    """Every record of every sample file with its expected format."""
    out = []
    for rel in sorted({*EXPECTED, *MIXED}):
        for record in read_records(formats_dir / rel):
            out.append((rel, record, expected_format(rel, record)))
    return out


@pytest.fixture(scope="module")
def formats_dir(shared_data: Path) -> Path:
    """shared/data/formats."""
    return shared_data / "formats"


@pytest.fixture(scope="module")
def samples(formats_dir: Path) -> list[tuple[str, RawRecord, str]]:
    """All sample records (read once per module)."""
    return sample_records(formats_dir)


def test_every_sample_file_has_an_expected_format(formats_dir: Path) -> None:
    files = {p.relative_to(formats_dir).as_posix() for p in formats_dir.rglob("*") if p.is_file()}
    files.discard("SOURCES.tsv")
    assert files == set(EXPECTED) | set(MIXED) | set(EXCLUDED)


def test_detection_accuracy_at_least_98_percent(samples: list) -> None:
    wrong = Counter()
    for rel, record, expected in samples:
        if detect(record).format != expected:
            wrong[rel] += 1
    accuracy = 1 - sum(wrong.values()) / len(samples)
    assert len(samples) > 10_000
    assert accuracy >= 0.98, wrong.most_common(10)


@pytest.mark.parametrize("fmt", [ACCESS, JSON, LOGFMT, TEXT, S3164, S5424, WIN, CT, PAN])
def test_detection_accuracy_per_format(samples: list, fmt: str) -> None:
    records = [(rel, r) for rel, r, expected in samples if expected == fmt]
    misses = [(rel, r.number) for rel, r in records if detect(r).format != fmt]
    assert records
    assert len(misses) / len(records) <= 0.05, misses[:10]


def test_confidence_is_a_probability(samples: list) -> None:
    for _, record, _ in samples[::50]:
        assert 0.0 <= detect(record).confidence <= 1.0


def test_parsed_samples_are_normalized(samples: list) -> None:
    """Every parsed sample has a UTC timestamp or None, a known level and a JSON-able dict."""
    import orjson

    for _, record, expected in samples[::7]:
        rec = parse(record)
        assert rec.level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert rec.timestamp is None or rec.timestamp.utcoffset().total_seconds() == 0
        assert rec.duration_ms is None or rec.duration_ms >= 0
        orjson.dumps(rec.to_dict())
        assert rec.format in (expected, "text")


def test_loghub_application_logs_are_text_not_false_positives(shared_data: Path) -> None:
    """16,000 held-out Loghub lines (Hadoop, HDFS, Spark, BGL...) are free text: no structured
    format may claim them, and the text header pattern still finds their level."""
    paths = sorted((shared_data / "loghub").glob("*/*_2k.log"))
    assert len(paths) == 8
    for path in paths:
        recs = list(read_records(path))
        claimed = Counter(detect(r).format for r in recs)
        assert claimed == Counter({TEXT: len(recs)}), (path.name, claimed)
    hadoop = parse(next(iter(read_records(shared_data / "loghub/Hadoop/Hadoop_2k.log"))))
    assert hadoop.level == "INFO" and hadoop.timestamp is not None
