"""``logwarden collector``: run the collector alone."""
from __future__ import annotations

import argparse

from logwarden.commands.common import add_config, add_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``collector`` subcommand."""
    parser = subparsers.add_parser("collector", help="run the collector (HTTP and TCP ingestion) alone")
    add_data_dir(parser)
    add_config(parser)
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, default=None, help="HTTP port (default 8080)")
    parser.add_argument("--tcp-port", type=int, default=None, help="TCP NDJSON port (default 5170)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT."""
    from collector import run_collector
    from logwarden.common.paths import DataDir
    from logwarden.settings import load_settings

    config = load_settings(args.config).collector
    for name in ("host", "http_port", "tcp_port"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    run_collector(DataDir.at(args.data_dir), config)
    return 0
