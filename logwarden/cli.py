"""The ``logwarden`` command line: one subcommand per module in ``logwarden.commands``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from logwarden.common.yamlconf import ConfigError

COMMANDS = ("up", "collector", "rules", "detect", "templates", "replay", "backfill", "query", "retention",
            "alerts", "silence", "routes", "feedback", "deadletter", "spool", "agent", "prometheus-config")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered (``only``: that one alone, so that running a
    command imports its module only; the node agent stays free of Arrow that way)."""
    parser = argparse.ArgumentParser(prog="logwarden", description="Log monitoring on Dask and Ray.")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is None or name == only:
            importlib.import_module(f"logwarden.commands.{name.replace('-', '_')}").register(subparsers)
    return parser


def _command(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names, when it is a known one."""
    rest = iter(argv)
    for word in rest:
        if word == "--log-level":
            next(rest, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command(argv)).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"logwarden: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
