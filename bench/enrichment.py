"""Enrichment cost: the processing benchmark's structured records, each with a client address, through
the Dask spool pipeline without and with the security context (embedded GeoIP, 1 million threat
indicators, a user directory).

    python bench/enrichment.py [--batches 6] [--batch-size 50000] [--workers 2] [--indicators 1000000] [--rounds 3]

The records are those of ``bench/processing.py`` (the demo's traffic model) with a ``client_ip``
attribute drawn from 20,000 addresses (90 % public IPv4 spread over the address space, 5 % public
IPv6, 5 % private), 1 % of which are on the threat list. The indicator file holds ``--indicators``
lines: 94 % single IPv4 addresses, 2 % CIDRs, 3 % domains, 1 % SHA-256 hashes. Before timing, each
worker loads the indicators once (its load time is printed on its own: it is paid once per worker
and after each change of a file, not per batch). Plain and enriched passes alternate ``--rounds``
times on one Dask cluster. Prints JSON: records/s of each pass, the slowdown per round and of the
best pass of each, the CPU seconds the workers spent on each pass and the slowdown in CPU time (the
steadier figure on a machine that other processes load), the share of records with an address that got a country or a scope label, and
the threat matches; and one batch through both phases in the benchmark's own process, without and
with the context (CPU seconds, fastest of 5, interleaved).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.processing import structured_rows  # noqa: E402
from logwarden.clusters import DaskConnection  # noqa: E402
from logwarden.collector.spool import Spool  # noqa: E402
from logwarden.common.paths import DataDir  # noqa: E402
from logwarden.processing.config import ProcessingConfig  # noqa: E402
from logwarden.processing.enrich import Inventory  # noqa: E402
from logwarden.processing.batch import finalize_batch, prepare_batch  # noqa: E402
from logwarden.processing.pipeline import SpoolProcessor  # noqa: E402
from logwarden.processing.templates import TemplateMiner  # noqa: E402

ADDRESSES = 20_000
LISTED_SHARE = 0.01


def address_pool(rng: random.Random) -> list[str]:
    """Client addresses: public IPv4 (90 %), public IPv6 (5 %), private IPv4 (5 %)."""
    pool = []
    while len(pool) < ADDRESSES:
        roll = rng.random()
        if roll < 0.05:
            pool.append(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
        elif roll < 0.10:
            pool.append(str(ipaddress.IPv6Address((0x2A00 << 112) | rng.getrandbits(100))))
        else:
            address = ipaddress.IPv4Address(rng.randrange(1 << 24, 224 << 24))
            if address.is_global:
                pool.append(str(address))
    return pool


def write_indicators(path: Path, pool: list[str], count: int, rng: random.Random) -> int:
    """The threat list: some of the pool's addresses, then random addresses, CIDRs, domains and hashes."""
    listed = [a for a in pool if ":" not in a and not a.startswith("10.")][: int(len(pool) * LISTED_SHARE)]
    with path.open("w") as out:
        out.write("\n".join(listed) + "\n")
        for n in range(count - len(listed)):
            roll = n % 100
            if roll < 2:
                out.write(f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24\n")
            elif roll < 5:
                out.write(f"bad-{rng.getrandbits(40):010x}.example\n")
            elif roll < 6:
                out.write(f"{rng.getrandbits(256):064x}\n")
            else:
                out.write(f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}\n")
    return len(listed)


def write_users(path: Path, rng: random.Random) -> None:
    lines = ["user_id,name,department,privileged"]
    lines += [f"u-{n},User {n},{rng.choice(['Finance', 'Eng', 'Sales'])},{'yes' if n % 50 == 0 else 'no'}"
              for n in range(1000, 1400)]
    path.write_text("\n".join(lines) + "\n")


def make_spool(root: Path, batches: int, size: int, pool: list[str], rng: random.Random) -> int:
    spool = Spool(DataDir.at(root).create().spool)
    rows = structured_rows(size, 0)
    for row in rows:
        attributes = orjson.loads(row["attributes"]) if row.get("attributes") else {}
        attributes["client_ip"] = rng.choice(pool)
        row["attributes"] = orjson.dumps(attributes).decode()
    table = pa.Table.from_pylist(rows, schema=spool.schema)
    for b in range(batches):
        ids = pa.array([f"b{b}-{i}" for i in range(size)])
        batch = table.set_column(table.schema.get_field_index("record_id"), "record_id", ids)
        pq.write_table(batch, spool.path_of(f"{1_700_000_000_000 + b:013d}-bench-{b:06d}"), compression="zstd")
    return batches * size


class Tally:
    """Counts, from the batch outputs: records, those with an address, those enriched, threat matches."""

    def __init__(self) -> None:
        self.records = self.with_address = self.enriched = self.matched = self.privileged = 0
        self._lock = threading.Lock()

    def __call__(self, output) -> None:
        records = output.records
        with self._lock:
            self.records += records.num_rows
            if "client_ip" not in records.column_names:
                return
            scope = records["client_scope"]
            known = pc.or_(pc.not_equal(scope, "public"), pc.is_valid(records["client_country"]))
            self.with_address += records.num_rows - records["client_ip"].null_count
            self.enriched += pc.sum(pc.fill_null(known, False)).as_py() or 0
            self.matched += pc.sum(records["threat_matched"]).as_py() or 0
            self.privileged += pc.sum(pc.fill_null(records["user_privileged"], False)).as_py() or 0


def run(client, root: Path, workers: int, inventory: Inventory | None) -> tuple[float, float, Tally]:
    """(wall seconds, CPU seconds of the workers, tally) of one pass over the spool under ``root``. The
    CPU seconds are the work done, which the other processes of a loaded machine disturb less."""
    tally = Tally()
    processor = SpoolProcessor(client, DataDir.at(root), tally, max_in_flight=2 * workers, inventory=inventory)
    cpu_before = sum(client.run(_cpu_seconds).values())
    started = time.perf_counter()
    processor.start()
    while processor.pending():
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    processor.stop()
    return elapsed, sum(client.run(_cpu_seconds).values()) - cpu_before, tally


def _cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def in_process(root: Path, inventory: Inventory, repeat: int) -> dict:
    """Seconds of one batch through both phases (``prepare_batch`` + ``finalize_batch``) in this process,
    without and with the context, interleaved, fastest of ``repeat``: the cost ratio without Dask."""
    spool = next((root / "template" / "spool").glob("*.parquet"))
    miner = TemplateMiner()
    unmatched = prepare_batch(str(spool), miner.snapshot())
    for message in unmatched.messages:
        miner.add(message)
    snapshot = miner.snapshot()
    best = {"plain": float("inf"), "enriched": float("inf")}
    for n in range(repeat):
        for name, context in (("plain", None), ("enriched", inventory)):
            lake = root / f"lake-{name}-{n}"
            started = time.process_time()
            prepare_batch(str(spool), snapshot)
            finalize_batch(str(spool), str(lake), snapshot, unmatched.messages, inventory=context)
            best[name] = min(best[name], time.process_time() - started)
            shutil.rmtree(lake, ignore_errors=True)
    return {"batch_cpu_seconds_plain": round(best["plain"], 3), "batch_cpu_seconds_enriched": round(best["enriched"], 3),
            "slowdown_percent": round(100 * (best["enriched"] / best["plain"] - 1), 1)}


def _warm(inventory: Inventory) -> None:
    """Load the indicator index, the user directory and the GeoIP data on a worker."""
    from logwarden.processing.geoip import database
    from logwarden.processing.threatintel import load_index
    from logwarden.processing.users import load_directory

    context = inventory.context
    load_index(context.threat_intel)
    load_directory(context.users)
    database(context.geoip)


def measure(batches: int, size: int, workers: int, indicators: int, rounds: int) -> dict:
    """Plain and enriched passes, alternated ``rounds`` times on one Dask cluster (the machine's load
    changes between passes; alternating spreads it over both)."""
    rng = random.Random(11)
    root = Path(tempfile.mkdtemp(prefix="lw-bench-enrich-"))
    dask = DaskConnection.open(None, workers, None, "127.0.0.1")
    try:
        pool = address_pool(rng)
        listed = write_indicators(root / "indicators.txt", pool, indicators, rng)
        write_users(root / "users.csv", rng)
        total = make_spool(root / "template", batches, size, pool, rng)
        config = ProcessingConfig.from_dict({"threat_intel": {"files": [str(root / "indicators.txt")]},
                                             "users": str(root / "users.csv")})
        started = time.perf_counter()
        dask.client.run(_warm, config.inventory)
        load_seconds = time.perf_counter() - started
        seconds: dict[str, list[float]] = {"plain": [], "enriched": []}
        cpu: dict[str, list[float]] = {"plain": [], "enriched": []}
        tally = Tally()
        for n in range(rounds):
            for name, inventory in (("plain", None), ("enriched", config.inventory)):
                shutil.copytree(root / "template" / "spool", root / f"{name}-{n}" / "spool")
                elapsed, used, counted = run(dask.client, root / f"{name}-{n}", workers, inventory)
                seconds[name].append(elapsed)
                cpu[name].append(used)
                tally = counted if inventory is not None else tally
                shutil.rmtree(root / f"{name}-{n}", ignore_errors=True)
        best = {name: min(values) for name, values in seconds.items()}
        _warm(config.inventory)
        one_batch = in_process(root, config.inventory, repeat=5)
        return {
            "records_per_pass": total, "indicators": indicators, "listed_addresses_in_pool": listed,
            "rounds": rounds,
            "plain_records_per_s": [round(total / s) for s in seconds["plain"]],
            "enriched_records_per_s": [round(total / s) for s in seconds["enriched"]],
            "slowdown_percent_per_round": [round(100 * (e / p - 1), 1)
                                           for p, e in zip(seconds["plain"], seconds["enriched"])],
            "slowdown_percent_best_of_each": round(100 * (best["enriched"] / best["plain"] - 1), 1),
            "worker_cpu_seconds_plain": [round(c, 1) for c in cpu["plain"]],
            "worker_cpu_seconds_enriched": [round(c, 1) for c in cpu["enriched"]],
            "cpu_slowdown_percent_median": round(100 * (statistics.median(cpu["enriched"])
                                                        / statistics.median(cpu["plain"]) - 1), 1),
            "enriched_share_of_records_with_address": round(tally.enriched / max(1, tally.with_address), 4),
            "threat_matches_per_pass": tally.matched, "privileged_user_records_per_pass": tally.privileged,
            "indicator_load_seconds_both_workers": round(load_seconds, 1),
            "one_batch_in_process": one_batch,
        }
    finally:
        dask.close()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    result = {"machine": {"cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in load]},
              "workers": args.workers, **measure(args.batches, args.batch_size, args.workers, args.indicators, args.rounds)}
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
