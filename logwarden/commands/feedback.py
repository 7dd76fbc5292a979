"""``logwarden feedback ANOMALY_ID false-positive|true-positive``: judge an ML anomaly.

A false positive suppresses the same pattern for its rule and joins the next training as a
normal example; the verdict is stored with the anomaly in ``<data-dir>/ml/feedback.sqlite``.
"""
from __future__ import annotations

import argparse
import sys

from logwarden.commands.common import add_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``feedback`` subcommand."""
    parser = subparsers.add_parser("feedback", help="mark an ML anomaly as a false or true positive")
    add_data_dir(parser)
    parser.add_argument("anomaly_id", metavar="ANOMALY_ID", help="the id of the anomaly (as in its alert)")
    parser.add_argument("verdict", choices=("false-positive", "true-positive"))
    parser.add_argument("--by", default=None, help="who (default: the current user)")
    parser.add_argument("--note", default="", help="why (kept with the verdict)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record the verdict; exit 1 when the anomaly is unknown."""
    from logwarden.commands.alerts import current_user
    from logwarden.monitoring.ml.feedback import FeedbackStore

    store = FeedbackStore.for_data_dir(args.data_dir)
    try:
        result = store.set_feedback(args.anomaly_id, args.verdict, args.by or current_user(), args.note)
    except KeyError:
        print(f"logwarden feedback: no ML anomaly {args.anomaly_id} in {store.path}", file=sys.stderr)
        return 1
    effect = ("pattern suppressed for the rule; joins the next training as normal"
              if args.verdict == "false-positive" else "confirmed")
    print(f"anomaly {result['id']} ({result['rule']}, {result['key']}, pattern {result['pattern']}): "
          f"{args.verdict} — {effect}")
    return 0
