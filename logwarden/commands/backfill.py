"""``logwarden backfill``: reprocess the lake's records of a time range through processing."""
from __future__ import annotations

import argparse
import json
import time

from logwarden.commands.common import add_config, add_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``backfill`` subcommand."""
    parser = subparsers.add_parser("backfill", help="reprocess what the lake holds for a time range")
    parser.add_argument("--since", required=True, help="start (RFC 3339, a date, or an age such as 7d)")
    parser.add_argument("--until", default="now", help="end, exclusive (default now)")
    parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS", help="use this Dask scheduler")
    add_data_dir(parser)
    add_config(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stage the affected batches, run them through a Dask spool processor with the configuration's
    inventory, masking and Elasticsearch settings (those of the live stack), print a summary."""
    from logwarden.clusters import DaskConnection
    from logwarden.common.paths import DataDir
    from logwarden.common.times import parse_time
    from logwarden.processing.backfill import batches_in_range, stage_batches
    from logwarden.settings import load_settings
    from logwarden.storage import Lake

    settings = load_settings(args.config)
    since, until = parse_time(args.since), parse_time(args.until)
    paths = DataDir.at(args.data_dir)
    lake = Lake(paths.lake)
    started = time.monotonic()
    batch_ids = batches_in_range(lake, since, until)
    staging = paths.root / "backfill"
    records = stage_batches(lake, batch_ids, staging)
    if batch_ids:
        dask = DaskConnection.open(args.dask_scheduler, workers=2, dashboard_port=None, host="127.0.0.1")
        try:
            _process(dask.client, paths, settings, staging, len(batch_ids), records, started)
        finally:
            dask.close()
    print(json.dumps({"since": since.isoformat(), "until": until.isoformat(), "batches": len(batch_ids),
                      "records": records, "seconds": round(time.monotonic() - started, 2)}))
    return 0


def _process(client, paths, settings, staging, batches: int, records: int, started: float) -> None:
    """Run the staged batches through processing, showing records, records/s and the time left."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from logwarden.processing.pipeline import SpoolProcessor

    processing = settings.processing
    processor = SpoolProcessor(client, paths, sink=lambda output: None, spool_dir=staging,
                               masking=processing.masking, inventory=processing.inventory,
                               elasticsearch=settings.storage.elasticsearch,
                               deadletter_max_bytes=settings.collector.max_deadletter_bytes)
    columns = (TextColumn("backfill"), BarColumn(), TextColumn("{task.fields[records]:>10,} records"),
               TextColumn("{task.fields[rate]:>8,.0f} rec/s"), TimeRemainingColumn())
    processor.start()
    try:
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task("backfill", total=batches, records=0, rate=0.0)
            while left := processor.pending():
                done = records * (batches - left) // batches
                progress.update(task, completed=batches - left, records=done,
                                rate=done / max(time.monotonic() - started, 1e-6))
                time.sleep(0.2)
            progress.update(task, completed=batches, records=records,
                            rate=records / max(time.monotonic() - started, 1e-6))
    finally:
        processor.stop()
