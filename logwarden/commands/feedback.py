"""``logwarden feedback REF VERDICT``: an operator's verdict on an alert.

``VERDICT`` is ``actionable``, ``not_actionable`` or ``expected``; ``false-positive`` is another name of
``not_actionable`` and ``true-positive`` of ``actionable``. ``REF`` names an alert as ``logwarden alerts``
shows it (number, anomaly id, or ``rule:key`` for its newest alert). The verdict goes, with the alert's
features, to ``<data-dir>/ml/verdicts.sqlite``, from which the actionable model learns what is worth a page
(``monitoring.ml.actionable``). On an anomaly of an ML rule, ``not_actionable`` also suppresses the same
pattern for that rule and hands its data to the next training as normal, and ``actionable`` confirms it
(``<data-dir>/ml/feedback.sqlite``), as ``false-positive`` and ``true-positive`` always did.
"""
from __future__ import annotations

import argparse
import sys

from logwarden.commands.common import add_data_dir

VERDICT_CHOICES = ("actionable", "not_actionable", "expected", "not-actionable", "false-positive", "true-positive")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``feedback`` subcommand."""
    parser = subparsers.add_parser("feedback", help="judge an alert: actionable, not actionable or expected")
    add_data_dir(parser)
    parser.add_argument("anomaly_id", metavar="REF",
                        help="the alert: its number, its anomaly id (as in its alert) or rule:key")
    parser.add_argument("verdict", choices=VERDICT_CHOICES, metavar="VERDICT",
                        help="actionable, not_actionable (also: false-positive) or expected "
                             "(true-positive: actionable)")
    parser.add_argument("--tenant", default=None, help="only an alert of this tenant")
    parser.add_argument("--by", default=None, help="who (default: the current user)")
    parser.add_argument("--note", default="", help="why (kept with the verdict)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record the verdict on the alert and, for an ML anomaly, the feedback; exit 1 when neither knows REF."""
    from logwarden.commands.alerts import current_user
    from logwarden.monitoring.ml.verdicts import normalize_verdict

    verdict = normalize_verdict(args.verdict)
    by = args.by or current_user()
    recorded = _alert_verdict(args, verdict, by)
    confirmed = _ml_feedback(args, verdict, by)
    if recorded is None and confirmed is None:
        print(f"logwarden feedback: no alert or ML anomaly {args.anomaly_id} in {args.data_dir}", file=sys.stderr)
        return 1
    if recorded is not None:
        print(f"alert {recorded['alert']} ({recorded['rule']}, {recorded['key']}, tenant {recorded['tenant']}): "
              f"{verdict} — the actionable model learns from it at its next training")
    if confirmed is not None:
        effect = "pattern suppressed for the rule; joins the next training as normal" \
            if confirmed["verdict"] == "false-positive" else "confirmed"
        print(f"ML anomaly {confirmed['id']} ({confirmed['rule']}, {confirmed['key']}, pattern "
              f"{confirmed['pattern']}): {confirmed['verdict']} — {effect}")
    return 0


def _alert_verdict(args: argparse.Namespace, verdict: str, by: str) -> dict | None:
    """The verdict stored on the alert, or None when there is no such alert."""
    from logwarden.alerting.http import record_alert_verdict
    from logwarden.alerting.store import AlertStore
    from logwarden.common.paths import DataDir
    from logwarden.monitoring.ml.verdicts import VerdictStore

    paths = DataDir.at(args.data_dir)
    if not paths.alerts.is_dir():
        return None
    store = AlertStore(paths.alerts)
    try:
        return record_alert_verdict(store, VerdictStore.for_data_dir(paths.root), args.anomaly_id, verdict, by,
                                    args.note, args.tenant)
    except KeyError:
        return None
    finally:
        store.close()


def _ml_feedback(args: argparse.Namespace, verdict: str, by: str) -> dict | None:
    """The ML anomaly with its feedback (false-positive for not_actionable, true-positive for actionable),
    or None when REF is no ML anomaly or the verdict is ``expected``."""
    from logwarden.monitoring.ml.feedback import FALSE_POSITIVE, TRUE_POSITIVE, FeedbackStore
    from logwarden.monitoring.ml.verdicts import ACTIONABLE, NOT_ACTIONABLE

    feedback = {NOT_ACTIONABLE: FALSE_POSITIVE, ACTIONABLE: TRUE_POSITIVE}.get(verdict)
    if feedback is None:
        return None
    try:
        return FeedbackStore.for_data_dir(args.data_dir).set_feedback(args.anomaly_id, feedback, by, args.note)
    except KeyError:
        return None
