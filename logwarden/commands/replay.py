"""``logwarden replay``: push existing log files (any supported format, gzip or zstd too) through the pipeline."""
from __future__ import annotations

import argparse
import json
import time
from contextlib import ExitStack
from pathlib import Path

from logwarden.commands.common import add_config, add_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``replay`` subcommand."""
    parser = subparsers.add_parser("replay", help="push log files through parse, lake, detectors and alerts")
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="log files or folders of them")
    parser.add_argument("--format", default="auto", help="a format name (see `logwarden detect`), or auto")
    parser.add_argument("--speed", default="max", help="max, realtime or Nx (e.g. 10x) in event time")
    parser.add_argument("--tenant", default="default", help="the tenant the records belong to (default: default)")
    parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                        help="parse on this Dask cluster (default: the running stack's, or the embedded one's)")
    add_data_dir(parser)
    add_config(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the files into the spool, let the running stack (or an embedded one) process them."""
    from logwarden.common.paths import DataDir
    from logwarden.replay import ReplayOptions, parse_speed, replay_files
    from logwarden.settings import load_settings
    from logwarden.stack import running_stack

    if not args.tenant.strip():
        raise SystemExit("--tenant must not be empty")
    paths = DataDir.at(args.data_dir).create()
    running = running_stack(paths)
    # without --config, the running stack's configuration (its collector's limits) applies
    settings = load_settings(args.config or (running or {}).get("config"))
    collector = settings.collector
    options = ReplayOptions(args.format, parse_speed(args.speed), args.tenant, collector.max_line_bytes,
                            collector.limits, collector.max_deadletter_bytes)
    with ExitStack() as resources:
        embedded = None if running else resources.enter_context(_embedded(args, settings))
        runner = resources.enter_context(_runner(args.dask_scheduler or (running or {}).get("dask_scheduler"),
                                                 embedded))
        started = time.monotonic()
        with _progress() as progress:
            summary = replay_files(args.paths, paths.root, options, progress.reading(started), runner)
            progress.processing(paths, summary.batches, summary.accepted, started)
    result = summary.to_dict()
    result["seconds_until_processed"] = round(time.monotonic() - started, 2)
    print(json.dumps(result, indent=2))
    return 0 if summary.accepted or not summary.records else 1


class _embedded:
    """The stack without a collector, for a data dir no ``logwarden up`` runs on."""

    def __init__(self, args: argparse.Namespace, settings) -> None:
        self.args, self.settings, self.stack = args, settings, None

    def __enter__(self):
        from logwarden.stack import Stack, StackOptions

        print("no logwarden is running on this data dir: starting processing, detectors and alerting…", flush=True)
        self.stack = Stack(StackOptions(data_dir=Path(self.args.data_dir), settings=self.settings,
                                        config_path=self.args.config, collector=False, dask_dashboard_port=None,
                                        ray_dashboard_port=None, dashboard_port=None,
                                        dask_scheduler=self.args.dask_scheduler))
        self.stack.start()
        return self.stack

    def __exit__(self, *exc) -> None:
        self.stack.stop()


class _runner:
    """The chunk runner: the embedded stack's Dask, a scheduler's, or this process."""

    def __init__(self, scheduler: str | None, embedded) -> None:
        self.scheduler, self.embedded, self.client = scheduler, embedded, None

    def __enter__(self):
        from logwarden.replay.runners import DaskRunner, InlineRunner

        if self.embedded is not None:
            return DaskRunner(self.embedded.dask.client)
        if self.scheduler:
            from distributed import Client

            self.client = Client(self.scheduler, timeout=10)
            return DaskRunner(self.client)
        return InlineRunner()

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()


class _progress:
    """Two rich progress bars: reading the files, then the spool draining into the lake."""

    def __enter__(self):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.fields[records]:>10,} records"),
                   TextColumn("{task.fields[rate]:>8,.0f} rec/s"), TimeRemainingColumn())
        self.bars = Progress(*columns, transient=False)
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def reading(self, started: float):
        """The callback of ``replay_files``."""
        task = self.bars.add_task("replay ", total=None, records=0, rate=0.0)

        def on_progress(done: int, total: int, summary) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            self.bars.update(task, completed=done, total=total, records=summary.records,
                             rate=summary.records / elapsed)
        return on_progress

    def processing(self, paths, batches: int, records: int, started: float) -> None:
        """Follow the spool until the batches of this replay are processed."""
        from logwarden.collector.spool import Spool

        spool = Spool(paths.spool)
        task = self.bars.add_task("process", total=max(batches, 1), records=0, rate=0.0)
        while True:
            left = spool.depth()
            done = max(batches - left, 0)
            processed = records * done // max(batches, 1)
            self.bars.update(task, completed=done, records=processed,
                             rate=processed / max(time.monotonic() - started, 1e-6))
            if left == 0:
                return
            time.sleep(0.2)
