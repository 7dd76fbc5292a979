"""``logwarden up``: start the whole stack (on embedded defaults, or on existing clusters)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from logwarden.commands.common import add_config, add_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``up`` subcommand."""
    parser = subparsers.add_parser("up", help="start collector, Dask, Ray, detectors and alerting")
    add_data_dir(parser)
    add_config(parser)
    parser.add_argument("--rules", default=None,
                        help="rules file (default: monitoring.rules of --config, else the shipped "
                             "schemas/anomaly_schema.yaml)")
    parser.add_argument("--demo", action="store_true", help="send demo traffic with incidents")
    parser.add_argument("--demo-speed", type=float, default=10.0,
                        help="how much faster than the wall clock the demo's simulated clock runs (default 10)")
    parser.add_argument("--demo-no-incidents", action="store_true", help="demo traffic without incidents")
    parser.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS",
                        help="stop by itself after SECONDS")
    parser.add_argument("--host", default=None,
                        help="address every service binds (default: collector.host of --config)")
    parser.add_argument("--http-port", type=int, default=None,
                        help="collector HTTP port (default: collector.http_port of --config)")
    parser.add_argument("--tcp-port", type=int, default=None,
                        help="collector TCP NDJSON port (default: collector.tcp_port of --config)")
    parser.add_argument("--syslog-port", type=int, default=None,
                        help="collector syslog port, TCP (RFC 6587) and UDP (default: collector.syslog_port of --config)")
    parser.add_argument("--forward-port", type=int, default=None,
                        help="collector Fluent forward port (default: collector.forward_port of --config)")
    parser.add_argument("--collectors", type=int, default=1, metavar="N",
                        help="run N collector processes on the same ports (SO_REUSEPORT: the kernel spreads "
                             "connections over them), each with its own write-ahead log (default 1)")
    parser.add_argument("--collector-admin-port", type=int, default=8090, metavar="PORT",
                        help="with --collectors N: the first collector's own /health and /metrics port, the "
                             "next ones on PORT+1 ... (default 8090)")
    parser.add_argument("--api-port", type=int, default=8081,
                        help="API port: alerts, acknowledgement, search (default 8081)")
    parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                        help="use this Dask scheduler (tcp://HOST:8786) instead of a local cluster")
    parser.add_argument("--dask-workers", type=int, default=2, help="workers of the local Dask cluster (default 2)")
    parser.add_argument("--adaptive", type=int, nargs="?", const=4, default=None, metavar="MAX_WORKERS",
                        help="scale the local Dask cluster between 1 and MAX_WORKERS (default 4) with the load")
    parser.add_argument("--dask-dashboard-port", type=int, default=8787,
                        help="local Dask dashboard port (default 8787)")
    parser.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="use this Ray cluster (HOST:6379) instead of a local Ray")
    parser.add_argument("--ray-dashboard-port", type=int, default=8265, help="local Ray dashboard port (default 8265)")
    parser.add_argument("--dashboard-port", type=int, default=5006, help="logwarden dashboard port (default 5006)")
    parser.add_argument("--no-dashboards", action="store_true",
                        help="start no dashboard (logwarden, Dask or Ray)")
    parser.set_defaults(func=run)


def _options(args: argparse.Namespace):
    from logwarden.settings import load_settings
    from logwarden.stack import StackOptions

    return StackOptions(  # options left None take their value from the settings
        data_dir=Path(args.data_dir), settings=load_settings(args.config), config_path=args.config,
        rules_path=Path(args.rules) if args.rules else None, host=args.host, http_port=args.http_port,
        tcp_port=args.tcp_port,
        api_port=args.api_port, syslog_port=args.syslog_port, forward_port=args.forward_port,
        dask_scheduler=args.dask_scheduler, dask_workers=args.dask_workers, adaptive_max=args.adaptive,
        dask_dashboard_port=None if args.no_dashboards else args.dask_dashboard_port,
        ray_address=args.ray_address, ray_dashboard_port=None if args.no_dashboards else args.ray_dashboard_port,
        dashboard_port=None if args.no_dashboards else args.dashboard_port,
        demo=args.demo, demo_speed=args.demo_speed, demo_incidents=not args.demo_no_incidents,
        collectors=args.collectors, collector_admin_port=args.collector_admin_port)


def run(args: argparse.Namespace) -> int:
    """Start, print where to look, run until --for elapses or a signal arrives, then stop cleanly; exit
    ``EXIT_CLUSTER_LOST`` (75) when the Ray cluster died under the stack (``logwarden.clusters``)."""
    from logwarden.clusters import EXIT_CLUSTER_LOST, ClusterLost
    from logwarden.stack import Stack

    try:
        stack = Stack(_options(args))
    except ValueError as exc:  # options that contradict each other
        print(f"logwarden: {exc}", file=sys.stderr, flush=True)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("logwarden: starting collector, Dask, Ray, detectors and alerting…", flush=True)
    try:
        stack.start()
    except OSError as exc:  # a port in use, most often
        print(f"logwarden: cannot start: {exc} (see --help for the port options)", file=sys.stderr, flush=True)
        return 1
    except RuntimeError as exc:
        print(f"logwarden: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print("logwarden is up:", flush=True)
    for name, url in stack.urls().items():
        print(f"  {name:<24} {url}", flush=True)
    if args.demo:
        print("  demo traffic: 4 services; incidents fire all five rules within about two minutes", flush=True)
    status = 0
    try:
        stack.run(args.duration, stop)
    except ClusterLost as exc:
        print(f"logwarden: the Ray cluster is lost ({exc}); the detector actors are gone with it. Stopping (status "
              f"{EXIT_CLUSTER_LOST}) to be started again once the head is back (e.g. systemd Restart=always): the "
              "detectors resume from their checkpoints, the spool keeps what is not processed yet", file=sys.stderr,
              flush=True)
        status = EXIT_CLUSTER_LOST
    finally:
        print("logwarden: stopping…", flush=True)
        stack.stop()
        print("logwarden: stopped", flush=True)
    return status
