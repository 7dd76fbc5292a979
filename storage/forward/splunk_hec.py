"""Forward to Splunk's HTTP Event Collector: ``POST <url>/services/collector/event``, many events a request.

    storage:
      forward:
        - type: splunk_hec
          url: https://splunk.example.com:8088
          token: ${SPLUNK_HEC_TOKEN}      # sent as "Authorization: Splunk <token>"
          index: logs                     # optional; unset: the token's default index
          sourcetype: logwarden           # optional
          verify: true                    # check the server's certificate (ca_file: a private CA)

Each record is one event: ``time`` (epoch seconds), ``host``, ``source`` (the record's service),
``sourcetype``, ``index``, ``event`` (the record: its fields and attributes, flat), and ``fields``
(indexed fields: ``tenant``, ``level``, ``service`` and ``record_id``, unique per record, with which a
Splunk search can drop the duplicates a redelivery makes: ``| dedup record_id``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import requests

from logwarden.common.yamlconf import ConfigError, check_mapping, check_str
from logwarden.storage.forward.base import (
    COMMON_KEYS, Predicate, Refused, Retriable, Sink, SinkOptions, check_url, check_verify, flat_rows, http_outcome,
)

TYPE = "splunk_hec"
EVENT_PATH = "/services/collector/event"


@dataclass(frozen=True)
class SplunkHecConfig:
    """``storage.forward[i]`` with ``type: splunk_hec``."""

    options: SinkOptions
    token: str
    index: str | None = None
    sourcetype: str = "logwarden"
    verify: bool | str = True

    KEYS = (*COMMON_KEYS, "token", "index", "sourcetype", "verify", "ca_file")

    @classmethod
    def from_dict(cls, section: Any, where: tuple) -> "SplunkHecConfig":
        """The sink's settings; ConfigError with the key path on a bad value."""
        section = check_mapping(section, where, cls.KEYS)
        url = check_url(section.get("url"), (*where, "url"), ("http", "https"))
        if "token" not in section:
            raise ConfigError.at((*where, "token"), "missing (the HEC token)")
        kwargs: dict[str, Any] = {"token": check_str(section["token"], (*where, "token"), secret=True),
                                  "verify": check_verify(section, where)}
        for key in ("index", "sourcetype"):
            if section.get(key) is not None:
                kwargs[key] = check_str(section[key], (*where, key))
        return cls(SinkOptions.from_dict(section, where, url), **kwargs)

    def build(self, data_dir: Path, predicate: Predicate | None = None) -> "SplunkHecSink":
        """The sink (not started)."""
        return SplunkHecSink(self, data_dir, predicate)


class SplunkHecSink(Sink):
    """Posts events to a HEC endpoint."""

    def __init__(self, config: SplunkHecConfig, data_dir: Path, predicate: Predicate | None = None) -> None:
        super().__init__(config.options, data_dir, predicate)
        self.config = config
        url = config.options.url
        self.url = url if url.endswith(EVENT_PATH) else url + EVENT_PATH
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Splunk {config.token}", "Content-Type": "application/json"})

    def encode(self, table: pa.Table) -> list[bytes]:
        """One HEC event per record."""
        items = []
        for row in flat_rows(table):
            micros = row.pop("_time_us")
            event: dict[str, Any] = {"time": round(micros / 1e6, 6), "source": row.get("service"),
                                     "sourcetype": self.config.sourcetype, "event": row,
                                     "fields": {k: row[k] for k in ("tenant", "level", "service", "record_id") if row.get(k)}}
            if row.get("host"):
                event["host"] = row["host"]
            if self.config.index:
                event["index"] = self.config.index
            items.append(orjson.dumps(event))
        return items

    def send(self, items: list[bytes]) -> None:
        """One POST with the events back to back."""
        try:
            answer = self.session.post(self.url, data=b"\n".join(items), timeout=self.options.timeout_seconds,
                                       verify=self.config.verify)
        except requests.RequestException as exc:
            raise Retriable(f"{self.url}: {exc}") from None
        http_outcome(answer.status_code, answer.text)
        try:
            document = answer.json()
        except ValueError:
            return
        code = document.get("code", 0) if isinstance(document, dict) else 0
        if code not in (0, None):
            raise Refused(f"HEC code {code}: {answer.text[:300]}")

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()
