"""``logwarden collector``: run the collector alone."""

from __future__ import annotations

import argparse
import sys

from logwarden.commands.common import add_config, add_data_dir

_PORT_OPTIONS = (  # each overrides its collector.* setting (0 picks a free port)
    ("http_port", "HTTP port (default: collector.http_port of --config)"),
    ("tcp_port", "TCP newline-delimited JSON port (default: collector.tcp_port of --config)"),
    ("syslog_port", "syslog port, TCP (RFC 6587) and UDP (default: collector.syslog_port of --config)"),
    ("forward_port", "Fluent forward port (default: collector.forward_port of --config)"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``collector`` subcommand."""
    parser = subparsers.add_parser(
        "collector", help="run the collector (HTTP protocols, TCP, syslog and Fluent forward ingestion) alone"
    )
    add_data_dir(parser)
    add_config(parser)
    parser.add_argument("--host", default=None, help="address to bind (default: collector.host of --config)")
    for name, text in _PORT_OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None, help=text)
    parser.add_argument("--no-tcp", action="store_true", help="do not listen for TCP NDJSON")
    parser.add_argument("--no-syslog", action="store_true", help="do not listen for syslog (TCP and UDP)")
    parser.add_argument("--no-forward", action="store_true", help="do not listen for Fluent forward")
    parser.add_argument("--instance", default=None, metavar="NAME",
                        help="one of several collectors on this data dir: its write-ahead log is wal/NAME "
                             "(the collector without a name adopts what a stopped instance left there)")
    parser.add_argument("--reuse-port", action="store_true",
                        help="listen beside other collectors on the same ports (SO_REUSEPORT: the kernel "
                             "spreads connections over them)")
    parser.add_argument("--admin-port", type=int, default=None,
                        help="a port with this collector's own /health, /ready and /metrics (0 picks a free one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT."""
    from logwarden.collector import run_collector
    from logwarden.collector.instances import WalTaken
    from logwarden.common.parentdeath import exit_with_parent
    from logwarden.common.paths import DataDir
    from logwarden.security import stack_auth, stack_tls
    from logwarden.settings import load_settings

    exit_with_parent()  # started by `logwarden up`: stop (SIGTERM) if it dies without stopping us
    settings = load_settings(args.config)
    config = settings.collector
    config.tls = stack_tls(settings)  # the one certificate of every listener
    for name in ("host", "http_port", "tcp_port", "syslog_port", "forward_port"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if args.syslog_port is not None:
        config.syslog_port_required = True
    if args.forward_port is not None:
        config.forward_port_required = True
    if args.no_tcp:
        config.tcp_port = None
    if args.no_syslog:
        config.syslog_port = None
    if args.no_forward:
        config.forward_port = None
    config.reuse_port, config.admin_port = args.reuse_port, args.admin_port
    try:
        run_collector(DataDir.at(args.data_dir, args.instance), config, stack_auth(settings), settings.sources)
    except ValueError as exc:  # e.g. a TLS certificate that cannot be loaded, a bad instance name
        print(f"logwarden: {exc}", file=sys.stderr)
        return 2
    except WalTaken as exc:
        print(f"logwarden: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a port already in use
        print(f"logwarden: cannot start the collector: {exc}", file=sys.stderr)
        return 1
    return 0
