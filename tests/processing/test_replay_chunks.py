"""Replay in chunks: the same records as reading the file record by record, whatever the cut points;
native JSON lines through the columnar path, OTLP JSON files record by record, chunks parsed on Dask."""
from __future__ import annotations

import orjson
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from logwarden.collector.deadletter import DeadLetterStore
from logwarden.processing.chunks import FileKind, read_chunks, sniff_kind
from logwarden.processing.sources import file_records
from logwarden.replay import ReplayOptions, replay_files
from logwarden.replay.runners import DaskRunner

REQUIRED = ("timestamp", "level", "service", "message")


def spooled(data_dir) -> list[dict]:
    return [row for path in sorted((data_dir / "spool").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def java_log(lines: int) -> bytes:
    """Application log lines; every fifth record has a stack trace, every seventh has no time of its own."""
    out = []
    for i in range(lines):
        if i % 7 == 3:
            out.append(f"ERROR worker-{i}: lost connection to db-{i % 3}")
        else:
            out.append(f"2026-11-22 10:{i // 60 % 60:02d}:{i % 60:02d},123 INFO [main] app.Service - request {i} done")
        if i % 5 == 0:
            out += [f"java.lang.IllegalStateException: state {i}", f"\tat app.Service.handle(Service.java:{i})",
                    "\tat app.Main.main(Main.java:7)"]
    return ("\n".join(out) + "\n").encode()


def fields(row: dict) -> tuple:
    return row["timestamp"], row["level"], row["service"], row["message"]


@pytest.mark.parametrize("chunk_bytes", [97, 1024])
def test_text_in_chunks_gives_the_records_of_the_whole_file(tmp_path, chunk_bytes):
    source = tmp_path / "billing.log"
    source.write_bytes(java_log(300))
    assert sniff_kind(source, "auto", REQUIRED) is FileKind.LINES
    assert len(list(read_chunks(source, FileKind.LINES, chunk_bytes))) > 10
    whole = replay_files([str(source)], tmp_path / "whole", ReplayOptions(chunk_bytes=1 << 20))
    expected = spooled(tmp_path / "whole")
    # one chunk reads the file as the record-by-record reader does
    assert [row["message"] for row in expected] == [item.record["message"] for item in file_records(source)]

    summary = replay_files([str(source)], tmp_path / "data", ReplayOptions(chunk_bytes=chunk_bytes))
    rows = spooled(tmp_path / "data")
    assert summary.accepted == whole.accepted == len(rows) == 360  # an exception's first line is a record
    traces = [row["message"] for row in rows if "Main.java:7" in row["message"]]
    assert len(traces) == 60 and all("Service.java" in message for message in traces)  # never cut apart
    # records without a time take the time of the record before them, also across chunk boundaries
    assert [fields(row) for row in rows] == [fields(row) for row in expected]
    untimed = [row for row in rows if "lost connection" in row["message"]]
    assert untimed and all(row["timestamp"].year == 2026 for row in untimed)


def native_lines(count: int, bad: int | None = None) -> bytes:
    lines = []
    for i in range(count):
        record = {"timestamp": f"2026-11-22T10:00:{i % 60:02d}Z", "level": "warn" if i % 9 == 0 else "INFO",
                  "service": "checkout", "message": f"order {i} placed", "duration_ms": i / 10}
        if i == bad:
            record["service"] = "x" * 300
        lines.append(orjson.dumps(record))
    return b"\n".join(lines) + b"\n"


def test_native_lines_keep_every_record_and_dead_letter_the_bad_one_by_line(tmp_path):
    source = tmp_path / "checkout.ndjson"
    source.write_bytes(native_lines(2000, bad=1234))
    assert sniff_kind(source, "auto", REQUIRED) is FileKind.NATIVE
    summary = replay_files([str(source)], tmp_path / "data",
                           ReplayOptions(tenant="acme", chunk_bytes=16 << 10))
    rows = spooled(tmp_path / "data")
    assert (summary.records, summary.accepted, summary.rejected) == (2000, 1999, 1)
    assert summary.formats == {"native": 2000}
    assert len(rows) == 1999 and len({row["record_id"] for row in rows}) == 1999
    assert {row["tenant"] for row in rows} == {"acme"}
    assert {row["source"] for row in rows} == {"replay:checkout.ndjson"}
    assert sum(row["level"] == "WARNING" for row in rows) == 223  # levels normalised as the collector does
    letters = list(DeadLetterStore(tmp_path / "data" / "deadletter"))
    assert len(letters) == 1 and letters[0].index == 1235 and letters[0].field == "service"
    assert letters[0].tenant == "acme" and b"x" * 300 in letters[0].raw


def otlp_request(service: str, bodies: list[str]) -> dict:
    return {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [
            {"timeUnixNano": str(1763805600000000000 + i * 1_000_000_000), "severityNumber": 17,
             "severityText": "ERROR", "body": {"stringValue": body}} for i, body in enumerate(bodies)]}]}]}


def test_otlp_json_files_yield_every_log_record(tmp_path):
    lines = tmp_path / "export.jsonl"  # the OpenTelemetry Collector's file exporter: a request per line
    lines.write_bytes(orjson.dumps(otlp_request("cart", ["a", "b", "c"])) + b"\n"
                      + orjson.dumps(otlp_request("pay", ["d", "e"])) + b"\n")
    document = tmp_path / "export.json"  # one request, pretty-printed
    document.write_bytes(orjson.dumps(otlp_request("search", ["f", "g"]), option=orjson.OPT_INDENT_2))
    assert sniff_kind(lines, "auto", REQUIRED) is FileKind.OTLP
    assert sniff_kind(document, "auto", REQUIRED) is FileKind.OTLP
    summary = replay_files([str(lines), str(document)], tmp_path / "data")
    rows = spooled(tmp_path / "data")
    assert summary.formats == {"otlp": 7} and summary.accepted == 7
    assert sorted((row["service"], row["message"], row["level"]) for row in rows) == [
        ("cart", "a", "ERROR"), ("cart", "b", "ERROR"), ("cart", "c", "ERROR"), ("pay", "d", "ERROR"),
        ("pay", "e", "ERROR"), ("search", "f", "ERROR"), ("search", "g", "ERROR")]


@pytest.fixture(scope="module")
def dask_client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def test_chunks_parsed_on_dask_workers_give_the_same_spool(tmp_path, dask_client):
    text, native = tmp_path / "billing.log", tmp_path / "checkout.ndjson"
    text.write_bytes(java_log(500))
    native.write_bytes(native_lines(3000))
    options = ReplayOptions(chunk_bytes=4096)
    here = replay_files([str(text), str(native)], tmp_path / "here", options)
    there = replay_files([str(text), str(native)], tmp_path / "there", options, runner=DaskRunner(dask_client))
    assert there.parsed_on.startswith("Dask workers of tcp://127.0.0.1")
    assert (here.accepted, here.rejected, here.formats) == (there.accepted, there.rejected, there.formats)

    def content(rows):
        return [(fields(row), row["attributes"]) for row in rows]
    assert content(spooled(tmp_path / "here")) == content(spooled(tmp_path / "there"))


def syslog_variants() -> bytes:
    """BSD syslog lines the columnar path takes, and neighbours it must leave to the per-record parsers."""
    lines = [
        "<13>Dec  7 20:00:18 host0 payment-service[1390]: request 0 took 12 ms",
        "Dec 07 20:00:19 web01 nginx[]: GET done",
        "Dec 07 20:00:20 web01 cron: ",
        "Feb 30 10:00:00 web01 cron: not a date, taken by the per-record parser",
        "Feb 29 10:00:00 web01 cron: not a date this year or last",
        "Dec 07 20:00:21 ERROR billing: a level word where the host is",
        "Dec 07 20:00:22 2026 web01 app: a year after the time",
        "Dec 7 20:00:23 web01 app: one space and one digit",
        "Dec 07 20:00:24.250 web01 app: fractional seconds",
        "<013>Dec 07 20:00:25 web01 app: PRI with a leading zero",
        "<192>Dec 07 20:00:26 web01 app: PRI out of range",
        "<191>Dec 07 20:00:27 web01 app: PRI at the top",
        "Dec 07 20:00:28 fw01 CEF:0|Vendor|Product|1.0|100|Blocked|7|src=10.0.0.1",
        "Dec 07 20:00:29 fw01 1,2026/12/07 20:00:29,0011,TRAFFIC,end,2049,2026/12/07 20:00:29",
        "Dec 07 20:00:30 web01 app:no space after the colon",
        "Dec 07 20:00:31 web01 we ird: a space in the tag",
        "Dec 07 20:00:32 web01 app[12a]: a pid with a letter",
        "plain text without any header",
        "",
        "Dec 07 20:00:33 web01 app: ünïcödé message \u2028 with separators",
        "Dec 07 20:00:34 web01 app: trailing carriage return\r",
        "dec 07 20:00:35 web01 app: lower-case month",
    ]
    return ("\n".join(lines * 3) + "\n").encode()


@pytest.mark.parametrize("source", ["variants", "auth.log", "logfile_syslog.2", "logfile_syslog_with_mixed_times.0"])
def test_syslog_lines_as_columns_give_what_the_per_record_parser_gives(tmp_path, shared_data, source, monkeypatch):
    from logwarden.formats import syslog3164_columns
    from logwarden.processing.chunk_records import ChunkOptions, parse_chunk

    taken = []
    parse_lines = syslog3164_columns.parse_lines

    def spy(lines, reference=None):
        table, mask = parse_lines(lines, reference)
        taken.append(table.num_rows)
        return table, mask
    monkeypatch.setattr(syslog3164_columns, "parse_lines", spy)

    if source == "variants":
        data = syslog_variants()
    else:
        data = next((shared_data / "formats" / "syslog").rglob(source)).read_bytes()
    path = tmp_path / "hosts.log"
    path.write_bytes(data)
    assert sniff_kind(path, "auto", REQUIRED) is FileKind.LINES  # also when the first line opens with <PRI>
    chunks = list(read_chunks(path, FileKind.LINES, 700))
    fast = [parse_chunk(chunk, ChunkOptions()) for chunk in chunks]
    slow = [parse_chunk(chunk, ChunkOptions(columnar_text=False)) for chunk in chunks]
    assert sum(taken) > 0 and sum(part.formats["syslog-rfc3164"] for part in fast) >= sum(taken)
    for columns, one_by_one in zip(fast, slow):
        assert columns.table.to_pylist() == one_by_one.table.to_pylist()
        assert [(r.number, r.reason) for r in columns.rejected] == [(r.number, r.reason) for r in one_by_one.rejected]
        assert (columns.formats, columns.last_time_us) == (one_by_one.formats, one_by_one.last_time_us)
