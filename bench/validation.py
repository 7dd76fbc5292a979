"""Validation benchmark: the collector's fast paths against jsonschema, the reference, on the same records.

- ``jsonschema``: ``Draft202012Validator(..., format_checker=FormatChecker()).is_valid`` on records
  already decoded (validation only), one by one;
- ``per_record``: the collector's per-record path (orjson decode, fastjsonschema with the RFC 3339
  check, limits, skew, normalization to a row, Arrow table), for bodies with a bad record or extras;
- ``columnar``: the fast path on whole NDJSON bodies (Arrow parse, vectorized checks,
  normalization), decode included.

All on one thread. Prints one JSON document. Usage: ``python bench/validation.py [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import jsonschema
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from logwarden.collector.batch import BatchDecoder  # noqa: E402
from logwarden.collector.decoding import split_ndjson  # noqa: E402
from logwarden.collector.validation import RecordValidator, SkewLimits  # noqa: E402
from logwarden.common.records import load_log_schema  # noqa: E402


def _bench_bodies() -> Callable[[int, int], list[bytes]]:
    spec = importlib.util.spec_from_file_location("bench_collector", REPO / "bench" / "collector.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_bodies


def rates(functions: dict[str, Callable[[], int]], seconds: float, rounds: int = 6) -> dict[str, int]:
    """Records per second of each function (which returns how many records it handled).

    The paths take turns in short slices and each keeps its best slice, so that load from other
    processes on a shared machine penalizes them alike.
    """
    best = dict.fromkeys(functions, 0.0)
    for function in functions.values():
        function()
    for _ in range(rounds):
        for name, function in functions.items():
            records, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds / rounds:
                records += function()
            best[name] = max(best[name], records / (time.perf_counter() - started))
    return {name: round(value) for name, value in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="time spent on each path (in interleaved slices)"
    )
    args = parser.parse_args()

    bodies = _bench_bodies()(8, 1000)
    records = [orjson.loads(line) for body in bodies for line in body.splitlines()]
    reference = jsonschema.Draft202012Validator(load_log_schema(), format_checker=jsonschema.FormatChecker())
    decoder = BatchDecoder(
        RecordValidator(skew=SkewLimits(max_future=86400, max_past=86400)), 1 << 20, 64 << 20
    )
    assert all(reference.is_valid(r) for r in records[:2000])
    assert all(decoder.ndjson(body).fast for body in bodies)

    counter = {"i": 0}

    def pick() -> bytes:
        counter["i"] += 1
        return bodies[counter["i"] % len(bodies)]

    def run_jsonschema() -> int:
        batch = records[:1000]
        for record in batch:
            reference.is_valid(record)
        return len(batch)

    def run_per_record() -> int:
        return decoder.records(list(split_ndjson(pick(), 1 << 20))).accepted

    parsed = [decoder.columnar.parse(body, 1 << 20) for body in bodies]
    now = time.time()

    def run_columnar_checks() -> int:
        counter["i"] += 1
        return decoder.columnar.check(parsed[counter["i"] % len(parsed)], now).num_rows

    def run_columnar() -> int:
        return decoder.ndjson(pick()).accepted

    def run_orjson_jsonschema() -> int:
        lines = pick().splitlines()
        for line in lines:
            reference.is_valid(orjson.loads(line))
        return len(lines)

    results = rates(
        {
            "jsonschema": run_jsonschema,
            "columnar_checks": run_columnar_checks,
            "orjson_then_jsonschema": run_orjson_jsonschema,
            "columnar": run_columnar,
            "per_record": run_per_record,
        },
        args.seconds,
    )
    print(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()]},
                "records_per_s_one_thread": results,
                "speedup": {
                    "validation_only_columnar_checks_vs_jsonschema": round(
                        results["columnar_checks"] / results["jsonschema"], 1
                    ),
                    "end_to_end_columnar_vs_orjson_then_jsonschema": round(
                        results["columnar"] / results["orjson_then_jsonschema"], 1
                    ),
                    "end_to_end_per_record_vs_orjson_then_jsonschema": round(
                        results["per_record"] / results["orjson_then_jsonschema"], 1
                    ),
                },
                "target_20x_validation": results["columnar_checks"] >= 20 * results["jsonschema"],
                "notes": {
                    "jsonschema": "validation only, on already-decoded dicts",
                    "columnar_checks": "validation and normalization only, on already-parsed Arrow columns",
                    "orjson_then_jsonschema": "decode each line with orjson, then validate with jsonschema",
                    "columnar": "whole fast path on NDJSON bytes: Arrow parse, checks, normalization",
                    "per_record": "the fallback path on NDJSON bytes: decode, check, normalize, build Arrow",
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
