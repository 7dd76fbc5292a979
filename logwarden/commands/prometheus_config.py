"""``logwarden prometheus-config``: a Prometheus scrape configuration for the running stack.

It reads ``<data-dir>/run/stack.json`` (written by ``logwarden up``) for the endpoint of each process
(the collector's ``/metrics`` and the driver's, on the API port) and the configuration file the stack
runs with, and prints one scrape job per process. Both endpoints need role ``read``: with tokens
configured, the first token of tenant ``*`` that may read (else the first that may read) is written
to ``--token-file`` (mode 0600) and referenced as ``authorization.credentials_file``, so the token never
appears in the printed configuration. With TLS, the stack's certificate is the CA Prometheus trusts.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from logwarden.commands.common import add_config, add_data_dir

TOKEN_FILE = "prometheus.token"
JOBS = {"collector": "logwarden-collector", "driver": "logwarden-driver"}
PROMETHEUS_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")  # Prometheus' own duration syntax


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prometheus-config`` subcommand."""
    parser = subparsers.add_parser(
        "prometheus-config", help="print a Prometheus scrape configuration for the running stack",
        description="Print a prometheus.yml with one scrape job per logwarden process (collector, driver) of "
                    "the stack running on --data-dir, with the bearer token and CA it needs.")
    add_data_dir(parser)
    add_config(parser)
    parser.add_argument("--scrape-interval", default="15s", metavar="DURATION",
                        help="how often Prometheus scrapes (default 15s)")
    parser.add_argument("--token-file", default=None, metavar="FILE",
                        help=f"where to write the read token when tokens are configured "
                             f"(default <data-dir>/run/{TOKEN_FILE})")
    parser.add_argument("--out", default=None, metavar="FILE", help="write the configuration here (default stdout)")
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace, stack: dict[str, Any]):
    from logwarden.settings import load_settings

    return load_settings(args.config or stack.get("config"))


def _read_token(settings) -> str | None:
    from logwarden.common.auth import ALL_TENANTS, READ
    from logwarden.security import stack_auth

    auth = stack_auth(settings)
    return auth.token_for(READ, tenant=ALL_TENANTS) or auth.token_for(READ)


def write_token(token: str, path: Path) -> Path:
    """Write ``token`` to ``path``, readable by its owner only; returns the absolute path."""
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    os.chmod(path, 0o600)
    return path


def scrape_config(metrics: dict[str, str], interval: str, token_file: Path | None = None,
                  ca_file: Path | None = None) -> dict[str, Any]:
    """The configuration: one job per process in ``metrics`` (process -> metrics URL)."""
    jobs = []
    for process, url in sorted(metrics.items()):
        parts = urlsplit(url)
        job: dict[str, Any] = {
            "job_name": JOBS.get(process, f"logwarden-{process}"), "scrape_interval": interval,
            "scheme": parts.scheme, "metrics_path": parts.path or "/metrics",
            "static_configs": [{"targets": [parts.netloc], "labels": {"process": process}}],
        }
        if token_file is not None:
            job["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
        if ca_file is not None and parts.scheme == "https":
            job["tls_config"] = {"ca_file": str(ca_file)}
        jobs.append(job)
    return {"scrape_configs": jobs}


def run(args: argparse.Namespace) -> int:
    """Print (or write) the configuration; 1 when no stack runs on the data dir."""
    from logwarden.common.paths import DataDir
    from logwarden.security import stack_tls
    from logwarden.stack import running_stack

    if not PROMETHEUS_DURATION.match(args.scrape_interval):
        print(f"logwarden: --scrape-interval: expected a Prometheus duration such as 15s or 1m, got "
              f"{args.scrape_interval!r}", file=sys.stderr)
        return 2
    paths = DataDir.at(args.data_dir)
    stack = running_stack(paths)
    if stack is None or not stack.get("metrics"):
        print(f"logwarden: no running logwarden on {paths.root} (start it with `logwarden up --data-dir "
              f"{args.data_dir}`)", file=sys.stderr)
        return 1
    settings = _settings(args, stack)
    token = _read_token(settings)
    token_file = None
    if token is not None:
        token_file = write_token(token, Path(args.token_file) if args.token_file else paths.run / TOKEN_FILE)
    tls = stack_tls(settings)
    config = scrape_config(stack["metrics"], args.scrape_interval, token_file,
                           tls.cert_file.resolve() if tls is not None else None)
    text = f"# Prometheus scrape configuration of logwarden on {paths.root.resolve()}\n" + \
        yaml.safe_dump(config, sort_keys=False)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
