"""Options shared by several subcommands."""
from __future__ import annotations

import argparse


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """``--data-dir DIR``: spool, lake, dead-letter and outbox live below it."""
    parser.add_argument("--data-dir", default="./data",
                        help="folder of spool, lake, dead-letter and outbox (default ./data)")


def add_config(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``: the logwarden configuration file."""
    parser.add_argument("--config", default=None, help="logwarden configuration file (YAML)")
