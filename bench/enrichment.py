"""Enrichment cost: the processing benchmark's structured records, each with a client address, through
both processing phases without and with the security context (embedded GeoIP with AS numbers,
1 million threat indicators, a user directory, the inventory's hosts).

    python bench/enrichment.py [--batches 6] [--batch-size 50000] [--repeat 5] [--indicators 1000000]
                               [--dask-rounds 0] [--workers 2]

The records are those of ``bench/processing.py`` (the demo's traffic model) with a ``client_ip``
attribute drawn, per batch, from 20,000 addresses (90 % public IPv4 spread over the address space,
5 % public IPv6, 5 % private), 1 % of which are on the threat list. The indicator file holds
``--indicators`` lines: 94 % single IPv4 addresses, 2 % CIDRs, 3 % domains, 1 % SHA-256 hashes.

The headline figure is CPU time in this one process: every batch goes through ``prepare_batch`` and
``finalize_batch`` plain and enriched, back to back (which of the two runs first alternates), ``--repeat``
times; the slowdown is the median over all those pairs of enriched / plain CPU seconds, with its
quartiles. CPU time of one process, paired with its plain twin a moment apart, is what the other
processes of a shared machine disturb least. The indicators, user directory and GeoIP data are
loaded before timing (their load time is printed on its own: it is paid once per worker and after
each change of a file, not per batch). ``--dask-rounds`` adds plain and enriched passes of the Dask
spool pipeline (records/s and worker CPU seconds), for context only: on a loaded 2-core machine they
vary by tens of percent between identical passes. Prints JSON, with the load averages before and after.
"""
from __future__ import annotations

import argparse
import gc
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
    """``batches`` spool batches of ``size`` records, each record with a client address from ``pool``
    (drawn again for every batch)."""
    spool = Spool(DataDir.at(root).create().spool)
    rows = structured_rows(size, 0)
    plain = [orjson.loads(row["attributes"]) if row.get("attributes") else {} for row in rows]
    for b in range(batches):
        for row, attributes in zip(rows, plain):
            row["attributes"] = orjson.dumps({**attributes, "client_ip": rng.choice(pool)}).decode()
        table = pa.Table.from_pylist(rows, schema=spool.schema)
        ids = pa.array([f"b{b}-{i}" for i in range(size)])
        batch = table.set_column(table.schema.get_field_index("record_id"), "record_id", ids)
        pq.write_table(batch, spool.path_of(f"{1_700_000_000_000 + b:013d}-bench-{b:06d}"), compression="zstd")
    return batches * size


class Tally:
    """Counts, from the batch outputs: records, those with an address, those enriched, threat matches."""

    def __init__(self) -> None:
        self.records = self.with_address = self.enriched = self.matched = self.privileged = 0
        self.public = self.with_asn = self.assets = 0
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
            public = pc.fill_null(pc.equal(scope, "public"), False)
            self.public += pc.sum(public).as_py() or 0
            self.with_asn += pc.sum(pc.and_(public, pc.is_valid(records["client_asn"]))).as_py() or 0
            self.assets += records.num_rows - records["host_criticality"].null_count


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
    """CPU seconds of every batch through both phases (``prepare_batch`` + ``finalize_batch``) in this
    process, plain and enriched back to back (alternating which goes first), ``repeat`` times over all
    batches; the slowdown is the median of the paired ratios."""
    spools = sorted((root / "template" / "spool").glob("*.parquet"))
    miner = TemplateMiner()
    unmatched = prepare_batch(str(spools[0]), miner.snapshot())
    for message in unmatched.messages:
        miner.add(message)
    snapshot, learned = miner.snapshot(), unmatched.messages
    cpu: dict[str, list[float]] = {"plain": [], "enriched": []}
    tally = Tally()
    for n in range(repeat):
        for b, spool in enumerate(spools):
            runs = [("plain", None), ("enriched", inventory)]
            for name, context in runs if (n + b) % 2 == 0 else runs[::-1]:
                lake = root / f"lake-{name}"
                gc.collect()
                started = time.process_time()
                prepare_batch(str(spool), snapshot)
                output = finalize_batch(str(spool), str(lake), snapshot, learned, inventory=context)
                cpu[name].append(time.process_time() - started)
                shutil.rmtree(lake, ignore_errors=True)
                if context is not None and n == 0:
                    tally(output)
    ratios = [e / p for p, e in zip(cpu["plain"], cpu["enriched"])]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    size = tally.records // max(1, len(spools))
    return {
        "pairs": len(ratios),
        "batch_cpu_seconds_plain_median": round(statistics.median(cpu["plain"]), 3),
        "batch_cpu_seconds_enriched_median": round(statistics.median(cpu["enriched"]), 3),
        "records_per_cpu_second_plain": round(size / statistics.median(cpu["plain"])),
        "records_per_cpu_second_enriched": round(size / statistics.median(cpu["enriched"])),
        "slowdown_percent_median": round(100 * (statistics.median(ratios) - 1), 1),
        "slowdown_percent_quartiles": [round(100 * (quartiles[0] - 1), 1), round(100 * (quartiles[2] - 1), 1)],
        "enriched_share_of_records_with_address": round(tally.enriched / max(1, tally.with_address), 4),
        "with_as_number_share_of_public": round(tally.with_asn / max(1, tally.public), 4),
        "threat_matches": tally.matched, "privileged_user_records": tally.privileged,
        "records_with_host_criticality": tally.assets,
    }


def _warm(inventory: Inventory) -> None:
    """Load the indicator index, the user directory and the GeoIP data on a worker."""
    from logwarden.processing.geoip import database
    from logwarden.processing.threatintel import load_index
    from logwarden.processing.users import load_directory

    context = inventory.context
    load_index(context.threat_intel)
    load_directory(context.users)
    database(context.geoip)


def measure(batches: int, size: int, repeat: int, indicators: int, dask_rounds: int, workers: int) -> dict:
    """The in-process figures, and (``dask_rounds`` > 0) plain and enriched Dask passes alternated."""
    rng = random.Random(11)
    root = Path(tempfile.mkdtemp(prefix="lw-bench-enrich-"))
    try:
        pool = address_pool(rng)
        listed = write_indicators(root / "indicators.txt", pool, indicators, rng)
        write_users(root / "users.csv", rng)
        total = make_spool(root / "template", batches, size, pool, rng)
        config = ProcessingConfig.from_dict({"threat_intel": {"files": [str(root / "indicators.txt")]},
                                             "users": str(root / "users.csv")})
        started = time.process_time()
        _warm(config.inventory)
        result = {"records_per_batch": size, "batches": batches, "indicators": indicators,
                  "listed_addresses_in_pool": listed,
                  "load_cpu_seconds_indicators_users_geoip": round(time.process_time() - started, 1),
                  "in_process": in_process(root, config.inventory, repeat)}
        if dask_rounds:
            result["dask"] = dask_passes(root, total, workers, config.inventory, dask_rounds)
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def dask_passes(root: Path, total: int, workers: int, inventory: Inventory, rounds: int) -> dict:
    """Plain and enriched passes of the spool pipeline, alternated ``rounds`` times on one Dask cluster."""
    dask = DaskConnection.open(None, workers, None, "127.0.0.1")
    try:
        dask.client.run(_warm, inventory)
        seconds: dict[str, list[float]] = {"plain": [], "enriched": []}
        cpu: dict[str, list[float]] = {"plain": [], "enriched": []}
        for n in range(rounds):
            for name, context in (("plain", None), ("enriched", inventory)):
                shutil.copytree(root / "template" / "spool", root / f"{name}-{n}" / "spool")
                elapsed, used, _ = run(dask.client, root / f"{name}-{n}", workers, context)
                seconds[name].append(elapsed)
                cpu[name].append(used)
                shutil.rmtree(root / f"{name}-{n}", ignore_errors=True)
        return {"workers": workers,
                "plain_records_per_s": [round(total / s) for s in seconds["plain"]],
                "enriched_records_per_s": [round(total / s) for s in seconds["enriched"]],
                "worker_cpu_seconds_plain": [round(c, 1) for c in cpu["plain"]],
                "worker_cpu_seconds_enriched": [round(c, 1) for c in cpu["enriched"]]}
    finally:
        dask.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5, help="passes over all batches, plain and enriched")
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--dask-rounds", type=int, default=0, help="Dask pipeline passes (context only)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = {"machine": {"cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()]},
              **measure(args.batches, args.batch_size, args.repeat, args.indicators, args.dask_rounds, args.workers)}
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
