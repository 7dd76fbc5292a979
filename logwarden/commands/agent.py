"""``logwarden agent``: follow a node's log files and ship them to a central collector.

Light on purpose: the agent imports neither Dask, Ray nor Arrow. It reads the ``sources:`` section of
its configuration file with the one YAML loader (the other sections, meant for the central stack, are
allowed but not read here).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from logwarden.commands.common import add_config

#: The sections of a logwarden configuration file (``logwarden.settings.SECTIONS``; a test keeps them equal).
KNOWN_SECTIONS = ("collector", "processing", "storage", "monitoring", "alerting", "auth", "tls", "sources")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``agent`` subcommand."""
    parser = subparsers.add_parser(
        "agent", help="follow this node's log files (sources: of --config) and ship them to a collector",
        description="Follow the files of the sources: section (rotation, containers, multi-line records), "
                    "buffer on disk while the collector is away, and ship to its native API (POST /v1/logs).")
    add_config(parser)
    parser.add_argument("--to", required=True, metavar="URL",
                        help="the collector, e.g. https://collector.example.org:8080 (path /v1/logs by default)")
    parser.add_argument("--token", default=None,
                        help="bearer token of role ingest (default: $LOGWARDEN_TOKEN; the tenant is the token's)")
    parser.add_argument("--state-dir", default="./agent-state",
                        help="checkpoints, disk buffer and dead letters (default ./agent-state)")
    parser.add_argument("--buffer-max-bytes", default="256MiB", metavar="SIZE",
                        help="at most this much waiting on disk for the collector (default 256MiB); reading "
                             "pauses while it is full")
    parser.add_argument("--ca-file", default=None, help="CA certificate(s) to trust for an https collector")
    parser.add_argument("--host-name", default=None, help="the host attribute of every record (default: hostname)")
    parser.set_defaults(func=run)


def load_sources(path: str):
    """The ``sources:`` of the configuration file at ``path`` (errors read ``FILE:LINE: key: problem``)."""
    from logwarden.collector.sources.config import SECTION, parse_sources
    from logwarden.common.yamlconf import ConfigError, describe, load_yaml

    doc = load_yaml(path)
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise doc.error([], f"expected a mapping of sections ({', '.join(KNOWN_SECTIONS)}), got {describe(data)}")
    for name in data:
        if name not in KNOWN_SECTIONS:
            raise doc.error([name], f"unknown section (known sections: {', '.join(sorted(KNOWN_SECTIONS))})")
    try:
        sources = parse_sources(data.get(SECTION))
    except ConfigError as exc:
        raise doc.locate(exc) from None
    if not sources:
        raise doc.error([SECTION], "the agent needs at least one source (sources: - type: file ...)")
    return sources


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT."""
    import os
    from pathlib import Path

    from logwarden.collector.sources.agent import Agent
    from logwarden.collector.sources.config import parse_size
    from logwarden.common.yamlconf import ConfigError

    if args.config is None:
        print("logwarden: agent: --config FILE (with a sources: section) is required", file=sys.stderr)
        return 2
    sources = load_sources(args.config)
    try:
        buffer_bytes = parse_size(args.buffer_max_bytes, ("--buffer-max-bytes",), minimum=1 << 20)
    except ConfigError as exc:
        print(f"logwarden: {exc}", file=sys.stderr)
        return 2
    token = args.token or os.environ.get("LOGWARDEN_TOKEN")
    try:
        agent = Agent(sources, Path(args.state_dir), args.to, token, buffer_bytes, args.ca_file, args.host_name)
    except (ValueError, OSError) as exc:
        print(f"logwarden: agent: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"logwarden agent: following {len(sources.files)} source(s), shipping to {args.to}", flush=True)
    agent.run(stop)
    return 0
