"""Detectors on Ray: one ``DetectorActor`` per (rule, shard), fed every batch as shared Arrow objects.

Keys of a rule with ``shards: N`` are spread over N actors by a stable hash of the (tenant, group-by key);
every shard is told the newest event time of the whole batch, so event time (and silence
detection) moves on even for a shard that got no rows.

Faults: actors restart (``max_restarts``) and resume from their checkpoint
(``<checkpoint_dir>/<rule>/<shard>.ckpt``, written every ``checkpoint_every`` calls or
``checkpoint_seconds``). Each call carries a sequence number; a restarted actor that missed calls
says so, and the pool replays them from the calls it keeps (those after the oldest checkpoint).
Replays raise the same anomalies again (they are stamped in event time); the pool drops those it
has already handed out, so no alert is lost and none is repeated.

When the Ray head dies, every actor and object dies with it and the handles cannot be used with a new
head: a call that stays unanswered for ``CALL_ATTEMPTS`` attempts sets ``unavailable``, and the owner
(``logwarden up``) starts over; ``shutdown(cluster_lost=True)`` then neither checkpoints nor kills (the
checkpoints on disk stay as the actors last wrote them).
"""
from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import ray
from ray.exceptions import RayActorError

from logwarden.monitoring.anomaly import Anomaly
from logwarden.monitoring.checkpoint import Checkpoint, CheckpointStore
from logwarden.monitoring.engine import DetectorSet, anomaly_order
from logwarden.monitoring.handoff import detector_columns
from logwarden.monitoring.metrics import DetectorMetrics, progress_of
from logwarden.monitoring.rules import RulesFile, RuleSpec
from logwarden.monitoring.sharding import newest_event_us, split_by_key

log = logging.getLogger(__name__)
EMITTED_IDS = 100_000
MAX_KEPT_CALLS = 512
CALL_ATTEMPTS = 20


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class DetectorActor:
    """One shard of one rule on Ray. Returns anomalies as plain dicts."""

    def __init__(self, spec: RuleSpec, shard: int = 0, session: str = "", checkpoint_dir: str | None = None,
                 checkpoint_every: int = 40, checkpoint_seconds: float = 5.0, start_seq: int | None = None) -> None:
        logging.basicConfig(level=logging.INFO)
        self.spec, self.shard, self.session = spec, shard, session
        self.detectors = DetectorSet([spec])
        self.applied_seq: int | None = start_seq
        self.store = CheckpointStore(checkpoint_dir, spec.name, shard) if checkpoint_dir else None
        self.every, self.seconds = checkpoint_every, checkpoint_seconds
        self.checkpointed_seq: int | None = None
        self.checkpoint_failures = 0
        self.restored = False
        if self.store is not None:
            checkpoint = self.store.load(spec.fingerprint)
            if checkpoint is not None:
                self.detectors.restore(checkpoint.snapshot)
                self.restored = True
                if checkpoint.session == session:
                    self.applied_seq = self.checkpointed_seq = checkpoint.applied_seq
                log.info("rule %s shard %d resumed from its checkpoint (call %s)", spec.name, shard,
                         checkpoint.applied_seq)
        self._checkpoint_at = time.monotonic()

    def _reply(self, anomalies: list[Anomaly]) -> dict[str, Any]:
        return {"anomalies": [a.to_dict() for a in anomalies], "applied": self.applied_seq,
                "checkpointed": self.checkpointed_seq, "progress": progress_of(self.detectors.rules.values())}

    def _apply(self, seq: int, batch_id: str | None, records: pa.Table | None, event_time_us: int | None) -> list:
        if batch_id is None:
            anomalies = self.detectors.advance(event_time_us) if event_time_us is not None else []
        else:
            anomalies = self.detectors.process(batch_id, records, event_time_us)
        self.applied_seq = seq
        return anomalies

    def _maybe_checkpoint(self, force: bool = False) -> None:
        if self.store is None or self.applied_seq is None:
            return
        due = (self.applied_seq - (self.checkpointed_seq or 0) >= self.every
               or time.monotonic() - self._checkpoint_at >= self.seconds)
        if force or due:
            try:
                self.store.save(Checkpoint(self.spec.fingerprint, self.session, self.applied_seq,
                                           self.detectors.snapshot()))
            except OSError as exc:
                # A full data disk: the call was applied and its anomalies must still be answered. The
                # previous checkpoint stays (the pool keeps the calls after it for a replay); the next
                # attempt comes ``seconds`` later.
                self._checkpoint_at = time.monotonic()
                self.checkpoint_failures += 1
                log.warning("rule %s shard %d: checkpoint not written (%s); calls after %s stay replayable",
                            self.spec.name, self.shard, exc, self.checkpointed_seq)
                return
            self.checkpointed_seq = self.applied_seq
            self._checkpoint_at = time.monotonic()

    def call(self, seq: int, batch_id: str | None, records: pa.Table | None,
             event_time_us: int | None) -> dict[str, Any]:
        """Apply call ``seq`` (a batch, or an advance when ``batch_id`` is None) unless calls are missing."""
        if self.applied_seq is not None and seq <= self.applied_seq:
            return self._reply([])
        if self.applied_seq is not None and seq != self.applied_seq + 1:
            return {"missing_after": self.applied_seq}
        anomalies = self._apply(seq, batch_id, records, event_time_us)
        self._maybe_checkpoint()
        return self._reply(anomalies)

    def call_many(self, calls: list[tuple[int, str | None, Any, int | None]]) -> dict[str, Any]:
        """Apply consecutive calls (records as object refs) in one round trip, unless calls before them
        are missing; those applied already are skipped."""
        if self.applied_seq is not None and calls[0][0] > self.applied_seq + 1:
            return {"missing_after": self.applied_seq}
        anomalies: list[Anomaly] = []
        for seq, batch_id, ref, event_time_us in calls:
            if self.applied_seq is None or seq > self.applied_seq:
                anomalies += self._apply(seq, batch_id, ray.get(ref) if ref is not None else None, event_time_us)
        self._maybe_checkpoint()
        return self._reply(anomalies)

    def replay(self, calls: list[tuple[int, str | None, Any, int | None]]) -> dict[str, Any]:
        """Apply kept calls in order (records as object refs), skipping those applied already."""
        anomalies: list[Anomaly] = []
        for seq, batch_id, ref, event_time_us in calls:
            if self.applied_seq is not None and seq <= self.applied_seq:
                continue
            records = ray.get(ref) if ref is not None else None
            anomalies += self._apply(seq, batch_id, records, event_time_us)
        self._maybe_checkpoint(force=True)
        return self._reply(anomalies)

    def restart_sequence(self, seq: int) -> None:
        """Accept calls after ``seq`` (when the calls it missed are no longer kept)."""
        self.applied_seq = seq

    def checkpoint(self) -> int | None:
        """Write a checkpoint now; the call sequence it covers."""
        self._maybe_checkpoint(force=True)
        return self.checkpointed_seq

    def stats(self) -> dict[str, Any]:
        """The DetectorSet's statistics plus this shard's call and checkpoint positions."""
        return {"rules": self.detectors.stats(), "shard": self.shard, "applied": self.applied_seq,
                "checkpointed": self.checkpointed_seq, "restored": self.restored,
                "checkpoint_failures": self.checkpoint_failures}


@dataclass
class _Shard:
    actor: Any
    checkpointed: int | None = None


@dataclass
class _Rule:
    spec: RuleSpec
    shards: list[_Shard] = field(default_factory=list)


@dataclass
class _Call:
    seq: int
    batch_id: str | None
    refs: list[Any] | Any
    event_time_us: int | None


class DetectorPool:
    """The running detectors of a rules file, one Ray actor per (enabled rule, shard); thread-safe.

    ``checkpoint_dir`` (e.g. ``<data-dir>/monitoring/checkpoints``) turns on checkpoints; without it a
    restarted actor starts empty."""

    def __init__(self, rules: RulesFile, checkpoint_dir: str | Path | None = None, *, checkpoint_every: int = 40,
                 checkpoint_seconds: float = 5.0) -> None:
        self._lock = threading.RLock()
        self.checkpoint_dir = str(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.session = uuid.uuid4().hex
        self._rules: dict[str, _Rule] = {}
        self._calls: deque[_Call] = deque()
        self._seq = 0
        self._emitted: OrderedDict[str, None] = OrderedDict()
        self.replayed_calls = 0
        self.unavailable: str | None = None  # why the detectors cannot be reached any more
        self._abandoned = False
        self.metrics = DetectorMetrics()  # served by the driver's /metrics; actors report with their replies
        self.reload(rules)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until every actor has started (its code imported, its rule built), so that the first
        batch does not wait for that."""
        with self._lock:
            refs = [shard.actor.stats.remote() for rule in self._rules.values() for shard in rule.shards]
        ray.get(refs, timeout=timeout)

    # rules ---------------------------------------------------------------------------------
    def _start(self, spec: RuleSpec) -> _Rule:
        shards = [_Shard(DetectorActor.options(name=None).remote(
            spec, shard, self.session, self.checkpoint_dir, self.checkpoint_every, self.checkpoint_seconds,
            self._seq))
            for shard in range(max(1, spec.shards))]
        rule = _Rule(spec, shards)
        for shard in shards:
            shard.checkpointed = self._seq  # a new actor needs none of the calls made before it
        return rule

    def reload(self, rules: RulesFile) -> dict[str, list[str]]:
        """Start, replace or stop actors so they match ``rules``; unchanged rules keep their state."""
        wanted = rules.by_name()
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "kept": []}
        with self._lock:
            for name in list(self._rules):
                if name not in wanted:
                    self._stop(self._rules.pop(name), forget=True)
                    self.metrics.forget(name)
                    changes["removed"].append(name)
            for name, spec in wanted.items():
                current = self._rules.get(name)
                if current and current.spec.fingerprint == spec.fingerprint:
                    changes["kept"].append(name)
                    continue
                if current:
                    self._stop(current, forget=True)
                changes["changed" if current else "added"].append(name)
                self._rules[name] = self._start(spec)
            self.rules = rules
            self.columns = frozenset(detector_columns(rules))
        return changes

    def _stop(self, rule: _Rule, forget: bool) -> None:
        for shard in rule.shards:
            ray.kill(shard.actor)
        if forget and self.checkpoint_dir:
            CheckpointStore.remove_rule(self.checkpoint_dir, rule.spec.name)

    # data ----------------------------------------------------------------------------------
    def process(self, batch_id: str, records: pa.Table) -> list[Anomaly]:
        """Fan a batch out to every rule's shards; the anomalies, in event-time order."""
        return self.process_many([(batch_id, records)])

    def process_many(self, batches: list[tuple[str, pa.Table]],
                     on_anomalies: Callable[[list[Anomaly]], None] | None = None) -> list[Anomaly]:
        """Fan batches out to every rule's shards, in order, with one call per shard for all of them
        (a call costs about a millisecond per actor, more on a busy machine); the anomalies, in
        event-time order. ``on_anomalies`` gets each shard's anomalies as soon as it answers, so that a
        slow rule (an ML model scoring a minute) does not hold back the alerts of the others."""
        self._check_usable()
        with self._lock:
            per_shard: dict[tuple[str, int], list[tuple[int, str | None, Any, int | None]]] = {}
            for batch_id, records in batches:
                self._seq += 1
                self.metrics.batch(records.num_rows)
                newest = newest_event_us(records)
                refs_of = self._put(records)
                self._calls.append(_Call(self._seq, batch_id, {id(self._rules[n]): r for n, r in refs_of.items()},
                                         newest))
                for name, refs in refs_of.items():
                    for index, ref in enumerate(refs):
                        per_shard.setdefault((name, index), []).append((self._seq, batch_id, ref, newest))
            pending = [(self._rules[name], index, calls[-1][0], self._sender(self._rules[name], index, calls))
                       for (name, index), calls in per_shard.items()]
            return self._run(pending, on_anomalies)

    def _put(self, records: pa.Table) -> dict[str, list[Any]]:
        """The batch in Ray's object store (only the columns the rules read), split by key for sharded
        rules: each rule's refs, one per shard."""
        records = records.select([name for name in records.column_names if name in self.columns])
        shared = ray.put(records)
        splits: dict[tuple, list[Any]] = {}
        refs_of = {}
        for name, rule in self._rules.items():
            if len(rule.shards) == 1:
                refs_of[name] = [shared]
                continue
            split_key = (rule.spec.group_by, len(rule.shards))
            if split_key not in splits:
                splits[split_key] = [ray.put(t) for t in split_by_key(records, *split_key)]
            refs_of[name] = splits[split_key]
        return refs_of

    @staticmethod
    def _sender(rule: _Rule, index: int, calls: list[tuple[int, str | None, Any, int | None]]) -> Callable[[], Any]:
        """What sends ``calls`` to the shard (again, after its actor failed)."""
        actor = rule.shards[index].actor
        if len(calls) == 1:
            return functools.partial(actor.call.remote, *calls[0])
        return functools.partial(actor.call_many.remote, calls)

    def advance(self, event_time_us: int) -> list[Anomaly]:
        """Move every rule's event time forward (idle sources)."""
        self._check_usable()
        with self._lock:
            self._seq += 1
            self.metrics.advance()
            self._calls.append(_Call(self._seq, None, {}, event_time_us))
            call = (self._seq, None, None, event_time_us)
            return self._run([(rule, index, self._seq, self._sender(rule, index, [call]))
                              for rule in self._rules.values() for index in range(len(rule.shards))])

    def _check_usable(self) -> None:
        """Refuse work once abandoned: a batch must not be taken as seen by detectors that are gone."""
        if self._abandoned:
            raise RuntimeError(f"the detectors are gone with their Ray cluster ({self.unavailable or 'lost'})")

    def _run(self, pending: list[tuple[_Rule, int, int, Callable[[], Any]]],
             on_anomalies: Callable[[list[Anomaly]], None] | None = None) -> list[Anomaly]:
        """Send every shard its calls (``send``, up to call ``seq``), then collect the replies in the order
        they come."""
        sent = {send(): (rule, index, seq, send) for rule, index, seq, send in pending}
        anomalies: list[Anomaly] = []
        waiting = list(sent)
        while waiting:
            (ref,), waiting = ray.wait(waiting, num_returns=1)
            rule, index, seq, send = sent[ref]
            fresh = self._collect(rule, index, ref, seq, send)
            if fresh and on_anomalies is not None:
                on_anomalies(sorted(fresh, key=anomaly_order))
            anomalies += fresh
        self._trim()
        return sorted(anomalies, key=anomaly_order)

    def _collect(self, rule: _Rule, index: int, ref: Any, seq: int, send: Callable[[], Any]) -> list[Anomaly]:
        shard = rule.shards[index]
        for attempt in range(CALL_ATTEMPTS):
            if self._abandoned:
                break
            try:
                reply = ray.get(ref)
            except RayActorError as exc:
                self.metrics.actor_failed(rule.spec.name, index)
                log.warning("rule %s shard %d: actor failed (%s); retrying on its restart", rule.spec.name, index,
                            type(exc).__name__)
                time.sleep(min(0.2 * (attempt + 1), 2.0))
                ref = send()
                continue
            if "missing_after" in reply:
                ref = self._replay(rule, index, reply["missing_after"], seq)
                continue
            shard.checkpointed = reply["checkpointed"] if reply["checkpointed"] is not None else shard.checkpointed
            fresh = self._fresh([Anomaly.from_dict(d) for d in reply["anomalies"]])
            self.metrics.reply(rule.spec.name, index, reply.get("progress"), fresh)
            return fresh
        self.unavailable = f"rule {rule.spec.name} shard {index}: actor unavailable after {CALL_ATTEMPTS} attempts"
        raise RuntimeError(self.unavailable)

    def _replay(self, rule: _Rule, index: int, applied: int | None, seq: int) -> Any:
        shard = rule.shards[index]
        kept = [c for c in self._calls if (applied is None or c.seq > applied) and c.seq <= seq]
        if applied is not None and (not kept or kept[0].seq != applied + 1):
            log.error("rule %s shard %d: calls %s..%d are no longer kept; window state has a gap",
                      rule.spec.name, index, applied + 1, seq)
            ray.get(shard.actor.restart_sequence.remote(seq - 1))
            kept = [c for c in self._calls if c.seq == seq]
        calls = []
        for call in kept:
            refs = call.refs.get(id(rule)) if call.batch_id is not None else None
            if call.batch_id is not None and refs is None:
                continue  # the rule did not exist yet
            calls.append((call.seq, call.batch_id, None if refs is None else refs[index], call.event_time_us))
        self.replayed_calls += len(calls)
        log.info("rule %s shard %d: replaying %d calls after its checkpoint", rule.spec.name, index, len(calls))
        return shard.actor.replay.remote(calls)

    def _fresh(self, anomalies: list[Anomaly]) -> list[Anomaly]:
        out = []
        for anomaly in anomalies:
            if anomaly.id in self._emitted:
                continue
            self._emitted[anomaly.id] = None
            out.append(anomaly)
        while len(self._emitted) > EMITTED_IDS:
            self._emitted.popitem(last=False)
        return out

    def _trim(self) -> None:
        oldest_needed = min((s.checkpointed or 0 for r in self._rules.values() for s in r.shards), default=self._seq)
        if not self.checkpoint_dir:
            oldest_needed = self._seq
        while self._calls and (self._calls[0].seq <= oldest_needed or len(self._calls) > MAX_KEPT_CALLS):
            self._calls.popleft()

    # inspection ----------------------------------------------------------------------------
    def rule_names(self) -> list[str]:
        """The rules that have actors."""
        return sorted(self._rules)

    def actors(self, rule: str) -> list[Any]:
        """The actor handles of ``rule``'s shards."""
        return [s.actor for s in self._rules[rule].shards]

    def stats(self) -> dict[str, list[dict[str, Any]]]:
        """Per rule, each shard's statistics (event time, late events, state size, checkpoint)."""
        with self._lock:
            refs = {name: [s.actor.stats.remote() for s in rule.shards] for name, rule in self._rules.items()}
        return {name: ray.get(shard_refs) for name, shard_refs in refs.items()}

    def checkpoint(self) -> None:
        """Write every actor's checkpoint now (e.g. before a planned shutdown)."""
        with self._lock:
            for rule in self._rules.values():
                for shard, seq in zip(rule.shards, ray.get([s.actor.checkpoint.remote() for s in rule.shards])):
                    shard.checkpointed = seq

    def shutdown(self, cluster_lost: bool = False) -> None:
        """Checkpoint (when enabled), then stop every actor; checkpoints stay for the next start. With
        ``cluster_lost`` (the Ray head died, and the actors with it), only forget them: a call waiting for
        an actor gives up, and nothing waits on the lock a call holds."""
        if cluster_lost:
            self._abandoned = True
            self._rules = {}
            self._calls = deque()
            return
        with self._lock:
            if self.checkpoint_dir:
                try:
                    self.checkpoint()
                except Exception:  # noqa: BLE001 - stopping must not fail on a dead actor
                    log.exception("final checkpoint failed")
            for rule in self._rules.values():
                self._stop(rule, forget=False)
            self._rules.clear()
            self._calls.clear()
