"""The ``storage:`` section of the logwarden configuration file.

    storage:
      retention:
        compact_after: 7d        # raw partitions merged and recompressed (zstd) after this age
        compression_level: 9     # zstd level of compacted files (ingestion writes the default level)
        raw_after: 30d           # raw partitions deleted or archived after this age
        raw_action: delete       # delete | archive
        archive_dir: null        # default: <data-dir>/archive
        aggregates_after: 365d   # per-minute aggregates kept this long
        interval: 1h             # how often the scheduled job runs
      compaction:                # small files of recent partitions merged in the background
        min_files: 16            # a partition is merged once it has this many settled small files
        settle: 10m              # files unchanged this long are settled
        grace: 5m                # replaced files stay this long (hidden) for queries already reading them
        interval: 1m
        compression_level: 3
      elasticsearch:
        url: http://127.0.0.1:9200   # unset: no Elasticsearch sink
        index_prefix: logwarden
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logwarden.common.yamlconf import ConfigError
from logwarden.storage.compaction import CompactionPolicy
from logwarden.storage.elasticsearch import ElasticsearchConfig
from logwarden.storage.retention import RetentionPolicy

KEYS = ("retention", "compaction", "elasticsearch")


@dataclass(frozen=True)
class StorageConfig:
    """Retention tiers, small-file compaction and the optional Elasticsearch sink."""

    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    compaction: CompactionPolicy = field(default_factory=CompactionPolicy)
    elasticsearch: ElasticsearchConfig | None = None

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None) -> "StorageConfig":
        """The config from the ``storage`` mapping (None: defaults); raises ConfigError on bad keys or values."""
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ConfigError("storage", None, "section 'storage' must be a mapping")
        unknown = sorted(set(section) - set(KEYS))
        if unknown:
            raise ConfigError("storage", None, f"unknown key(s) {', '.join(unknown)} in section 'storage' "
                                               f"(expected: {', '.join(KEYS)})")
        es_section = section.get("elasticsearch")
        elasticsearch = None
        if es_section is not None and (not isinstance(es_section, dict) or es_section.get("url") is not None):
            elasticsearch = ElasticsearchConfig.from_dict(es_section)
        elif isinstance(es_section, dict) and set(es_section) - {"url"}:
            ElasticsearchConfig.from_dict({**es_section, "url": "http://unset"})  # still check the other keys
        return cls(retention=RetentionPolicy.from_dict(section.get("retention")),
                   compaction=CompactionPolicy.from_dict(section.get("compaction")), elasticsearch=elasticsearch)
