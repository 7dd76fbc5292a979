"""The ``storage:`` config section."""
from __future__ import annotations

import time

import pytest

from logwarden.common.yamlconf import ConfigError, parse_yaml
from logwarden.storage import Lake
from logwarden.storage.config import StorageConfig
from logwarden.storage.retention import RetentionPolicy, RetentionScheduler
from tests.storage.sample import rows, table

EXAMPLE = """
storage:
  retention:
    compact_after: 7d
    compression_level: 12
    raw_after: 30d
    raw_action: archive
    archive_dir: /srv/logwarden/archive
    aggregates_after: 365d
    interval: 1h
  elasticsearch:
    url: http://127.0.0.1:9200
    index_prefix: logwarden
    bulk_docs: 2000
    slow_request: 1s
"""


def test_example_section_loads():
    config = StorageConfig.from_dict(parse_yaml(EXAMPLE).data["storage"])
    assert config.retention.raw_action == "archive" and config.retention.compression_level == 12
    assert str(config.retention.archive_dir) == "/srv/logwarden/archive"
    assert config.elasticsearch.url == "http://127.0.0.1:9200" and config.elasticsearch.bulk_docs == 2000
    assert config.elasticsearch.slow_request_seconds == 1.0


def test_defaults_and_no_sink_without_url():
    assert StorageConfig.from_dict(None) == StorageConfig()
    assert StorageConfig.from_dict({"elasticsearch": {"url": None}}).elasticsearch is None
    assert StorageConfig().retention == RetentionPolicy()


@pytest.mark.parametrize("section, message", [
    ({"retension": {}}, "storage.retension: unknown key (known keys: compaction, elasticsearch, forward, retention)"),
    ([], "storage: expected a mapping, got a list"),
    ({"retention": {"raw_after": "soon"}},
     "storage.retention.raw_after: expected a duration (e.g. 500ms, 30s, 5m, 2h, 7d), got 'soon'"),
    ({"retention": {"raw_after": "36h"}}, "storage.retention.raw_after: expected a whole number of days (e.g. 7d), "
                                          "got '36h'"),
    ({"retention": {"compression_level": 30}},
     "storage.retention.compression_level: expected an integer from 1 to 22, got 30"),
    ({"compaction": {"interval": 0}},
     "storage.compaction.interval: expected a duration longer than 0s (e.g. 500ms, 30s, 5m, 2h, 7d), got 0"),
    ({"elasticsearch": {"url": "x"}}, "storage.elasticsearch.url: expected an http:// or https:// URL, got 'x'"),
    ({"elasticsearch": {"index_prefix": "Bad"}},
     "storage.elasticsearch.index_prefix: expected a lower-case name, got 'Bad'"),
    ({"elasticsearch": {"url": "http://x", "bulk": 5}}, "storage.elasticsearch.bulk: unknown key (known keys: "),
    ({"elasticsearch": {"url": "http://x", "password": 1234}},
     "storage.elasticsearch.password: expected a non-empty string, got a value of type int"),
])
def test_bad_keys_and_values_raise_config_error(section, message):
    with pytest.raises(ConfigError) as caught:
        StorageConfig.from_dict(section)
    assert str(caught.value).startswith(message)


def test_scheduler_runs_at_start_and_stops(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.commit_batch("old", table(rows(5)))  # 2026-11-20: far older than 1 day before the real clock
    scheduler = RetentionScheduler(lake.root, RetentionPolicy(compact_after_days=1, raw_after_days=2,
                                                              interval_seconds=3600)).start()
    deadline = time.monotonic() + 20
    while scheduler.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    assert scheduler.runs == 1 and not list(lake.logs.rglob("*.parquet"))
    assert {a.kind for a in scheduler.last_report.actions} == {"delete"}
