"""Processing throughput: spool batches → mask → template-mine → aggregate → lake, on a 2-worker
Dask LocalCluster, against the same work by a plain single-process pandas script.

    python bench/processing.py [--batches 24] [--batch-size 50000] [--workers 2]

Two workloads: structured JSON-app records (short messages, few templates) and unstructured
text lines (real Loghub messages, many templates). Prints JSON: records/s of both, the ratio,
and peak RSS per Dask worker.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from logwarden.collector.spool import Spool  # noqa: E402
from logwarden.collector.validation import RecordValidator, SkewLimits  # noqa: E402
from logwarden.clusters import DaskConnection  # noqa: E402
from logwarden.common.paths import DataDir  # noqa: E402
from logwarden.demo import SimClock, TrafficModel  # noqa: E402
from logwarden.processing.masking import Masker  # noqa: E402
from logwarden.processing.pipeline import SpoolProcessor  # noqa: E402
from logwarden.processing.templates import TemplateMiner  # noqa: E402

SHARED = Path(os.environ.get("LOGWARDEN_SHARED_DATA", ROOT.parent / "shared" / "data"))
VALIDATOR = RecordValidator(skew=SkewLimits(max_future=1e12, max_past=1e12))


def structured_rows(count: int, seed: int) -> list[dict]:
    clock = SimClock(speed=1.0, lead=0.0, wall=1_795_000_000.0)
    model = TrafficModel(rate=count / 4 / 600.0, incidents=False, seed=seed)
    records = list(model.records(clock, clock.sim_start, clock.sim_start + 600))[:count]
    return [VALIDATOR.normalize(r, f"s{seed}-{i}", "t", "bench", 0) for i, r in enumerate(records)]


def text_rows(count: int, seed: int) -> list[dict]:
    lines = []
    for path in sorted((SHARED / "loghub").glob("*/*_structured.csv")):
        lines += pd.read_csv(path)["Content"].astype(str).tolist()
    rows = []
    for i in range(count):
        record = {"timestamp": f"2026-11-22T10:{(i // 60) % 60:02d}:{i % 60:02d}Z", "level": "INFO",
                  "service": f"svc-{i % 8}", "message": lines[(i * 7 + seed) % len(lines)]}
        rows.append(VALIDATOR.normalize(record, f"x{seed}-{i}", "t", "bench", 0))
    return rows


def make_spool(root: Path, batches: int, size: int, kind: str) -> int:
    spool = Spool(DataDir.at(root).create().spool)
    make = structured_rows if kind == "structured" else text_rows
    template = make(size, 0)
    table = pa.Table.from_pylist(template, schema=spool.schema)
    for b in range(batches):
        ids = pa.array([f"b{b}-{i}" for i in range(size)])
        spool_table = table.set_column(table.schema.get_field_index("record_id"), "record_id", ids)
        pq.write_table(spool_table, spool.path_of(f"{1_700_000_000_000 + b:013d}-bench-{b:06d}"), compression="zstd")
    return batches * size


def run_dask(root: Path, workers: int) -> tuple[float, dict]:
    dask = DaskConnection.open(None, workers, None, "127.0.0.1")
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            for worker, rss in dask.client.run(lambda: psutil.Process().memory_info().rss).items():
                peaks[worker] = max(peaks.get(worker, 0), rss)

    try:
        dask.client.run(lambda: None)
        paths = DataDir.at(root)
        processor = SpoolProcessor(dask.client, paths, lambda output: None, max_in_flight=2 * workers)
        sampler = threading.Thread(target=sample, daemon=True)
        started = time.perf_counter()
        processor.start()
        sampler.start()
        while processor.pending():
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        processor.stop()
        stop.set()
        return elapsed, {w: round(v / 2**20) for w, v in peaks.items()}
    finally:
        dask.close()


def run_pandas(root: Path) -> float:
    """The same work, one process: read, mask, mine templates, aggregate per service-minute, write partitions."""
    masker, miner = Masker(), TemplateMiner()
    out = root / "pandas-lake"
    started = time.perf_counter()
    for path in sorted((root / "spool").glob("*.parquet")):
        df = pq.read_table(path).to_pandas()
        df["message"] = [masker.mask_text(m) for m in df["message"]]
        df = df.sort_values("timestamp")
        matches = [miner.add(m) for m in df["message"]]
        df["template_id"] = [m.template_id for m in matches]
        df["template"] = [m.template for m in matches]
        df["bucket"] = df["timestamp"].dt.floor("min")
        df["is_error"] = df["level"].isin(["ERROR", "CRITICAL"])
        df.groupby(["service", "bucket"]).agg(count=("level", "size"), errors=("is_error", "sum"),
                                              p95=("duration_ms", lambda s: s.quantile(0.95)),
                                              users=("user_id", "nunique"))
        df["date"] = df["timestamp"].dt.strftime("%Y-%m-%d")
        df.drop(columns=["bucket", "is_error"]).to_parquet(out, partition_cols=["date", "service"],
                                                           compression="zstd")
    return time.perf_counter() - started


def measure(kind: str, batches: int, size: int, workers: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"lw-bench-{kind}-"))
    try:
        total = make_spool(root, batches, size, kind)
        pandas_root = Path(tempfile.mkdtemp(prefix=f"lw-bench-pandas-{kind}-"))
        shutil.copytree(root / "spool", pandas_root / "spool")
        dask_seconds, peaks = run_dask(root, workers)
        pandas_seconds = run_pandas(pandas_root)
        shutil.rmtree(pandas_root, ignore_errors=True)
        return {"records": total, "logwarden_records_per_s": round(total / dask_seconds),
                "pandas_records_per_s": round(total / pandas_seconds),
                "ratio": round(pandas_seconds / dask_seconds, 2), "peak_rss_mb_per_worker": peaks}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = {"machine": {"cores": os.cpu_count()}, "workers": args.workers,
              "structured": measure("structured", args.batches, args.batch_size, args.workers),
              "text_with_templates": measure("text", args.batches, args.batch_size, args.workers)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
