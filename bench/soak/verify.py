"""The soak's verdicts: each promise is a dict with ``ok`` and the evidence behind it.

- ``lake_exactly_once``: every acknowledged record is in the lake exactly once; nothing that was
  refused, rejected or hostile is; records in doubt are there at most once; the records of the garbage
  batches the ``corrupt_spool`` fault dropped (``corrupted``, never acknowledged: lost by
  construction) are all in ``spool/failed`` and none in the lake;
- ``dead_letter``: every record the collector answered as rejected (and every hostile record of an
  acknowledged stream chunk) is in the dead-letter store, no acknowledged record is, and the
  collector's answers refused no valid record and accepted no hostile one;
- ``alerts_exactly_once``: every expected alert was delivered exactly once (firing) to its channel,
  recorded exactly once in the outbox and in the alert history; no other alert fired anywhere;
  resolved events (PagerDuty ``resolve``, Slack/e-mail ``[RESOLVED]``) are deliveries of their own
  kind: at most one per incident, and only for an incident that fired; no message is dead;
- ``faults_recovered``: every fault was injected (or skipped, saying why: ``disk_full`` without a
  tmpfs) and the stack recovered from it;
- ``clean_stop``: ``logwarden up`` stopped with status 0 and left no process behind;
- ``throughput``: the acknowledged rate outside bursts (and outside the windows in which ``logwarden up``
  was down after its kill or the data disk was full) is at least ``min_rate_ratio`` × the rate;
- ``memory``: no process of the stack went over ``max_rss_mb``.
"""
from __future__ import annotations

import base64
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.soak.channels import FIRING, RESOLVED, Delivery
from bench.soak.ledger import Ledger
from bench.soak.plan import Incident, Plan, SoakConfig
from logwarden.storage import Lake
from logwarden.storage.query import connect

SAMPLE = 10
PROBLEMS = 20


def _ids(values: Any) -> np.ndarray:
    return np.unique(np.asarray(values, dtype=np.int64))


def _sample(values: np.ndarray) -> list[int]:
    return [int(v) for v in values[:SAMPLE]]


def _id_sql(lake_dir: Path) -> tuple[Lake, str] | None:
    lake = Lake(lake_dir)
    if not any(lake.logs.rglob("*.parquet")):
        return None
    text = "coalesce(attributes, '') || ' ' || coalesce(message, '')"
    return lake, f"SELECT CAST(NULLIF(regexp_extract({text}, $pattern, 1), '') AS BIGINT) AS n FROM logs"


def lake_ids(lake_dir: Path, pattern: str) -> tuple[np.ndarray, int]:
    """The id of every row of the lake (with repeats), and how many rows carry no id of this run."""
    found = _id_sql(lake_dir)
    if found is None:
        return np.array([], dtype=np.int64), 0
    lake, ids = found
    con = connect(lake)
    try:
        rows = con.execute(f"SELECT n FROM ({ids}) WHERE n IS NOT NULL", {"pattern": pattern}).fetchnumpy()["n"]
        without = con.execute(f"SELECT count(*) FROM ({ids}) WHERE n IS NULL", {"pattern": pattern}).fetchone()[0]
    finally:
        con.close()
    return np.asarray(rows, dtype=np.int64), int(without)


def lake_distinct_ids(lake_dir: Path, pattern: str) -> int:
    """How many distinct ids of this run the lake holds (cheap enough to poll)."""
    found = _id_sql(lake_dir)
    if found is None:
        return 0
    lake, ids = found
    con = connect(lake)
    try:
        return int(con.execute(f"SELECT count(DISTINCT n) FROM ({ids})", {"pattern": pattern}).fetchone()[0])
    finally:
        con.close()


def dead_letter_ids(deadletter_dir: Path, pattern: str) -> tuple[np.ndarray, Counter, int]:
    """Ids found in the raw bytes of the dead-letter store (with repeats), the reasons, and letters
    carrying no id of this run."""
    regex = re.compile(pattern.encode())
    found, reasons, anonymous = [], Counter(), 0
    for path in sorted(deadletter_dir.glob("*.jsonl")):
        if path.name == "replayed.jsonl":
            continue
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            letter = orjson.loads(line)
            match = regex.search(base64.b64decode(letter["raw"]))
            reasons[letter.get("reason", "?")] += 1
            if match:
                found.append(int(match.group(1)))
            else:
                anonymous += 1
    return np.asarray(found, dtype=np.int64), reasons, anonymous


def quarantined(failed_dir: Path, pattern: str, ledger: Ledger) -> dict[str, Any]:
    """Spool batches processing gave up on (``spool/failed``): how many, their records, how many of
    those were acknowledged (evidence for a ``lake_exactly_once`` failure), and the ``corrupt_spool``
    fault's records (``corrupted`` in the ledger): each must be there. A file that is not Parquet (the
    fault's garbage) is searched for ids in its raw bytes."""
    files = sorted(failed_dir.glob("*.parquet")) if failed_dir.is_dir() else []
    found: list[int] = []
    unreadable = 0
    for path in files:
        ids = _parquet_ids(path, pattern)
        if ids is None:
            unreadable += 1
            ids = [int(m.group(1)) for m in re.finditer(pattern.encode(), path.read_bytes())]
        found += ids
    in_failed = _ids(found)
    acked = np.intersect1d(_ids(ledger.array("acked")), in_failed, assume_unique=True)
    corrupted = _ids(ledger.array("corrupted"))
    corrupted_missing = np.setdiff1d(corrupted, in_failed, assume_unique=True)
    return {"batches": len(files), "unreadable_batches": unreadable, "records": len(found),
            "acknowledged_records": int(len(acked)), "files_sample": [p.name for p in files[:5]],
            "corrupted_records": int(len(corrupted)),
            "corrupted_records_not_in_failed": int(len(corrupted_missing)),
            "corrupted_not_in_failed_sample": _sample(corrupted_missing)}


def _parquet_ids(path: Path, pattern: str) -> list[int] | None:
    """The ids of a Parquet batch (None when it cannot be read as Parquet)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception:  # noqa: BLE001 - any unreadable file is searched as raw bytes instead
        return None
    columns = [c for c in ("attributes", "message") if c in table.column_names]
    if not columns:
        return []
    text = pc.binary_join_element_wise(*[pc.fill_null(table[c].cast("string"), "") for c in columns], " ")
    ids = pc.extract_regex(text, pattern.replace("([0-9]+)", "(?P<n>[0-9]+)"))
    return [int(item["n"]) for item in ids.to_pylist() if item and item["n"]]


def check_lake(ledger: Ledger, lake_rows: np.ndarray, rows_without_id: int) -> dict[str, Any]:
    """``lake_exactly_once``."""
    acked = _ids(ledger.array("acked"))
    in_lake, counts = np.unique(lake_rows, return_counts=True)
    duplicated = in_lake[counts > 1]
    missing = np.setdiff1d(acked, in_lake, assume_unique=True)
    in_doubt = _ids(ledger.array("in_doubt"))
    not_acked = np.setdiff1d(in_lake, np.union1d(acked, in_doubt), assume_unique=True)
    refused_in_lake = np.intersect1d(_ids(ledger.array("refused")), in_lake, assume_unique=True)
    rejected_in_lake = np.intersect1d(_ids(ledger.array("rejected")), in_lake, assume_unique=True)
    hostile_in_lake = np.intersect1d(_ids(ledger.array("hostile")), in_lake, assume_unique=True)
    ok = not (len(missing) or len(duplicated) or len(not_acked) or rows_without_id)
    return {
        "ok": bool(ok), "acknowledged": int(len(acked)), "lake_rows": int(len(lake_rows) + rows_without_id),
        "lake_distinct_ids": int(len(in_lake)), "missing": int(len(missing)), "missing_sample": _sample(missing),
        "duplicated": int(len(duplicated)), "duplicated_sample": _sample(duplicated),
        "in_lake_but_never_acknowledged": int(len(not_acked)), "never_acknowledged_sample": _sample(not_acked),
        "of_which_refused": int(len(refused_in_lake)), "of_which_rejected": int(len(rejected_in_lake)),
        "of_which_hostile": int(len(hostile_in_lake)), "rows_without_soak_id": rows_without_id,
        "in_doubt": int(len(in_doubt)),
        "in_doubt_found_in_lake": int(len(np.intersect1d(in_doubt, in_lake, assume_unique=True))),
    }


def check_dead_letter(ledger: Ledger, letters: np.ndarray, reasons: Counter, anonymous: int,
                      lake_rows: np.ndarray) -> dict[str, Any]:
    """``dead_letter``."""
    rejected = _ids(ledger.array("rejected"))
    hostile = _ids(ledger.array("hostile"))
    lettered, counts = np.unique(letters, return_counts=True)
    missing = np.setdiff1d(rejected, lettered, assume_unique=True)
    acked_lettered = np.intersect1d(_ids(ledger.array("acked")), lettered, assume_unique=True)
    hostile_in_lake = np.intersect1d(hostile, np.unique(lake_rows), assume_unique=True)
    ok = not (len(missing) or len(acked_lettered) or len(hostile_in_lake) or ledger.valid_refused_by_answer
              or ledger.hostile_accepted_by_answer or ledger.count_mismatches)
    return {
        "ok": bool(ok), "rejected_acknowledged": int(len(rejected)), "letters": int(len(letters) + anonymous),
        "missing_from_dead_letter": int(len(missing)), "missing_sample": _sample(missing),
        "acknowledged_but_dead_lettered": int(len(acked_lettered)),
        "hostile_sent": int(len(hostile)), "hostile_kinds": dict(ledger.hostile_kinds),
        "hostile_in_lake": int(len(hostile_in_lake)), "hostile_in_lake_sample": _sample(hostile_in_lake),
        "valid_records_refused_by_answer": ledger.valid_refused_by_answer[:SAMPLE],
        "hostile_records_accepted_by_answer": ledger.hostile_accepted_by_answer[:SAMPLE],
        "answers_with_inconsistent_counts": ledger.count_mismatches[:SAMPLE],
        "letters_per_reason": dict(reasons), "letters_without_soak_id": anonymous,
        "letters_repeated": int((counts > 1).sum()),
    }


def read_outbox(alerts_dir: Path) -> list[dict]:
    """The outbox journal's lines."""
    path = alerts_dir / "outbox.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def check_alerts(plan: Plan, deliveries: list[Delivery], outbox: list[dict], history: dict[str, Any]) -> dict[str, Any]:
    """``alerts_exactly_once``: the problems found, by kind (each list cut to ``PROBLEMS`` entries)."""
    expected = {(i.rule, i.key, i.channel) for i in plan.incidents}
    fired_names = {(i.rule, i.key) for i in plan.incidents}
    delivered = Counter((d.rule, d.key, d.channel, d.status) for d in deliveries)
    routed = [e for e in outbox if e.get("event") == "routed"]
    # ML alerts (LOW, to the dashboard) are not planned: a soak longer than their warm-up may raise some
    # (each round's new keys bring new error templates); they are counted, not judged
    ml_alerts = Counter(e["rule"] for e in routed if e.get("kind") == "ml" and e["status"] == FIRING)
    journal = Counter((e["rule"], e["key"], e["channel"], e["status"]) for e in routed if e.get("kind") != "ml")
    problems: dict[str, list[str]] = {"missing": [], "repeated": [], "unexpected": [], "resolved": [],
                                      "outbox": [], "history": []}
    per_alert = []
    for rule, key, channel in sorted(expected):
        firing = delivered[(rule, key, channel, FIRING)]
        journaled = journal[(rule, key, channel, FIRING)]
        per_alert.append({"rule": rule, "key": key, "channel": channel, "delivered": firing, "outbox": journaled,
                          "resolved_delivered": delivered[(rule, key, channel, RESOLVED)]})
        if firing == 0:
            problems["missing"].append(f"{rule}:{key} never delivered to {channel}")
        elif firing > 1:
            problems["repeated"].append(f"{rule}:{key} delivered {firing} times to {channel}")
        if journaled != 1:
            problems["outbox"].append(f"{rule}:{key} in the outbox {journaled} times for {channel}")
    for source, counts in (("delivered", delivered), ("outbox", journal)):
        for (rule, key, channel, status), n in sorted(counts.items()):
            if status == FIRING and (rule, key, channel) not in expected:
                problems["unexpected"].append(f"{rule}:{key} {source} {n} times ({channel})")
            if status == RESOLVED and ((rule, key) not in fired_names or n > 1):
                problems["resolved"].append(f"resolved event of {rule}:{key} {source} {n} times ({channel})")
    for name, n in history.get("firing_per_incident", {}).items():
        if n != 1:
            problems["history"].append(f"the alert history holds {n} firing alerts of {name}")
    if history.get("dead_messages"):
        problems["history"].append(f"{len(history['dead_messages'])} alert message(s) given up (dead)")
    if history.get("waiting"):
        problems["history"].append(f"{history['waiting']} alert message(s) still waiting for delivery at the end")
    found = {kind: len(items) for kind, items in problems.items() if items}
    return {"ok": not found, "expected": len(expected),
            "delivered_exactly_once": sum(1 for a in per_alert if a["delivered"] == 1),
            "problem_counts": found, "problems": {kind: items[:PROBLEMS] for kind, items in problems.items() if items},
            "alerts": per_alert,
            "deliveries": {"firing": sum(n for k, n in delivered.items() if k[3] == FIRING),
                           "resolved": sum(n for k, n in delivered.items() if k[3] == RESOLVED)},
            "ml_alerts": dict(ml_alerts), "history": history}


def alert_history(alerts_dir: Path) -> dict[str, Any]:
    """From the alert store (``alerting.history``, read after the stack stopped): firing alerts per
    incident, dead messages, messages still waiting, and the delivery summary."""
    from logwarden.alerting import history

    alerts = history.list_alerts(alerts_dir, limit=100_000, with_deliveries=False)
    firing = Counter(a["dedup_key"] for a in alerts if a["status"] == "firing")
    summary = history.delivery_summary(alerts_dir)
    waiting = sum(states.get("pending", 0) + states.get("sending", 0) for channel, states in summary.items()
                  if channel in ("pagerduty", "slack", "email"))
    return {"firing_per_incident": dict(firing), "dead_messages": history.dead_letters(alerts_dir),
            "waiting": waiting, "delivery_summary": summary}


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    array = np.asarray(values)
    return {"n": len(values), "p50": round(float(np.percentile(array, 50)), 3),
            "p99": round(float(np.percentile(array, 99)), 3), "max": round(float(array.max()), 3)}


def latency(plan: Plan, ledger: Ledger, deliveries: list[Delivery], outbox: list[dict]) -> dict[str, Any]:
    """Ack-to-alert latency of each expected alert: from the acknowledgement of the record that
    crosses the threshold (the trigger-th record of the incident; for service_down, the first record
    acknowledged after the load started, which moves event time past the silence) to the outbox line
    (``routed_at``) and to the first delivery on the channel."""
    routed = {}
    for entry in outbox:
        if entry.get("event") == "routed" and entry["status"] == FIRING:
            routed.setdefault((entry["rule"], entry["key"], entry["channel"]), entry["routed_at"])
    delivered = {}
    for d in sorted(deliveries, key=lambda d: d.at):
        if d.status == FIRING:
            delivered.setdefault((d.rule, d.key, d.channel), d.at)
    to_outbox, to_channel, per_channel, rows = [], [], {}, []
    for incident in plan.incidents:
        trigger_at = _trigger_time(incident, ledger)
        key = (incident.rule, incident.key, incident.channel)
        if trigger_at is None:
            continue
        row = {"alert": incident.name, "channel": incident.channel}
        if key in routed:
            row["ack_to_outbox_s"] = round(routed[key] - trigger_at, 3)
            to_outbox.append(routed[key] - trigger_at)
        if key in delivered:
            row["ack_to_delivery_s"] = round(delivered[key] - trigger_at, 3)
            to_channel.append(delivered[key] - trigger_at)
            per_channel.setdefault(incident.channel, []).append(delivered[key] - trigger_at)
        rows.append(row)
    return {"ack_to_outbox_s": _percentiles(to_outbox), "ack_to_delivery_s": _percentiles(to_channel),
            "ack_to_delivery_per_channel_s": {c: _percentiles(v) for c, v in sorted(per_channel.items())},
            "per_alert": rows}


def _trigger_time(incident: Incident, ledger: Ledger) -> float | None:
    if incident.rule == "service_down":
        return ledger.first_ack_at
    trigger = ledger.incidents.get(incident.name)
    if trigger is None or len(trigger.ack_times) < incident.trigger:
        return None
    return trigger.ack_times[incident.trigger - 1]


def throughput(config: SoakConfig, plan: Plan, ledger: Ledger, load_seconds: float,
               dropped: float, pauses: list[tuple[float, float]] = ()) -> dict[str, Any]:
    """Acknowledged records per second: overall, outside bursts and pauses (the verdict) and during
    bursts. ``pauses``: (start, end) windows in which the stack could not acknowledge by design, from
    the faults' events: ``logwarden up`` killed until it is up again, the data disk full until the
    collector is ready again."""
    bursts = plan.burst_windows()
    in_burst = lambda second: any(start <= second < end for start, end in bursts)  # noqa: E731
    paused = lambda second: any(start <= second < end + 1 for start, end in pauses)  # noqa: E731
    seconds = range(int(load_seconds))
    steady = [ledger.acked_per_second.get(s, 0) for s in seconds if not in_burst(s) and not paused(s)]
    burst = [ledger.acked_per_second.get(s, 0) for s in seconds if in_burst(s)]
    acked = sum(ledger.acked_per_second.values())
    steady_rate = sum(steady) / len(steady) if steady else 0.0
    return {
        "ok": steady_rate >= config.min_rate_ratio * config.rate,
        "target_per_s": config.rate, "min_ratio": config.min_rate_ratio,
        "sustained_per_s": round(acked / load_seconds, 1) if load_seconds else 0.0,
        "steady_per_s": round(steady_rate, 1),
        "burst_target_per_s": config.rate * config.burst_factor if bursts else None,
        "burst_per_s": round(sum(burst) / len(burst), 1) if burst else None,
        "records_dropped_by_lagging_senders": int(dropped),
        "load_seconds": round(load_seconds, 1),
        "paused_windows_s": [[round(a, 1), round(b, 1)] for a, b in pauses],
        "paused_seconds_excluded": sum(1 for s in seconds if paused(s) and not in_burst(s)),
    }


def faults_recovered(events: list[dict], plan: Plan) -> dict[str, Any]:
    """``faults_recovered``."""
    skipped = [e for e in events if e.get("skipped")]  # e.g. disk_full where no tmpfs can be mounted
    planned = Counter(f.kind for f in plan.faults)
    planned.subtract(Counter(e["kind"] for e in skipped))
    planned = +planned
    injected = Counter(e["kind"] for e in events if e.get("injected"))
    unrecovered = [e for e in events if e.get("injected") and e.get("recovered") is False]
    failed = [e for e in events if not e.get("injected") and not e.get("skipped")]
    ok = injected == planned and not unrecovered and not failed
    return {"ok": ok, "planned": dict(planned), "injected": dict(injected), "not_recovered": unrecovered,
            "not_injected": failed, "skipped": [f"{e['kind']} (round {e.get('round')}): {e.get('error')}"
                                                for e in skipped]}


def pauses(events: list[dict]) -> list[tuple[float, float]]:
    """The windows (seconds after the load started) in which faults kept the stack from acknowledging."""
    return [tuple(e["window_s"]) for e in events if e.get("injected") and e.get("window_s")]


def memory(config: SoakConfig, peaks: dict[str, float], pids: dict[str, int], first: dict[str, float],
           last: dict[str, float]) -> dict[str, Any]:
    """``memory``: peak RSS (MB) per process role, and its RSS at the first and the last sample."""
    over = {role: round(mb, 1) for role, mb in peaks.items() if mb > config.max_rss_mb and not role.startswith("soak")}
    return {"ok": not over, "limit_mb": config.max_rss_mb, "over_limit": over,
            "peak_rss_mb": {role: round(mb, 1) for role, mb in sorted(peaks.items())},
            "first_and_last_rss_mb": {role: [round(first[role], 1), round(last.get(role, 0.0), 1)]
                                      for role in sorted(first)},
            "peak_pid": dict(sorted(pids.items()))}
