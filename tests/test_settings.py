"""One configuration path: the one YAML loader (duplicate keys, alias bombs, ``${ENV}``), typed
settings per section, and ``FILE:LINE: section.key: problem`` for every refusal."""
from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from logwarden.cli import main as cli_main
from logwarden.common.yamlconf import MAX_ALIASES, ConfigError, expand_env, parse_yaml
from logwarden.monitoring import load_rules
from logwarden.monitoring.config import MonitoringConfig
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.settings import SECTIONS, Settings, load_settings

TOKEN = "team-a-token-0123456789"


def write(tmp_path: Path, text: str, name: str = "logwarden.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


def billion_laughs(levels: int = 9, fan_out: int = 10, first_line: int = 1) -> tuple[str, int]:
    """A ~7 KB "billion laughs" (``levels`` of nested aliases) and the line it is refused at: the first
    level whose expansion passes a million values (level n holds (10**(n+2) - 1) / 9 of them)."""
    lines = ["lol0: &lol0 [" + ", ".join([f'"{"lol" * 200}"'] * fan_out) + "]"]
    for level in range(1, levels + 1):
        lines.append(f"lol{level}: &lol{level} [" + ", ".join([f"*lol{level - 1}"] * fan_out) + "]")
    return "\n".join(lines) + "\n", first_line + 5


# ${ENV} -------------------------------------------------------------------------------------------------


def test_a_token_from_the_environment_as_a_collector_tokens_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_A_TOKEN", TOKEN)
    path = write(tmp_path, """
        collector:
          tokens: {"${TEAM_A_TOKEN}": team-a}
    """)
    assert load_settings(path).collector.tokens == {TOKEN: "team-a"}


def test_an_unset_variable_names_file_line_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("TEAM_A_TOKEN", raising=False)
    path = write(tmp_path, """
        collector:
          http_port: 8080
          tokens:
            "${TEAM_A_TOKEN}": team-a
    """)
    assert refusal(path) == f"{path}:4: collector.tokens: environment variable TEAM_A_TOKEN is not set"


def test_variables_expand_in_every_section_with_defaults_and_escapes(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE", str(tmp_path / "archive"))
    monkeypatch.setenv("PORT", "9090")
    monkeypatch.delenv("IDLE", raising=False)
    path = write(tmp_path, """
        collector:
          http_port: ${PORT}
          default_tenant: $${literal}
        storage:
          retention: {archive_dir: "${ARCHIVE}"}
        monitoring:
          idle_advance_after: ${IDLE:-2s}
        processing:
          masking: {mask: "[${MASK:-hidden}]"}
    """)
    settings = load_settings(path)
    assert settings.collector.http_port == 9090 and settings.collector.default_tenant == "${literal}"
    assert settings.storage.retention.archive_dir == tmp_path / "archive"
    assert settings.monitoring.idle_advance_after == 2.0 and settings.processing.masking.mask == "[hidden]"


def test_expand_env_rules():
    env = {"A": "x", "EMPTY": ""}
    assert expand_env("${A}-${B:-b}-${EMPTY:-e}-$${A}-$$-$A", env) == "x-b-e-${A}-$$-$A"
    with pytest.raises(ValueError, match=r"^environment variable B is not set$"):
        expand_env("${B}", env)
    with pytest.raises(ValueError, match=r"^malformed \$\{\.\.\.\}"):
        expand_env("${A", env)


# duplicate keys, aliases ------------------------------------------------------------------------------


def test_a_duplicate_key_is_refused_at_its_second_line(tmp_path):
    path = write(tmp_path, """
        collector:
          http_port: 8080
          tcp_port: 5170
          http_port: 8081
    """)
    assert refusal(path) == f"{path}:4: collector.http_port: duplicate key (first at line 2)"


def test_a_duplicate_section_is_refused(tmp_path):
    path = write(tmp_path, """
        storage: {}
        collector: {}
        storage: {}
    """)
    assert refusal(path) == f"{path}:3: storage: duplicate key (first at line 1)"


def test_a_billion_laughs_config_is_refused_fast(tmp_path):
    text, line = billion_laughs()
    assert 6000 < len(text) < 8000 and text.count("*") == 90
    path = write(tmp_path, text)
    started = time.perf_counter()
    message = refusal(path)
    elapsed = time.perf_counter() - started
    assert message == f"{path}:{line}: aliases expand this to more than 1,000,000 values; refused " \
                      "(a YAML 'billion laughs'?)"
    assert elapsed < 1.0


def test_a_billion_laughs_rules_file_is_refused_fast(tmp_path):
    text, line = billion_laughs(levels=10, first_line=2)
    path = write(tmp_path, "rules: []\n" + text, "rules.yaml")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    elapsed = time.perf_counter() - started
    assert str(caught.value) == f"{path}:{line}: aliases expand this to more than 1,000,000 values; refused " \
                                "(a YAML 'billion laughs'?)"
    assert elapsed < 1.0


def test_merge_key_abuse_is_refused_within_the_same_budget():
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    for level in range(1, 8):
        lines.append(f"m{level}: &m{level} {{<<: [" + ", ".join([f"*m{level - 1}"] * 10) + "]}")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        parse_yaml("\n".join(lines), "merge.yaml")
    assert str(caught.value).startswith("merge.yaml:6: aliases expand this to more than 1,000,000 values")
    assert time.perf_counter() - started < 1.0


def test_too_many_aliases_are_refused():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "many.yaml")
    assert str(caught.value) == f"many.yaml:2: more than {MAX_ALIASES} aliases (*name) in one document; refused"


def test_a_recursive_alias_and_deep_nesting_are_refused():
    with pytest.raises(ConfigError, match=r"^loop\.yaml:1: an alias refers to a node that contains it"):
        parse_yaml("a: &a [1, *a]\n", "loop.yaml")
    with pytest.raises(ConfigError, match=r"^deep\.yaml:1: nested more than 64 levels deep; refused$"):
        parse_yaml("a: " + "[" * 200 + "]" * 200 + "\n", "deep.yaml")


def test_ordinary_anchors_aliases_and_merge_keys_still_work(tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_A_TOKEN", TOKEN)
    path = write(tmp_path, """
        collector:
          tokens:
            "${TEAM_A_TOKEN}": &tenant team-a
            other-token-0123456789: *tenant
          batch: &batch {max_records: 100, max_age: 2s}
        storage:
          retention: &retention {compact_after: 2d, raw_after: 10d}
          compaction: {min_files: 4}
        processing:
          masking:
            extra_rules:
              - &rule {name: orders, pattern: 'ORD-\\d+'}
              - {<<: *rule, name: orders-2, replacement: X}
    """)
    settings = load_settings(path)
    assert settings.collector.tokens == {TOKEN: "team-a", "other-token-0123456789": "team-a"}
    assert settings.collector.batch.max_records == 100 and settings.storage.retention.raw_after_days == 10
    rules = settings.processing.masking.extra_rules
    assert [(r.name, r.pattern, r.replacement) for r in rules] == [("orders", r"ORD-\d+", "***"),
                                                                   ("orders-2", r"ORD-\d+", "X")]


def test_lines_are_recorded_for_keys_and_list_items():
    doc = parse_yaml("a:\n  b: 1\n  c:\n    - x\n    - y: 2\n", "d.yaml")
    assert doc.lines[("a", "c", 1)] == 5 and doc.lines[("a", "c", 1, "y")] == 5 and doc.lines[("a", "b")] == 2
    assert str(doc.error(["a", "c", 1, "y"], "bad")) == "d.yaml:5: a.c.1.y: bad"


# unknown sections and keys, wrong types --------------------------------------------------------------------


def test_an_unknown_section_names_the_known_ones(tmp_path):
    path = write(tmp_path, """
        collector: {}
        monitorng: {}
    """)
    assert refusal(path) == f"{path}:2: monitorng: unknown section (known sections: {', '.join(sorted(SECTIONS))})"


@pytest.mark.parametrize("text, line, message", [
    ("collector:\n  http_port: 8080\n  spool_dir: /tmp\n", 3,
     "collector.spool_dir: unknown key (known keys: batch, body_timeout, columnar, default_tenant, forward, "
     "forward_port, header_timeout, host, http_port, idle_timeout, loki, max_body_bytes, max_connections_per_client, "
     "max_deadletter_bytes, max_depth, "
     "max_fields, max_line_bytes, memory_budget_bytes, min_free_disk_bytes, spool_high_water, stream_networks, "
     "stream_tenant, syslog_port, tcp_port, timestamp_skew, tls, tokens, udp_syslog)"),
    ("storage:\n  retention:\n    raw_after: 30d\n    keep: 1\n", 4,
     "storage.retention.keep: unknown key (known keys: aggregates_after, archive_dir, compact_after, "
     "compression_level, enabled, interval, raw_action, raw_after)"),
    ("monitoring:\n  shards: 4\n", 2, "monitoring.shards: unknown key (known keys: idle_advance_after, rule_actors, rules, self_rules)"),
    ("processing:\n  masking: {email: true}\n", 2,
     "processing.masking.email: unknown key (known keys: aws_keys, bearer_tokens, credit_cards, emails, enabled, "
     "extra_rules, jwts, key_values, mask, secret_keys, url_credentials)"),
])
def test_an_unknown_key_names_file_line_key_and_the_known_ones(tmp_path, text, line, message):
    path = write(tmp_path, text)
    assert refusal(path) == f"{path}:{line}: {message}"


@pytest.mark.parametrize("text, line, message", [
    ("collector:\n  host: 0.0.0.0\n  http_port: abc\n", 3,
     "collector.http_port: expected a port number from 0 to 65535, got 'abc'"),
    ("collector: [http_port]\n", 1, "collector: expected a mapping, got a list"),
    ("collector:\n  tokens: [a, b]\n", 2, "collector.tokens: expected a mapping of bearer token to tenant, got a list"),
    ("collector:\n  batch:\n    max_age: soon\n", 3,
     "collector.batch.max_age: expected a duration (e.g. 500ms, 30s, 5m, 2h, 7d), got 'soon'"),
    ("storage:\n  compaction:\n    min_files: 1\n", 3,
     "storage.compaction.min_files: expected an integer >= 2, got 1"),
    ("storage:\n  retention: {raw_action: shred}\n", 2,
     "storage.retention.raw_action: expected one of delete, archive, got 'shred'"),
    ("storage:\n  elasticsearch:\n    url: http://127.0.0.1:9200\n    verify_certs: maybe\n", 4,
     "storage.elasticsearch.verify_certs: expected true or false, got 'maybe'"),
    ("processing:\n  masking:\n    extra_rules:\n      - {name: a, pattern: '(('}\n", 4,
     "processing.masking.extra_rules.0.pattern: invalid regular expression: missing ), unterminated subpattern "
     "at position 1"),
    ("monitoring:\n  idle_advance_after: -1\n", 2,
     "monitoring.idle_advance_after: expected a duration (e.g. 500ms, 30s, 5m, 2h, 7d), got -1"),
    ("alerting:\n  email:\n    smtp_host: h\n    smtp_port: x\n    from: a\n    to: [b]\n", 4,
     "alerting.email.smtp_port: 'x' is not of type 'integer'"),
    ("- collector\n", 1, "expected a mapping of sections (collector, processing, storage, monitoring, alerting, "
                         "auth, tls, sources), got a list"),
])
def test_a_wrong_type_names_file_line_key_and_problem(tmp_path, text, line, message):
    path = write(tmp_path, text)
    assert refusal(path) == f"{path}:{line}: {message}"


def test_errors_from_section_parsers_carry_the_key_path():
    with pytest.raises(ConfigError) as caught:
        MonitoringConfig.from_dict({"idle_advance_after": "x"})
    assert caught.value.keys == ("monitoring", "idle_advance_after") and caught.value.line is None
    assert caught.value.key == "monitoring.idle_advance_after"


# optional extras ------------------------------------------------------------------------------------------


def test_elasticsearch_without_its_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "elasticsearch", None)  # import elasticsearch -> ImportError
    path = write(tmp_path, """
        storage:
          retention: {raw_after: 30d}
          elasticsearch:
            url: http://127.0.0.1:9200
    """)
    assert refusal(path) == (f"{path}:3: storage.elasticsearch: needs the optional 'elasticsearch' package: "
                             "pip install 'logwarden[elasticsearch]'")
    no_sink = write(tmp_path, "storage:\n  elasticsearch: {url: null}\n", "no-sink.yaml")
    assert load_settings(no_sink).storage.elasticsearch is None


# typed settings, and the commands that use them --------------------------------------------------------------


def test_no_file_and_empty_sections_give_the_dataclass_defaults(tmp_path):
    defaults = load_settings(None)
    assert defaults.collector == Settings().collector and defaults.storage == Settings().storage
    assert defaults.monitoring == MonitoringConfig() and defaults.monitoring.rules == ANOMALY_SCHEMA_PATH
    empty = load_settings(write(tmp_path, "collector:\nstorage: {}\n"))
    assert empty.collector == defaults.collector and empty.storage == defaults.storage
    assert not hasattr(empty, "raw")


def test_the_monitoring_section_is_typed(tmp_path):
    rules = write(tmp_path, ANOMALY_SCHEMA_PATH.read_text(), "rules.yaml")
    settings = load_settings(write(tmp_path, f"monitoring:\n  rules: {rules}\n  idle_advance_after: 30s\n"
                                              "  rule_actors: per_rule\n"))
    assert settings.monitoring == MonitoringConfig(rules=rules, idle_advance_after=30.0, rule_actors="per_rule")
    assert load_settings(None).monitoring.rule_actors == "grouped"
    odd = write(tmp_path, "monitoring:\n  rule_actors: one\n", "odd.yaml")
    assert refusal(odd) == f"{odd}:2: monitoring.rule_actors: 'one' is not one of grouped, per_rule"
    missing = write(tmp_path, "monitoring:\n  rules: nowhere.yaml\n", "missing.yaml")
    assert refusal(missing) == f"{missing}:2: monitoring.rules: no such file: nowhere.yaml"


def test_up_flags_default_to_none_and_the_settings_fill_them_in(tmp_path):
    from logwarden.cli import build_parser
    from logwarden.commands.up import _options

    rules = write(tmp_path, ANOMALY_SCHEMA_PATH.read_text(), "rules.yaml")
    config = write(tmp_path, f"""
        collector: {{host: 127.0.0.2, http_port: 9080, tcp_port: null}}
        monitoring: {{rules: {rules}, idle_advance_after: 1m}}
    """)
    args = build_parser().parse_args(["up", "--data-dir", str(tmp_path / "data")])
    assert (args.host, args.http_port, args.tcp_port, args.syslog_port, args.rules) == (None,) * 5
    args = build_parser().parse_args(["up", "--data-dir", str(tmp_path / "data"), "--config", str(config)])
    options = _options(args)
    assert (options.host, options.http_port, options.tcp_port, options.rules_path) == ("127.0.0.2", 9080, None, rules)
    assert options.idle_advance_after == 60.0 and options.collector_syslog_port == 5514
    args = build_parser().parse_args(["up", "--config", str(config), "--http-port", "7000", "--rules",
                                      str(ANOMALY_SCHEMA_PATH)])
    options = _options(args)
    assert (options.http_port, options.rules_path) == (7000, ANOMALY_SCHEMA_PATH)


def test_a_command_prints_the_located_error_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, "storage:\n  retention:\n    raw_after: soon\n")
    assert cli_main(["retention", "--dry-run", "--config", str(path), "--data-dir", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err == (f"logwarden: {path}:3: storage.retention.raw_after: expected a duration "
                                       "(e.g. 500ms, 30s, 5m, 2h, 7d), got 'soon'\n")


def test_the_rules_file_expands_the_environment_and_refuses_duplicate_keys(tmp_path, monkeypatch):
    seed = ANOMALY_SCHEMA_PATH.read_text()
    monkeypatch.setenv("SPIKE_SEVERITY", "CRITICAL")
    path = write(tmp_path, seed.replace("severity: HIGH", "severity: ${SPIKE_SEVERITY}", 1), "rules.yaml")
    assert {r.name: r.severity for r in load_rules(path).rules}["error_spike"] == "CRITICAL"
    text = seed.replace("severity: HIGH", "severity: HIGH\n    severity: LOW", 1)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "severity: HIGH" in t) + 1
    path = write(tmp_path, text, "dup.yaml")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert str(caught.value) == f"{path}:{line}: rules.0.severity: duplicate key (first at line {line - 1})"


def test_a_duplicate_secret_key_is_named_as_written_not_as_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_A_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("TEAM_B_TOKEN", "s3cr3t-value")
    path = write(tmp_path, """
        collector:
          tokens:
            "${TEAM_A_TOKEN}": team-a
            "${TEAM_B_TOKEN}": team-b
    """)
    message = refusal(path)
    assert "s3cr3t-value" not in message
    assert message == f"{path}:4: collector.tokens.${{TEAM_B_TOKEN}}: duplicate key (first at line 3)"
