"""Soak: logwarden as a whole keeps its promises under load and faults, in one command.

``python bench/soak.py --minutes N --rate R`` starts the full stack (``logwarden up`` on embedded
defaults, on a Ray head and a Dask cluster of its own, with a config file that points PagerDuty, Slack
and SMTP at local receivers), drives it at R records/s (JSON app logs over HTTP, NDJSON and syslog over
TCP, RFC 3164 text lines, hostile records mixed in) with scheduled incidents whose alerts are known in
advance, injects faults (collector ``kill -9``, a Dask worker killed mid-batch, the Dask scheduler
killed, the Ray detector actors killed, channels down, a 5x burst, ``kill -9`` of ``logwarden up``
itself and its restart, a garbage spool batch; with ``--faults all`` also a disk-full window on a tmpfs
data dir and the Ray head killed), then prints one JSON report: the verdict of each promise with its
evidence, ack-to-alert latency, sustained records/s and the peak RSS of each process.

The exit status is 0 when every promise held, 1 when one broke, 2 when the soak could not run.
The schedule and what each verdict checks: ``bench/soak/plan.py`` and ``bench/soak/verify.py``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.soak.plan import DEFAULT_FAULTS, FAULT_KINDS, SoakConfig  # noqa: E402
from bench.soak.runner import run_soak  # noqa: E402

log = logging.getLogger("soak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of load (default 10)")
    parser.add_argument("--rate", type=int, default=50_000, help="records per second (default 50000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the workload (default 1)")
    parser.add_argument("--round-seconds", type=float, default=120.0,
                        help="length of one cycle of incidents and faults (default 120)")
    parser.add_argument("--burst-factor", type=float, default=5.0, help="rate multiplier of the burst (default 5)")
    parser.add_argument("--burst-seconds", type=float, default=10.0, help="burst length (default 10)")
    parser.add_argument("--outage-seconds", type=float, default=30.0,
                        help="how long the channels are down or refusing (default 30)")
    parser.add_argument("--min-rate-ratio", type=float, default=0.8,
                        help="the acknowledged rate outside bursts must reach this share of --rate (default 0.8)")
    parser.add_argument("--max-rss-mb", type=float, default=4096.0,
                        help="no process of the stack may go over this RSS (default 4096)")
    parser.add_argument("--drain-timeout", type=float, default=240.0,
                        help="seconds allowed after the load for the lake to catch up (default 240)")
    parser.add_argument("--alert-timeout", type=float, default=120.0,
                        help="seconds allowed after the drain for the expected alerts to arrive (default 120)")
    parser.add_argument("--settle-seconds", type=float, default=10.0,
                        help="seconds to keep watching the channels once every expected alert arrived (default 10)")
    parser.add_argument("--dask-workers", type=int, default=2, help="worker processes of the soak's Dask cluster (default 2)")
    parser.add_argument("--faults", default=",".join(DEFAULT_FAULTS),
                        help=f"comma-separated faults to inject, or 'all' ({','.join(FAULT_KINDS)}); default "
                             f"{','.join(DEFAULT_FAULTS)} (disk_full, which mounts a tmpfs, and kill_ray_head only when asked); "
                             "fewer faults isolate the cause of a broken promise")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the data (default a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (data, logs) after the run")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser.parse_args(argv)


def _fault_kinds(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return FAULT_KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise SystemExit(f"soak: unknown fault(s) {', '.join(unknown)} (known: {', '.join(FAULT_KINDS)})")
    return kinds


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print the report; 0 if every promise held, 1 if not, 2 if the soak failed to run."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    config = SoakConfig(minutes=args.minutes, rate=args.rate, seed=args.seed, round_seconds=args.round_seconds,
                        burst_factor=args.burst_factor, burst_seconds=args.burst_seconds,
                        outage_seconds=args.outage_seconds, drain_timeout=args.drain_timeout,
                        alert_timeout=args.alert_timeout, settle_seconds=args.settle_seconds,
                        min_rate_ratio=args.min_rate_ratio,
                        max_rss_mb=args.max_rss_mb, dask_workers=args.dask_workers, workdir=args.workdir,
                        keep=args.keep, faults=_fault_kinds(args.faults))
    try:
        report = run_soak(config)
    except Exception as exc:  # noqa: BLE001 - report why the soak could not run, as JSON, with status 2
        log.exception("the soak could not run")
        report = {"verdict": "error", "error": repr(exc)}
    text = json.dumps(report, indent=2, default=str)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n")
    return {"pass": 0, "fail": 1}.get(report["verdict"], 2)


if __name__ == "__main__":
    sys.exit(main())
