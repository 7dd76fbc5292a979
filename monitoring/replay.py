"""Replay logs through rules offline (``logwarden rules test``): the alerts that would have fired.

The records are read from a log file of any supported format (``logwarden.formats``) or from the
lake (DuckDB), validated and normalized like the collector does (without clock-skew limits, this
being historical data), ordered by event time and cut into batches of ``batch_records`` as the live
system cuts its spool. Templates are mined when a rule refers to them. Alerts are stamped in event
time, so they are the ones the live system raises on the same data, and the output is
byte-identical across runs. Records of a log file have no tenant: they count as the default tenant's
(``common.tenants``); the lake's records keep theirs, and tenants never count together.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.records import record_schema
from logwarden.common.tenants import DEFAULT_TENANT
from logwarden.monitoring.anomaly import FIRING, Anomaly
from logwarden.monitoring.engine import DetectorSet
from logwarden.monitoring.rules import RulesFile

log = logging.getLogger(__name__)
BATCH_RECORDS = 50_000
ALERT_FIELDS = ("rule", "severity", "key", "window_start", "window_end", "value")


@dataclass
class ReplayStats:
    """What a replay read: records accepted and rejected, batches, late events."""

    records: int = 0
    rejected: int = 0
    batches: int = 0


def rules_use_templates(rules: RulesFile) -> bool:
    """Whether any rule refers to the ``template``/``template_id`` columns."""
    text = orjson.dumps([r.source for r in rules.rules]).decode()
    return '"template' in text


def _record_of(parsed: Any) -> dict[str, Any]:
    record = {k: v for k, v in parsed.attributes.items() if k not in ("timestamp", "level", "service", "message")}
    record.update(timestamp=parsed.timestamp.isoformat() if parsed.timestamp else None, level=parsed.level,
                  service=parsed.service or "unknown", message=parsed.message)
    for name in ("user_id", "request_id", "error_code", "duration_ms"):
        value = getattr(parsed, name)
        if value is not None:
            record[name] = value
    return record


def file_rows(path: str | Path, stats: ReplayStats) -> list[dict[str, Any]]:
    """The valid records of a log file as rows of the record layout."""
    from logwarden.collector.validation import RecordValidator, SkewLimits
    from logwarden.formats import parse, read_records

    validator = RecordValidator(skew=SkewLimits(max_future=1e12, max_past=1e12))  # historical data
    rows = []
    for number, raw in enumerate(read_records(path)):
        parsed = parse(raw)
        if parsed.parse_error or parsed.timestamp is None:
            stats.rejected += 1
            continue
        record = _record_of(parsed)
        if validator.check(record) is not None:
            stats.rejected += 1
            continue
        row = validator.normalize(record, f"{Path(path).name}:{raw.number}:{number}", None, "replay", 0)
        row["received_at"] = row["timestamp"]
        rows.append(row)
    stats.records += len(rows)
    return rows


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as a table of the record layout, ordered by event time (ties keep their order)."""
    table = pa.Table.from_pylist(rows, schema=record_schema())
    return table.take(pc.sort_indices(table, [("timestamp", "ascending")]))


def lake_table(data_dir: str | Path, since: datetime | None, until: datetime | None) -> pa.Table:
    """The lake's records in ``[since, until)`` ordered by event time, in the record layout plus templates."""
    from logwarden.storage.lake import Lake
    from logwarden.storage.query import connect

    lake = Lake(Path(data_dir) / "lake")
    con = connect(lake)
    try:
        clauses, params = [], []
        if since is not None:
            clauses.append("timestamp >= ?")
            params.append(since)
        if until is not None:
            clauses.append("timestamp < ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        try:
            relation = con.sql(f"SELECT * FROM logs {where} ORDER BY timestamp, record_id", params=params)
            fetch = getattr(relation, "to_arrow_table", None) or relation.arrow  # DuckDB 2 / 1.x
            table = fetch()
        except Exception as exc:  # noqa: BLE001 - an empty lake has no ``logs`` view
            if "logs" in str(exc):
                return pa.Table.from_pylist([], schema=record_schema())
            raise
    finally:
        con.close()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    schema = record_schema()
    columns = {name: table[name] if name in table.column_names else pa.nulls(table.num_rows, schema.field(name).type)
               for name in schema.names}
    out = pa.table({n: pc.cast(c, schema.field(n).type) for n, c in columns.items()}, schema=schema)
    for name in ("template_id", "template"):
        if name in table.column_names:
            out = out.append_column(name, pc.cast(table[name], pa.string()))
    return out


def with_templates(table: pa.Table, miner: Any) -> pa.Table:
    """``table`` plus ``template_id``/``template`` columns learned by ``miner`` in record order."""
    messages = table["message"].to_pylist()
    matches = [miner.add(m) for m in messages]
    table = table.append_column("template_id", pa.array([m.template_id for m in matches], pa.string()))
    return table.append_column("template", pa.array([m.template for m in matches], pa.string()))


def batches(table: pa.Table, batch_records: int = BATCH_RECORDS,
            templates: bool = False) -> Iterator[tuple[str, pa.Table]]:
    """``(batch_id, records)`` of ``table`` cut every ``batch_records`` rows; templates mined batch by batch."""
    miner = None
    if templates and "template_id" not in table.column_names:
        from logwarden.processing.templates import TemplateMiner

        miner = TemplateMiner()
    for n, start in enumerate(range(0, table.num_rows, batch_records)):
        chunk = table.slice(start, batch_records)
        if miner is not None:
            chunk = with_templates(chunk, miner)
        yield f"replay-{n:08d}", chunk


def replay(rules: RulesFile, batch_stream: Iterable[tuple[str, pa.Table]], stats: ReplayStats | None = None
           ) -> list[Anomaly]:
    """Every anomaly (firing and resolved) the enabled rules raise on the batches, in order."""
    detectors = DetectorSet(rules.by_name().values())
    anomalies: list[Anomaly] = []
    for batch_id, table in batch_stream:
        anomalies += detectors.process(batch_id, table)
        if stats is not None:
            stats.batches += 1
    return anomalies


def alert_line(anomaly: Anomaly, with_status: bool = False) -> str:
    """One JSON line: rule, severity, key, window_start, window_end, value, then ``tenant`` when it is not
    the default (records of a log file have none; the lake's carry theirs) and status if asked."""
    data = {name: getattr(anomaly, name) for name in ALERT_FIELDS}
    if anomaly.tenant != DEFAULT_TENANT:
        data["tenant"] = anomaly.tenant
    if with_status:
        data["status"] = anomaly.status
    return orjson.dumps(data).decode()


def alert_lines(anomalies: Iterable[Anomaly], include_resolved: bool = False) -> list[str]:
    """The JSON lines of the firing alerts (and resolved events if asked), in event-time order."""
    return [alert_line(a, include_resolved) for a in anomalies if include_resolved or a.status == FIRING]
