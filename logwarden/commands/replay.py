"""``logwarden replay``: push existing log files (any supported format, gzip or zstd too) through the pipeline."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from logwarden.commands.common import add_config, add_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``replay`` subcommand."""
    parser = subparsers.add_parser("replay", help="push log files through parse, lake, detectors and alerts")
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="log files or folders of them")
    parser.add_argument("--format", default="auto", help="a format name (see `logwarden detect`), or auto")
    parser.add_argument("--speed", default="max", help="max, realtime or Nx (e.g. 10x) in event time")
    add_data_dir(parser)
    add_config(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the files into the spool, let the running stack (or an embedded one) process them."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from logwarden.common.paths import DataDir
    from logwarden.replay import parse_speed, replay_files
    from logwarden.stack import running_stack

    speed = parse_speed(args.speed)
    paths = DataDir.at(args.data_dir).create()
    embedded = None if running_stack(paths) else _start_embedded(args)
    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[records]:>10,} records"),
               TextColumn("{task.fields[rate]:>8,.0f} rec/s"), TimeRemainingColumn())
    try:
        with Progress(*columns, transient=False) as progress:
            reading = progress.add_task("replay ", total=None, records=0, rate=0.0)

            def on_progress(done: int, total: int, summary) -> None:
                elapsed = max(time.monotonic() - started, 1e-6)
                progress.update(reading, completed=done, total=total, records=summary.records,
                                rate=summary.records / elapsed)

            summary = replay_files(args.paths, paths.root, args.format, speed, on_progress)
            _wait_for_processing(progress, paths, summary.batches, summary.accepted, started)
    finally:
        if embedded is not None:
            embedded.stop()
    result = summary.to_dict()
    result["seconds_until_processed"] = round(time.monotonic() - started, 2)
    print(json.dumps(result, indent=2))
    return 0 if summary.accepted or not summary.records else 1


def _start_embedded(args: argparse.Namespace):
    from logwarden.settings import load_settings
    from logwarden.stack import Stack, StackOptions

    print("no logwarden is running on this data dir: starting processing, detectors and alerting…", flush=True)
    stack = Stack(StackOptions(data_dir=Path(args.data_dir), settings=load_settings(args.config),
                               config_path=args.config, collector=False, dask_dashboard_port=None,
                               ray_dashboard_port=None))
    stack.start()
    return stack


def _wait_for_processing(progress, paths, batches: int, records: int, started: float) -> None:
    from logwarden.collector.spool import Spool

    spool = Spool(paths.spool)
    task = progress.add_task("process", total=max(batches, 1), records=0, rate=0.0)
    while True:
        left = spool.depth()
        done = max(batches - left, 0)
        processed = records * done // max(batches, 1)
        progress.update(task, completed=done, records=processed,
                        rate=processed / max(time.monotonic() - started, 1e-6))
        if left == 0:
            return
        time.sleep(0.2)
