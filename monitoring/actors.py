"""Detectors on Ray: ``DetectorActor`` processes fed every batch as shared Arrow objects. By default the
ML rules share one actor and the other rules another (:func:`actor_layout`: an actor call costs more
CPU than most rules spend on a batch); a sharded rule has one actor per shard.

Keys of a rule with ``shards: N`` are spread over N actors by a stable hash of the (tenant, group-by key);
every shard is told the newest event time of the whole batch, so event time (and silence
detection) moves on even for a shard that got no rows.

Faults: actors restart (``max_restarts``) and resume from their checkpoint
(``<checkpoint_dir>/<rule>/<shard>.ckpt``, one per rule even in a group, written every
``checkpoint_every`` calls or ``checkpoint_seconds``). Each call carries a sequence number, and each
rule of an actor remembers the last it applied; a restarted actor that missed calls says so, and the pool replays them from the calls it keeps (those after the oldest checkpoint).
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


class _Member:
    """One rule of a detector actor: its DetectorSet, its checkpoint file and how far it got.

    Each member keeps its own call position, so that a rule added to a running group (or restored from an
    older checkpoint than the others) takes only the calls it has not applied."""

    def __init__(self, spec: RuleSpec, shard: int, session: str, checkpoint_dir: str | None,
                 start_seq: int | None, carried: tuple[int | None, dict[str, Any]] | None = None) -> None:
        self.spec = spec
        self.detectors = DetectorSet([spec])
        self.applied_seq: int | None = start_seq
        self.checkpointed_seq: int | None = None
        self.restored = False
        self.store = CheckpointStore(checkpoint_dir, spec.name, shard) if checkpoint_dir else None
        checkpoint = self.store.load(spec.fingerprint) if self.store is not None else None
        if checkpoint is not None:
            self.detectors.restore(checkpoint.snapshot)
            self.restored = True
            if checkpoint.session == session:
                self.applied_seq = self.checkpointed_seq = checkpoint.applied_seq
            log.info("rule %s shard %d resumed from its checkpoint (call %s)", spec.name, shard,
                     checkpoint.applied_seq)
        if carried is not None and (not self.restored or (carried[0] or 0) >= (self.applied_seq or 0)):
            # the state the rule had in the actor this one replaces (unless a later checkpoint of its own)
            self.applied_seq = carried[0]
            self.detectors.restore(carried[1])
            self.restored = True

    def apply(self, seq: int, batch_id: str | None, records: pa.Table | None, event_time_us: int | None,
              cache: dict[Any, Any]) -> list[Anomaly]:
        """Apply call ``seq`` unless this rule has it already."""
        if self.applied_seq is not None and seq <= self.applied_seq:
            return []
        if batch_id is None:
            anomalies = self.detectors.advance(event_time_us) if event_time_us is not None else []
        else:
            anomalies = self.detectors.process(batch_id, records, event_time_us, cache)
        self.applied_seq = seq
        return anomalies

    def save(self, session: str) -> None:
        """Write this rule's checkpoint (OSError on a full disk: the previous one stays)."""
        if self.store is None or self.applied_seq is None or self.applied_seq == self.checkpointed_seq:
            return
        self.store.save(Checkpoint(self.spec.fingerprint, session, self.applied_seq, self.detectors.snapshot()))
        self.checkpointed_seq = self.applied_seq


def _lowest(values: list[int | None]) -> int | None:
    """The lowest position, None when any is None (that member takes any call)."""
    return None if any(v is None for v in values) else min(values, default=None)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class DetectorActor:
    """One shard of a group of rules on Ray (one call a batch for all of them). Returns anomalies as plain
    dicts."""

    def __init__(self, specs: list[RuleSpec], shard: int = 0, session: str = "", checkpoint_dir: str | None = None,
                 checkpoint_every: int = 40, checkpoint_seconds: float = 5.0, start_seq: int | None = None,
                 carried: dict[str, tuple[int | None, dict[str, Any]]] | None = None) -> None:
        logging.basicConfig(level=logging.INFO)
        self.shard, self.session = shard, session
        carried = carried or {}
        self.members = [_Member(spec, shard, session, checkpoint_dir, start_seq, carried.get(spec.name))
                        for spec in specs]
        self.every, self.seconds = checkpoint_every, checkpoint_seconds
        self.checkpoint_failures = 0
        self._checkpoint_at = time.monotonic()

    @property
    def applied_seq(self) -> int | None:
        """The call every member has applied (the lowest position)."""
        return _lowest([m.applied_seq for m in self.members])

    @property
    def checkpointed_seq(self) -> int | None:
        """The call every member's checkpoint covers."""
        return _lowest([m.checkpointed_seq for m in self.members])

    def _reply(self, anomalies: list[Anomaly]) -> dict[str, Any]:
        return {"anomalies": [a.to_dict() for a in anomalies], "applied": self.applied_seq,
                "checkpointed": self.checkpointed_seq,
                "progress": {m.spec.name: progress_of(m.detectors.rules.values()) for m in self.members}}

    def _apply(self, seq: int, batch_id: str | None, records: pa.Table | None, event_time_us: int | None) -> list:
        cache: dict[Any, Any] = {}  # filters shared by the rules of the group within this batch
        return [a for m in self.members for a in m.apply(seq, batch_id, records, event_time_us, cache)]

    def _maybe_checkpoint(self, force: bool = False) -> None:
        applied = self.applied_seq
        if applied is None or not any(m.store is not None for m in self.members):
            return
        due = (applied - (self.checkpointed_seq or 0) >= self.every
               or time.monotonic() - self._checkpoint_at >= self.seconds)
        if not (force or due):
            return
        try:
            for member in self.members:
                member.save(self.session)
        except OSError as exc:
            # A full data disk: the call was applied and its anomalies must still be answered. The
            # previous checkpoints stay (the pool keeps the calls after them for a replay); the next
            # attempt comes ``seconds`` later.
            self.checkpoint_failures += 1
            log.warning("shard %d of %s: checkpoint not written (%s); calls after %s stay replayable",
                        self.shard, self._names(), exc, self.checkpointed_seq)
        self._checkpoint_at = time.monotonic()

    def _names(self) -> str:
        return ", ".join(m.spec.name for m in self.members)

    def call(self, seq: int, batch_id: str | None, records: pa.Table | None,
             event_time_us: int | None) -> dict[str, Any]:
        """Apply call ``seq`` (a batch, or an advance when ``batch_id`` is None) unless calls are missing."""
        applied = self.applied_seq
        if applied is not None and seq <= applied:
            return self._reply([])
        if applied is not None and seq != applied + 1:
            return {"missing_after": applied}
        anomalies = self._apply(seq, batch_id, records, event_time_us)
        self._maybe_checkpoint()
        return self._reply(anomalies)

    def call_many(self, calls: list[tuple[int, str | None, Any, int | None]]) -> dict[str, Any]:
        """Apply consecutive calls (records as object refs) in one round trip, unless calls before them
        are missing; those applied already are skipped."""
        applied = self.applied_seq
        if applied is not None and calls[0][0] > applied + 1:
            return {"missing_after": applied}
        anomalies: list[Anomaly] = []
        for seq, batch_id, ref, event_time_us in calls:
            if applied is None or seq > applied:
                anomalies += self._apply(seq, batch_id, ray.get(ref) if ref is not None else None, event_time_us)
        self._maybe_checkpoint()
        return self._reply(anomalies)

    def replay(self, calls: list[tuple[int, str | None, Any, int | None]]) -> dict[str, Any]:
        """Apply kept calls in order (records as object refs); each member skips those it applied already."""
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
        for member in self.members:
            if member.applied_seq is None or member.applied_seq < seq:
                member.applied_seq = seq

    def checkpoint(self) -> int | None:
        """Write a checkpoint now; the call sequence it covers."""
        self._maybe_checkpoint(force=True)
        return self.checkpointed_seq

    def export(self, names: list[str]) -> dict[str, tuple[int | None, dict[str, Any]]]:
        """The state of the rules ``names`` (call position and DetectorSet snapshot), for the actor that
        replaces this one when its group changes."""
        return {m.spec.name: (m.applied_seq, m.detectors.snapshot()) for m in self.members if m.spec.name in names}

    def stats(self) -> dict[str, Any]:
        """Per rule: the DetectorSet's statistics and the rule's call and checkpoint positions."""
        return {"shard": self.shard, "checkpoint_failures": self.checkpoint_failures,
                "members": {m.spec.name: {"rules": m.detectors.stats(), "applied": m.applied_seq,
                                          "checkpointed": m.checkpointed_seq, "restored": m.restored}
                            for m in self.members}}


@dataclass
class _Shard:
    actor: Any
    checkpointed: int | None = None


@dataclass
class _Unit:
    """The rules that share one actor per shard: a group of unsharded rules, or one sharded rule."""

    name: str
    specs: list[RuleSpec]
    shards: list[_Shard] = field(default_factory=list)

    @property
    def split(self) -> tuple | None:
        """How a batch is split over this unit's shards (None: its one actor takes the batch whole)."""
        spec = self.specs[0]
        return (spec.group_by, len(self.shards)) if len(self.shards) > 1 else None

    @property
    def fingerprint(self) -> tuple[str, ...]:
        return tuple(spec.fingerprint for spec in self.specs)

    @property
    def rule_names(self) -> list[str]:
        return [spec.name for spec in self.specs]


@dataclass
class _Call:
    seq: int
    batch_id: str | None
    refs: dict[tuple | None, list[Any]]  # per split of the batch (None: whole), one ref per shard
    event_time_us: int | None


def actor_layout(rules: RulesFile, grouped: bool = True) -> list[tuple[str, list[RuleSpec]]]:
    """Which rules share an actor: every sharded rule has its own actors (one per shard); with ``grouped``
    the ML rules share one actor and the other rules another (one call a batch for each group instead of
    one per rule: an actor call costs milliseconds of CPU, more than most rules spend on a batch), else
    every rule has its own. Returns (unit name, rules) pairs."""
    layout: list[tuple[str, list[RuleSpec]]] = []
    groups: dict[str, list[RuleSpec]] = {}
    for spec in rules.rules:
        if spec.shards > 1 or not grouped:
            layout.append((spec.name, [spec]))
        else:
            groups.setdefault("group:ml" if spec.kind == "ml" else "group:rules", []).append(spec)
    return [(name, specs) for name, specs in sorted(groups.items())] + layout


class DetectorPool:
    """The running detectors of a rules file on Ray actors (see :func:`actor_layout`); thread-safe.

    ``checkpoint_dir`` (e.g. ``<data-dir>/monitoring/checkpoints``) turns on checkpoints; without it a
    restarted actor starts empty."""

    def __init__(self, rules: RulesFile, checkpoint_dir: str | Path | None = None, *, checkpoint_every: int = 40,
                 checkpoint_seconds: float = 5.0, grouped: bool = True) -> None:
        self._lock = threading.RLock()
        self.checkpoint_dir = str(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.grouped = grouped
        self.session = uuid.uuid4().hex
        self._units: dict[str, _Unit] = {}
        self._specs: dict[str, RuleSpec] = {}
        self._calls: deque[_Call] = deque()
        self._seq = 0
        self._emitted: OrderedDict[str, None] = OrderedDict()
        self.replayed_calls = 0
        self.unavailable: str | None = None  # why the detectors cannot be reached any more
        self._abandoned = False
        self.metrics = DetectorMetrics()  # served by the driver's /metrics; actors report with their replies
        self.reload(rules)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until every actor has started (its code imported, its rules built), so that the first
        batch does not wait for that."""
        with self._lock:
            refs = [shard.actor.stats.remote() for unit in self._units.values() for shard in unit.shards]
        ray.get(refs, timeout=timeout)

    # rules ---------------------------------------------------------------------------------
    def _start(self, name: str, specs: list[RuleSpec], checkpointed: int | None,
               carried: dict[str, tuple[int | None, dict[str, Any]]] | None = None) -> _Unit:
        count = max(1, specs[0].shards) if len(specs) == 1 else 1
        shards = [_Shard(DetectorActor.options(name=None).remote(
            specs, shard, self.session, self.checkpoint_dir, self.checkpoint_every, self.checkpoint_seconds,
            self._seq, carried), checkpointed) for shard in range(count)]
        return _Unit(name, specs, shards)

    def reload(self, rules: RulesFile) -> dict[str, list[str]]:
        """Start, replace or stop actors so they match ``rules``; unchanged rules keep their state (an actor
        whose group changed is replaced, and its unchanged rules carry their state into the new one)."""
        wanted = rules.by_name()
        with self._lock:
            changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "kept": []}
            for name, spec in self._specs.items():
                if name not in wanted:
                    changes["removed"].append(name)
                elif spec.fingerprint != wanted[name].fingerprint:
                    changes["changed"].append(name)
                else:
                    changes["kept"].append(name)
            changes["added"] = [name for name in wanted if name not in self._specs]
            layout = dict(actor_layout(rules, self.grouped))
            carried: dict[str, tuple[int | None, dict[str, Any]]] = {}
            positions: dict[str, int | None] = {}
            for name in list(self._units):
                unit = self._units[name]
                specs = layout.get(name)
                if specs is None or [s.fingerprint for s in specs] != list(unit.fingerprint):
                    self._retire(self._units.pop(name), set(changes["kept"]), carried, positions)
            for name in changes["changed"] + changes["removed"]:
                if name in changes["removed"]:
                    self.metrics.forget(name)
                if self.checkpoint_dir:
                    CheckpointStore.remove_rule(self.checkpoint_dir, name)
            for name, specs in layout.items():
                if name not in self._units:
                    kept = [positions[s.name] for s in specs if s.name in positions]
                    self._units[name] = self._start(name, specs, _lowest(kept) if kept else self._seq,
                                                    {s.name: carried[s.name] for s in specs if s.name in carried})
            self._specs = dict(wanted)
            self.rules = rules
            self.columns = frozenset(detector_columns(rules))
        return changes

    def _retire(self, unit: _Unit, kept: set[str], carried: dict[str, tuple[int | None, dict[str, Any]]],
                positions: dict[str, int | None]) -> None:
        """Stop ``unit``'s actors; the state of its rules in ``kept`` goes into ``carried`` (or, when the actor
        cannot give it, they resume from their checkpoints), the call its checkpoints cover into ``positions``."""
        moving = [name for name in unit.rule_names if name in kept]
        if moving and len(unit.shards) == 1:
            try:
                carried.update(ray.get(unit.shards[0].actor.export.remote(moving), timeout=60))
            except Exception as exc:  # noqa: BLE001 - a dead actor: its rules resume from their checkpoints
                log.warning("detector actor %s: its rules' state could not be carried over (%r); they resume "
                            "from their checkpoints", unit.name, exc)
        for name in moving:
            positions[name] = unit.shards[0].checkpointed if self.checkpoint_dir else self._seq
        self._stop(unit)

    @staticmethod
    def _stop(unit: _Unit) -> None:
        for shard in unit.shards:
            ray.kill(shard.actor)

    # data ----------------------------------------------------------------------------------
    def process(self, batch_id: str, records: pa.Table) -> list[Anomaly]:
        """Fan a batch out to every actor; the anomalies, in event-time order."""
        return self.process_many([(batch_id, records)])

    def process_many(self, batches: list[tuple[str, pa.Table]],
                     on_anomalies: Callable[[list[Anomaly]], None] | None = None) -> list[Anomaly]:
        """Fan batches out to every actor, in order, with one call per actor for all of them (a call costs
        milliseconds of CPU per actor, more on a busy machine); the anomalies, in event-time order.
        ``on_anomalies`` gets each actor's anomalies as soon as it answers, so that a slow rule (an ML model
        scoring a minute) does not hold back the alerts of the others."""
        self._check_usable()
        with self._lock:
            per_shard: dict[tuple[str, int], list[tuple[int, str | None, Any, int | None]]] = {}
            for batch_id, records in batches:
                self._seq += 1
                self.metrics.batch(records.num_rows)
                newest = newest_event_us(records)
                refs = self._put(records)
                self._calls.append(_Call(self._seq, batch_id, refs, newest))
                for name, unit in self._units.items():
                    for index, ref in enumerate(refs[unit.split]):
                        per_shard.setdefault((name, index), []).append((self._seq, batch_id, ref, newest))
            pending = [(self._units[name], index, calls[-1][0], self._sender(self._units[name], index, calls))
                       for (name, index), calls in per_shard.items()]
            return self._run(pending, on_anomalies)

    def _put(self, records: pa.Table) -> dict[tuple | None, list[Any]]:
        """The batch in Ray's object store (only the columns the rules read), split by key for sharded
        rules: the refs of each split, one per shard."""
        records = records.select([name for name in records.column_names if name in self.columns])
        refs: dict[tuple | None, list[Any]] = {None: [ray.put(records)]}
        for unit in self._units.values():
            split = unit.split
            if split is not None and split not in refs:
                refs[split] = [ray.put(t) for t in split_by_key(records, *split)]
        return refs

    @staticmethod
    def _sender(unit: _Unit, index: int, calls: list[tuple[int, str | None, Any, int | None]]) -> Callable[[], Any]:
        """What sends ``calls`` to the shard (again, after its actor failed)."""
        actor = unit.shards[index].actor
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
            return self._run([(unit, index, self._seq, self._sender(unit, index, [call]))
                              for unit in self._units.values() for index in range(len(unit.shards))])

    def _check_usable(self) -> None:
        """Refuse work once abandoned: a batch must not be taken as seen by detectors that are gone."""
        if self._abandoned:
            raise RuntimeError(f"the detectors are gone with their Ray cluster ({self.unavailable or 'lost'})")

    def _run(self, pending: list[tuple[_Unit, int, int, Callable[[], Any]]],
             on_anomalies: Callable[[list[Anomaly]], None] | None = None) -> list[Anomaly]:
        """Send every shard its calls (``send``, up to call ``seq``), then collect the replies in the order
        they come."""
        sent = {send(): (unit, index, seq, send) for unit, index, seq, send in pending}
        anomalies: list[Anomaly] = []
        waiting = list(sent)
        while waiting:
            (ref,), waiting = ray.wait(waiting, num_returns=1)
            unit, index, seq, send = sent[ref]
            fresh = self._collect(unit, index, ref, seq, send)
            if fresh and on_anomalies is not None:
                on_anomalies(sorted(fresh, key=anomaly_order))
            anomalies += fresh
        self._trim()
        return sorted(anomalies, key=anomaly_order)

    def _collect(self, unit: _Unit, index: int, ref: Any, seq: int, send: Callable[[], Any]) -> list[Anomaly]:
        shard = unit.shards[index]
        for attempt in range(CALL_ATTEMPTS):
            if self._abandoned:
                break
            try:
                reply = ray.get(ref)
            except RayActorError as exc:
                for name in unit.rule_names:
                    self.metrics.actor_failed(name, index)
                log.warning("detector actor %s shard %d: failed (%s); retrying on its restart", unit.name, index,
                            type(exc).__name__)
                time.sleep(min(0.2 * (attempt + 1), 2.0))
                ref = send()
                continue
            if "missing_after" in reply:
                ref = self._replay(unit, index, reply["missing_after"], seq)
                continue
            shard.checkpointed = reply["checkpointed"] if reply["checkpointed"] is not None else shard.checkpointed
            fresh = self._fresh([Anomaly.from_dict(d) for d in reply["anomalies"]])
            progress = reply.get("progress") or {}
            for name in unit.rule_names:
                self.metrics.reply(name, index, progress.get(name), [a for a in fresh if a.rule == name])
            return fresh
        self.unavailable = f"detector actor {unit.name} shard {index}: unavailable after {CALL_ATTEMPTS} attempts"
        raise RuntimeError(self.unavailable)

    def _replay(self, unit: _Unit, index: int, applied: int | None, seq: int) -> Any:
        shard = unit.shards[index]
        kept = [c for c in self._calls if (applied is None or c.seq > applied) and c.seq <= seq]
        if applied is not None and (not kept or kept[0].seq != applied + 1):
            log.error("detector actor %s shard %d: calls %s..%d are no longer kept; window state has a gap",
                      unit.name, index, applied + 1, seq)
            ray.get(shard.actor.restart_sequence.remote(seq - 1))
            kept = [c for c in self._calls if c.seq == seq]
        calls = []
        for call in kept:
            refs = call.refs.get(unit.split) if call.batch_id is not None else None
            if call.batch_id is not None and refs is None:
                continue  # no rule of this unit existed yet
            calls.append((call.seq, call.batch_id, None if refs is None else refs[index], call.event_time_us))
        self.replayed_calls += len(calls)
        log.info("detector actor %s shard %d: replaying %d calls after its checkpoint", unit.name, index, len(calls))
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
        oldest_needed = min((s.checkpointed or 0 for u in self._units.values() for s in u.shards), default=self._seq)
        if not self.checkpoint_dir:
            oldest_needed = self._seq
        while self._calls and (self._calls[0].seq <= oldest_needed or len(self._calls) > MAX_KEPT_CALLS):
            self._calls.popleft()

    # inspection ----------------------------------------------------------------------------
    def rule_names(self) -> list[str]:
        """The rules that have actors."""
        return sorted(self._specs)

    def actor_units(self) -> dict[str, list[str]]:
        """Which rules each actor unit runs (unit name -> rule names)."""
        return {name: unit.rule_names for name, unit in self._units.items()}

    def _unit_of(self, rule: str) -> _Unit:
        return next(unit for unit in self._units.values() if rule in unit.rule_names)

    def actors(self, rule: str) -> list[Any]:
        """The handles of the actors that run ``rule`` (one per shard)."""
        return [s.actor for s in self._unit_of(rule).shards]

    def stats(self) -> dict[str, list[dict[str, Any]]]:
        """Per rule, each shard's statistics (event time, late events, state size, checkpoint, restored)."""
        with self._lock:
            refs = {name: [s.actor.stats.remote() for s in unit.shards] for name, unit in self._units.items()}
        out: dict[str, list[dict[str, Any]]] = {}
        for shard_refs in refs.values():
            for stats in ray.get(shard_refs):
                for rule, member in stats["members"].items():
                    out.setdefault(rule, []).append({**member, "shard": stats["shard"],
                                                     "checkpoint_failures": stats["checkpoint_failures"]})
        return out

    def checkpoint(self) -> None:
        """Write every actor's checkpoint now (e.g. before a planned shutdown)."""
        with self._lock:
            for unit in self._units.values():
                for shard, seq in zip(unit.shards, ray.get([s.actor.checkpoint.remote() for s in unit.shards])):
                    shard.checkpointed = seq

    def shutdown(self, cluster_lost: bool = False) -> None:
        """Checkpoint (when enabled), then stop every actor; checkpoints stay for the next start. With
        ``cluster_lost`` (the Ray head died, and the actors with it), only forget them: a call waiting for
        an actor gives up, and nothing waits on the lock a call holds."""
        if cluster_lost:
            self._abandoned = True
            self._units = {}
            self._calls = deque()
            return
        with self._lock:
            if self.checkpoint_dir:
                try:
                    self.checkpoint()
                except Exception:  # noqa: BLE001 - stopping must not fail on a dead actor
                    log.exception("final checkpoint failed")
            for unit in self._units.values():
                self._stop(unit)
            self._units.clear()
            self._calls.clear()
