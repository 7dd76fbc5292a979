"""The short soak: one round of a minute and a half of mixed load at a rate a 2-core machine sustains
while the suite runs, with the default faults of the full soak (``bench/soak.py``: every fault but
``disk_full``, which mounts a tmpfs, and ``kill_ray_head``, which a one-round run does not schedule;
``kill -9`` of ``logwarden up`` and its restart, of the external Dask scheduler, and a garbage spool batch
included); its exit status and its key verdicts.

The round keeps the full soak's schedule scaled to its length: each incident still spans the fault it is
meant to span, the 30 s channel outage still holds back the first alerts, and the burst is scaled with the
round (``BURST_SECONDS``) so that it ends before the ``kill -9`` of ``logwarden up`` at 0.90."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.solo  # timing-sensitive: `make test` runs it alone, after the rest

REPO = Path(__file__).resolve().parents[1]
SOAK = REPO / "bench" / "soak.py"
MINUTES, RATE = 1.5, 2000
BURST_SECONDS = 7.5  # the full soak's 10 s in a 120 s round, scaled to this round of 90 s

SOAK_MARKS = (pytest.mark.cluster, pytest.mark.timeout(600))


def _missing() -> str | None:
    for module in ("aiosmtpd", "cryptography", "ray", "distributed"):
        if importlib.util.find_spec(module) is None:
            return f"the soak needs the Python package {module}"
    if not (Path(sys.executable).parent / "ray").exists() and shutil.which("ray") is None:
        return "the soak needs the `ray` command (ray start --head)"
    return None


def _soak_test(function):
    for mark in SOAK_MARKS:
        function = mark(function)
    return function


@pytest.fixture(scope="module")
def soak(tmp_path_factory) -> tuple[int, dict, str]:
    """Run the short soak once: (exit status, report, stderr tail)."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("soak") / "report.json"
    done = subprocess.run([sys.executable, str(SOAK), "--minutes", str(MINUTES), "--rate", str(RATE),
                           "--burst-seconds", str(BURST_SECONDS),
                           "--settle-seconds", "5", "--alert-timeout", "60", "--drain-timeout", "120",
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=540, cwd=REPO)
    report = json.loads(out.read_text()) if out.exists() else {"verdict": "error", "stdout": done.stdout[-3000:]}
    return done.returncode, report, done.stderr[-5000:]


def _evidence(report: dict, name: str) -> str:
    return json.dumps(report.get("promises", {}).get(name, report), indent=1, default=str)[:4000]


@_soak_test
def test_every_promise_holds(soak):
    status, report, stderr = soak
    assert report["verdict"] != "error", f"the soak could not run: {report}\n{stderr}"
    assert status == 0, f"broken promises: {report['broken_promises']}\n" + "\n".join(
        _evidence(report, name) for name in report["broken_promises"])


@_soak_test
def test_acknowledged_records_are_in_the_lake_exactly_once(soak):
    _, report, _ = soak
    lake = report["promises"]["lake_exactly_once"]
    assert lake["acknowledged"] > 0.5 * MINUTES * 60 * RATE, _evidence(report, "lake_exactly_once")
    assert (lake["missing"], lake["duplicated"], lake["in_lake_but_never_acknowledged"]) == (0, 0, 0), \
        _evidence(report, "lake_exactly_once")


@_soak_test
def test_hostile_records_are_dead_lettered_never_stored(soak):
    _, report, _ = soak
    letters = report["promises"]["dead_letter"]
    assert letters["hostile_sent"] > 0
    assert (letters["missing_from_dead_letter"], letters["hostile_in_lake"],
            letters["acknowledged_but_dead_lettered"]) == (0, 0, 0), _evidence(report, "dead_letter")


@_soak_test
def test_expected_alerts_are_delivered_exactly_once(soak):
    _, report, _ = soak
    alerts = report["promises"]["alerts_exactly_once"]
    assert alerts["expected"] >= 7
    assert alerts["ok"], _evidence(report, "alerts_exactly_once")


@_soak_test
def test_every_fault_was_injected_and_recovered(soak):
    _, report, _ = soak
    assert report["promises"]["faults_recovered"]["ok"], _evidence(report, "faults_recovered")
    kinds = {fault["kind"] for fault in report["faults"]}
    assert kinds == {"kill_collector", "kill_dask_worker", "kill_detector_actors", "channels_outage", "burst",
                     "kill_stack", "corrupt_spool", "kill_dask_scheduler"}
    stack_kill = next(fault for fault in report["faults"] if fault["kind"] == "kill_stack")
    assert stack_kill["old_processes_left"] == [], stack_kill  # the old collector stopped with its parent
    scheduler_kill = next(fault for fault in report["faults"] if fault["kind"] == "kill_dask_scheduler")
    assert scheduler_kill["same_logwarden_up"] and scheduler_kill["processing_resumed"], scheduler_kill
    quarantine = report["promises"]["lake_exactly_once"]["quarantined_spool_batches"]
    assert quarantine["corrupted_records"] > 0 and quarantine["corrupted_records_not_in_failed"] == 0


@_soak_test
def test_figures_are_reported(soak):
    _, report, _ = soak
    figures = report["figures"]
    assert figures["records_per_s"]["sustained_per_s"] > 0
    assert figures["ack_to_alert_latency"]["ack_to_delivery_s"]["n"] > 0
    assert {"logwarden up", "collector", "dask worker"} <= set(figures["peak_rss_mb"])


# The verdicts can fail: each check below is fed a discrepancy and must report it. -------------------
def _ledger(acked=(), rejected=(), hostile=()):
    from bench.soak.ledger import Ledger

    ledger = Ledger()
    ledger.record("http", "acked", list(acked), list(rejected))
    ledger.note_hostile([(n, "bad_level") for n in hostile])
    return ledger


def test_lake_verdict_catches_loss_duplicates_and_strangers():
    import numpy as np

    from bench.soak.verify import check_lake

    ledger = _ledger(acked=[1, 2, 3])
    assert check_lake(ledger, np.array([1, 2, 3]), 0)["ok"]
    assert check_lake(ledger, np.array([1, 2]), 0)["missing"] == 1
    assert check_lake(ledger, np.array([1, 2, 3, 3]), 0)["duplicated"] == 1
    assert not check_lake(ledger, np.array([1, 2, 3, 9]), 0)["ok"]
    assert not check_lake(ledger, np.array([1, 2, 3]), 1)["ok"]


def test_dead_letter_verdict_catches_missing_letters_and_stored_hostile_records():
    from collections import Counter

    import numpy as np

    from bench.soak.verify import check_dead_letter

    ledger = _ledger(acked=[1, 2], rejected=[5, 6], hostile=[5, 6])
    assert check_dead_letter(ledger, np.array([5, 6]), Counter(), 0, np.array([1, 2]))["ok"]
    assert check_dead_letter(ledger, np.array([5]), Counter(), 0, np.array([1, 2]))["missing_from_dead_letter"] == 1
    assert check_dead_letter(ledger, np.array([5, 6]), Counter(), 0, np.array([1, 2, 6]))["hostile_in_lake"] == 1
    assert not check_dead_letter(ledger, np.array([1, 5, 6]), Counter(), 0, np.array([1, 2]))["ok"]


def test_alert_verdict_catches_missing_repeated_and_unexpected_alerts():
    from bench.soak.channels import FIRING, RESOLVED, Delivery
    from bench.soak.plan import Incident, Plan
    from bench.soak.verify import check_alerts

    plan = Plan(60.0, 1, 60.0, incidents=[Incident("error_spike", "svc", "svc", "HIGH", "slack", 0, 1, 120, 101, 1)])

    def outbox(*entries):
        return [{"event": "routed", "rule": r, "key": k, "channel": c, "status": s} for r, k, c, s in entries]

    once = [Delivery("slack", "error_spike", "svc", FIRING, 1.0)]
    journal = outbox(("error_spike", "svc", "slack", FIRING))
    history = {"firing_per_incident": {"error_spike:svc": 1}, "dead_messages": [], "waiting": 0}
    assert check_alerts(plan, once, journal, history)["ok"]
    assert not check_alerts(plan, [], journal, history)["ok"]
    assert not check_alerts(plan, once * 2, journal, history)["ok"]
    stranger = once + [Delivery("pagerduty", "service_down", "svc", FIRING, 2.0)]
    assert not check_alerts(plan, stranger, journal, history)["ok"]
    resolved_twice = once + [Delivery("slack", "error_spike", "svc", RESOLVED, 3.0)] * 2
    assert not check_alerts(plan, resolved_twice, journal, history)["ok"]
    assert not check_alerts(plan, once, journal * 2, history)["ok"]
    assert not check_alerts(plan, once, journal, {**history, "waiting": 1})["ok"]


def test_http_answers_are_attributed_per_record_and_inconsistencies_are_kept():
    from bench.soak.ledger import Ledger
    from bench.soak.load import Body, post_body

    class Answer:
        def __init__(self, status: int, body: dict) -> None:
            self.status_code, self.body = status, body

        def json(self) -> dict:
            return self.body

    class Session:
        def __init__(self, answer: Answer) -> None:
            self.answer = answer

        def post(self, *args, **kwargs) -> Answer:
            return self.answer

    ledger = Ledger()
    body = Body([10, 11, 12], hostile={1: 11}, lines=[b"a", b"b", b"c"])
    good = Answer(200, {"accepted": 2, "rejected": 1, "errors": [{"index": 1, "field": "level", "error": "x"}]})
    assert post_body(Session(good), "http://x", body, ledger) == [10, 12]
    assert (list(ledger.array("acked")), list(ledger.array("rejected"))) == ([10, 12], [11])
    hostile_taken = Answer(200, {"accepted": 3, "rejected": 0, "errors": []})
    post_body(Session(hostile_taken), "http://x", Body([20, 21], hostile={0: 20}, lines=[b"h", b"v"]), ledger)
    assert ledger.hostile_accepted_by_answer == [20]
    wrong_counts = Answer(200, {"accepted": 5, "rejected": 0, "errors": []})
    post_body(Session(wrong_counts), "http://x", Body([30], lines=[b"v"]), ledger)
    assert ledger.count_mismatches
    post_body(Session(Answer(429, {})), "http://x", Body([40], lines=[b"v"]), ledger)
    assert list(ledger.array("refused")) == [40]


def test_the_plan_never_overlaps_a_stack_kill_with_a_full_disk_and_expects_each_quarantine_alert():
    from bench.soak.plan import FAULT_KINDS, QUARANTINE_RULE, RESTARTS, Plan, SoakConfig, corrupt_batch_id

    for minutes in (1, 2, 10):
        plan = Plan.build(SoakConfig(minutes=minutes, faults=FAULT_KINDS))
        kills = [f for f in plan.faults if f.kind in RESTARTS]
        fulls = [f for f in plan.faults if f.kind == "disk_full"]
        assert kills and fulls
        assert len([f for f in plan.faults if f.kind == "kill_dask_scheduler"]) == plan.rounds
        assert {f.kind for f in kills} == ({"kill_stack", "kill_ray_head"} if plan.rounds > 1 else {"kill_stack"})
        for kill in kills:  # a restart takes well under 0.3 of a round; no disk_full in that time
            assert not any(kill.at <= full.at <= kill.at + 0.3 * plan.round_length for full in fulls)
        expected = {i.key for i in plan.incidents if i.rule == QUARANTINE_RULE}
        assert expected == {corrupt_batch_id(r) for r in range(1, plan.rounds + 1)}
    default = Plan.build(SoakConfig(minutes=2))
    assert not {"disk_full", "kill_ray_head"} & {f.kind for f in default.faults}


def test_the_short_round_keeps_each_incident_over_its_fault_and_the_burst_before_the_stack_kill():
    from bench.soak.plan import Plan, SoakConfig

    plan = Plan.build(SoakConfig(minutes=MINUTES, rate=RATE, burst_seconds=BURST_SECONDS))
    faults = {fault.kind: fault for fault in plan.faults}
    assert plan.rounds == 1 and set(faults) == {"channels_outage", "kill_collector", "kill_dask_worker", "burst",
                                                "kill_detector_actors", "corrupt_spool", "kill_dask_scheduler",
                                                "kill_stack"}

    def spans(key: str, kind: str) -> bool:
        incident = next(i for i in plan.incidents if i.key == key)
        return incident.start < faults[kind].at < incident.start + incident.span

    assert spans("soak-pay-r1", "kill_dask_scheduler") and spans("u-soak-r1", "kill_collector")
    assert spans("soak-cart-r1", "kill_dask_worker") and spans("soak-ledger-r1", "kill_detector_actors")
    outage = faults["channels_outage"]
    assert outage.at < min(i.start for i in plan.incidents if i.span) < outage.at + outage.seconds
    assert faults["burst"].at + faults["burst"].seconds <= faults["kill_stack"].at
    assert max(i.start + i.span for i in plan.incidents) < faults["kill_stack"].at


def test_quarantine_verdict_reads_garbage_batches_and_catches_missing_corrupted_records(tmp_path):
    from bench.soak.ledger import Ledger
    from bench.soak.verify import quarantined

    pattern = r"soak-x-([0-9]+)"
    ledger = Ledger()
    ledger.record("spool", "corrupted", [7, 8])
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "b1.parquet").write_bytes(b"PAR1\x00\xff soak-x-7 garbage soak-x-8 \x01")
    found = quarantined(failed, pattern, ledger)
    assert (found["unreadable_batches"], found["records"], found["corrupted_records_not_in_failed"]) == (1, 2, 0)
    (failed / "b1.parquet").write_bytes(b"PAR1 soak-x-7")
    assert quarantined(failed, pattern, ledger)["corrupted_records_not_in_failed"] == 1


def test_throughput_leaves_out_the_windows_a_fault_stopped_acknowledgements():
    from bench.soak.ledger import Ledger
    from bench.soak.plan import Plan, SoakConfig
    from bench.soak.verify import pauses, throughput

    config = SoakConfig(minutes=1, rate=100, faults=())
    plan = Plan.build(config)
    ledger = Ledger()
    ledger.start(0.0)
    for second in range(60):
        ledger.record("http", "acked", list(range(second * 1000, second * 1000 + (0 if 20 <= second < 40 else 100))),
                      at=second + 0.5)
    assert not throughput(config, plan, ledger, 60.0, 0)["ok"]
    events = [{"kind": "kill_stack", "injected": True, "window_s": [20.0, 39.0]}]
    assert throughput(config, plan, ledger, 60.0, 0, pauses(events))["ok"]


def test_a_skipped_fault_is_reported_and_an_unrecovered_one_fails():
    from bench.soak.plan import Fault, Plan
    from bench.soak.verify import faults_recovered

    plan = Plan(60.0, 1, 60.0, faults=[Fault("disk_full", 1.0, 20.0), Fault("kill_stack", 50.0)])
    skipped = {"kind": "disk_full", "injected": False, "skipped": True, "error": "no tmpfs"}
    good = {"kind": "kill_stack", "injected": True, "recovered": True}
    verdict = faults_recovered([skipped, good], plan)
    assert verdict["ok"] and verdict["skipped"]
    assert not faults_recovered([skipped, {**good, "recovered": False}], plan)["ok"]
    assert not faults_recovered([{**skipped, "skipped": False}, good], plan)["ok"]
