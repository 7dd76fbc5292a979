"""The ``logwarden`` command line: one subcommand per module in ``logwarden.commands``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from logwarden.common.yamlconf import ConfigError

COMMANDS = ("up", "collector", "rules", "detect", "templates", "replay", "backfill", "query", "retention",
            "alerts", "silence", "feedback", "deadletter")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="logwarden", description="Log monitoring on Dask and Ray.")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"logwarden.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"logwarden: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
