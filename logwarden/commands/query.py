"""``logwarden query``: search the lake, count, aggregate, export as CSV, JSON lines or Parquet."""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import pyarrow as pa

from logwarden.commands.common import add_data_dir
from logwarden.common.durations import parse_duration
from logwarden.common.paths import DataDir

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("timestamp", "level", "service", "message")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``query`` subcommand."""
    parser = subparsers.add_parser(
        "query", help="search the lake (filters, time range, counts, aggregates, export)",
        description="Search the records in the lake with DuckDB. Filters combine with AND; a repeated "
        "filter matches any of its values. Times are ISO 8601 (UTC unless a zone is given) or a duration "
        "back from now (15m, 2h, 7d).")
    add_data_dir(parser)
    parser.add_argument("--service", action="append", default=[], help="service name (repeatable)")
    parser.add_argument("--level", action="append", default=[], type=str.upper, help="level (repeatable)")
    parser.add_argument("--user", action="append", default=[], help="user_id (repeatable)")
    parser.add_argument("--request", action="append", default=[], help="request_id (repeatable)")
    parser.add_argument("--error-code", action="append", default=[], help="error_code (repeatable)")
    parser.add_argument("--template", action="append", default=[], help="template id (repeatable)")
    parser.add_argument("--tenant", default=None, help="only this tenant's records (default: every tenant)")
    parser.add_argument("--since", default=None, help="from this time (inclusive)")
    parser.add_argument("--until", default=None, help="until this time (exclusive)")
    parser.add_argument("--grep", default=None, help="text the message contains (case-insensitive)")
    parser.add_argument("--where", default=None, help="an SQL condition over the record columns")
    parser.add_argument("--sort", default="timestamp", help="column to sort by (default timestamp)")
    parser.add_argument("--asc", action="store_true", help="ascending order (default: newest first)")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most this many records (default 100 on the terminal, no limit with --out)")
    parser.add_argument("--count", action="store_true", help="print only how many records match")
    parser.add_argument("--by", default=None,
                        help="aggregate: counts, error rate and duration percentiles per time bucket and FIELD")
    parser.add_argument("--bucket", default=None, help="aggregate per time bucket of this length (e.g. 1m, 1h)")
    parser.add_argument("--format", choices=("table", "csv", "json", "parquet"), default=None,
                        help="output format (default: table on the terminal, from the --out suffix otherwise)")
    parser.add_argument("--out", type=Path, default=None, help="write to FILE instead of standard output")
    parser.set_defaults(func=run)


def _request(args: argparse.Namespace):
    from logwarden.storage.search import SearchRequest, parse_time

    exporting = args.out is not None or args.format in ("csv", "json", "parquet")
    limit = args.limit if args.limit is not None else (None if exporting else 100)
    return SearchRequest(
        services=tuple(args.service), levels=tuple(args.level), user_ids=tuple(args.user),
        request_ids=tuple(args.request), error_codes=tuple(args.error_code), template_ids=tuple(args.template),
        text=args.grep, since=parse_time(args.since), until=parse_time(args.until), where=args.where,
        sort=args.sort, descending=not args.asc, limit=limit, tenant=args.tenant)


def _print_table(table: pa.Table) -> None:
    if table.num_rows == 0:
        print("no records", file=sys.stderr)
        return
    width = shutil.get_terminal_size((160, 40)).columns
    if set(TABLE_COLUMNS) <= set(table.column_names):
        for row in table.select(list(TABLE_COLUMNS)).to_pylist():
            stamp = row["timestamp"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if row["timestamp"] else "-"
            line = f"{stamp}  {row['level'] or '-':<8} {row['service'] or '-':<20} {row['message'] or ''}"
            print(line[:width])
        return
    cells = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    sizes = [max([len(name)] + [len(r[i]) for r in cells]) for i, name in enumerate(table.column_names)]
    print("  ".join(name.ljust(size) for name, size in zip(table.column_names, sizes))[:width])
    for row in cells:
        print("  ".join(value.ljust(size) for value, size in zip(row, sizes))[:width])


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def run(args: argparse.Namespace) -> int:
    """Run the query; exit 2 on a bad request."""
    from logwarden.storage import Lake
    from logwarden.storage.export import format_of, write_file, write_stream
    from logwarden.storage.search import AggregateRequest, SearchError, aggregate, count, open_search

    lake = Lake(DataDir.at(args.data_dir).lake)
    fmt = args.format or (format_of(args.out) if args.out else "table")
    if fmt == "parquet" and args.out is None:
        print("logwarden query: --format parquet needs --out FILE", file=sys.stderr)
        return 2
    try:
        request = _request(args)
        if args.count:
            print(count(lake, request))
            return 0
        if args.by or args.bucket:
            bucket = int(parse_duration(args.bucket or "1h"))
            table = aggregate(lake, AggregateRequest(search=request, by=args.by, bucket_seconds=bucket))
            return _emit(table, fmt, args.out, write_file, write_stream)
        if fmt == "table":
            with open_search(lake, request) as reader:
                _print_table(reader.read_all())
            return 0
        with open_search(lake, request) as reader:
            if args.out:
                rows = write_file(reader, fmt, args.out)
                print(f"{rows} records written to {args.out}", file=sys.stderr)
            else:
                write_stream(reader, fmt, sys.stdout.buffer)
                sys.stdout.flush()
        return 0
    except (SearchError, ValueError) as exc:
        print(f"logwarden query: {exc}", file=sys.stderr)
        return 2


def _emit(table: pa.Table, fmt: str, out: Path | None, write_file, write_stream) -> int:
    if fmt == "table" and out is None:
        _print_table(table)
        return 0
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    if out is not None:
        rows = write_file(reader, "json" if fmt == "table" else fmt, out)
        print(f"{rows} rows written to {out}", file=sys.stderr)
    else:
        write_stream(reader, fmt, sys.stdout.buffer)
        sys.stdout.flush()
    return 0
