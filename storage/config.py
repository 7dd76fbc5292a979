"""The ``storage:`` section of the logwarden configuration file.

    storage:
      retention:
        compact_after: 7d        # raw partitions merged and recompressed (zstd) after this age
        compression_level: 9     # zstd level of compacted files (ingestion writes the default level)
        raw_after: 30d           # raw partitions deleted or archived after this age
        raw_action: archive      # delete | archive
        archive_dir: /srv/archive  # unset: <data-dir>/archive
        aggregates_after: 365d   # per-minute aggregates kept this long
        interval: 1h             # how often the scheduled job runs
      compaction:                # small files of recent partitions merged in the background
        min_files: 16            # a partition is merged once it has this many settled small files
        settle: 10m              # files unchanged this long are settled
        grace: 5m                # replaced files stay this long (hidden) for queries already reading them
        interval: 1m
        compression_level: 3
      elasticsearch:             # needs the extra: pip install 'logwarden[elasticsearch]'
        url: http://127.0.0.1:9200   # unset: no Elasticsearch sink
        index_prefix: logwarden
      forward:                   # SIEM sinks (storage/forward/): splunk_hec, syslog_cef, http (ndjson | otlp)
        - type: splunk_hec
          url: https://splunk.example.com:8088
          token: ${SPLUNK_HEC_TOKEN}
          filter: {field: level, in: [ERROR, CRITICAL]}   # a rule filter; unset: every record
          batch: {max_records: 500, max_bytes: 1MiB, timeout: 1s}
          buffer_bytes: 256MiB     # the disk buffer (<data-dir>/forward/<name>/); when full, new records are dropped
          retry: {initial_backoff: 500ms, max_backoff: 1m}

The defaults are the fields of :class:`~logwarden.storage.retention.RetentionPolicy`,
:class:`~logwarden.storage.compaction.CompactionPolicy`,
:class:`~logwarden.storage.elasticsearch.ElasticsearchConfig` and of each sink's config in
:mod:`logwarden.storage.forward` (a ``filter`` is checked by the wiring, ``logwarden.forwarding``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logwarden.common.extras import require
from logwarden.common.yamlconf import check_mapping
from logwarden.storage.compaction import CompactionPolicy
from logwarden.storage.elasticsearch import ElasticsearchConfig
from logwarden.storage.forward import SinkConfig, parse_forward
from logwarden.storage.retention import RetentionPolicy

SECTION = "storage"
KEYS = ("retention", "compaction", "elasticsearch", "forward")


@dataclass(frozen=True)
class StorageConfig:
    """Retention tiers, small-file compaction, the optional Elasticsearch sink and the SIEM sinks."""

    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    compaction: CompactionPolicy = field(default_factory=CompactionPolicy)
    elasticsearch: ElasticsearchConfig | None = None
    forward: tuple[SinkConfig, ...] = ()

    @classmethod
    def from_dict(cls, section: Any) -> "StorageConfig":
        """The config from the ``storage`` mapping (None: the defaults).

        Raises ConfigError with the key path (``storage.retention.raw_after``) on an unknown key or a bad
        value, and when ``elasticsearch`` is set without the optional ``elasticsearch`` package.
        """
        section = check_mapping(section, (SECTION,), KEYS)
        es_section = check_mapping(section.get("elasticsearch"), (SECTION, "elasticsearch"),
                                   ElasticsearchConfig.KEYS)
        elasticsearch = None
        if es_section.get("url") is not None:
            elasticsearch = ElasticsearchConfig.from_dict(es_section)
            require("elasticsearch", "elasticsearch", (SECTION, "elasticsearch"))
        elif set(es_section) - {"url"}:  # no sink, but still check the other keys
            ElasticsearchConfig.from_dict({**es_section, "url": "http://unset"})
        return cls(retention=RetentionPolicy.from_dict(section.get("retention")),
                   compaction=CompactionPolicy.from_dict(section.get("compaction")), elasticsearch=elasticsearch,
                   forward=parse_forward(section.get("forward")))
