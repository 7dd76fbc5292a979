"""Format detection/parsing benchmark on the real samples under shared/data/formats.

Prints JSON: per-format detection accuracy (expected formats from
``tests/processing/test_formats_samples.py``), overall and per-file (macro) accuracy, µs per
record for ``detect`` and for ``parse`` (format given, and detect+parse), per format too, and the
syslog test-vector valid/invalid agreement, and the detection of the exporters' shapes of CloudTrail and
Windows events (``wild_shapes``).

    python bench/formats.py [--data ../shared/data] [--repeat 3]
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from collections.abc import Callable
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from logwarden.formats import RawRecord, detect, parse, read_records  # noqa: E402
from tests.processing.test_formats_samples import sample_records  # noqa: E402
from tests.processing.test_formats_wild import CASES as WILD_CASES  # noqa: E402

VECTORS = {"go-syslog_rfc5424_machine_test_vectors.jsonl": "syslog-rfc5424",
           "go-syslog_rfc3164_machine_test_vectors.jsonl": "syslog-rfc3164",
           "syslog-rfc5424-parser_test_message_parser_vectors.jsonl": "syslog-rfc5424"}


def best_time(fn: Callable[[], None], repeat: int) -> float:
    """Fastest of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def accuracy(samples: list[tuple[str, RawRecord, str]]) -> dict[str, Any]:
    """Detection accuracy per expected format, per file (macro) and overall."""
    per_fmt: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_file: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    no_hint = [0, 0]
    for rel, record, expected in samples:
        ok = detect(record).format == expected
        for bucket in (per_fmt[expected], per_file[rel]):
            bucket[0] += ok
            bucket[1] += 1
        if record.hint:
            no_hint[0] += detect(record.data).format == expected
            no_hint[1] += 1
    total = sum(v[1] for v in per_fmt.values())
    right = sum(v[0] for v in per_fmt.values())
    return {
        "records": total,
        "files": len(per_file),
        "overall_accuracy": round(right / total, 5),
        "macro_file_accuracy": round(sum(v[0] / v[1] for v in per_file.values()) / len(per_file), 5),
        "per_format": {k: {"records": v[1], "accuracy": round(v[0] / v[1], 5)}
                       for k, v in sorted(per_fmt.items())},
        "w3c_lines_without_fields_header": {"records": no_hint[1],
                                            "accuracy": round(no_hint[0] / max(no_hint[1], 1), 5)},
        "worst_files": sorted(((round(v[0] / v[1], 3), k) for k, v in per_file.items()))[:5],
    }


def timings(samples: list[tuple[str, RawRecord, str]], repeat: int) -> dict[str, Any]:
    """µs/record for detect, parse (format given) and detect+parse, overall and per format."""
    records = [r for _, r, _ in samples]
    by_fmt: dict[str, list[RawRecord]] = defaultdict(list)
    for _, record, expected in samples:
        by_fmt[expected].append(record)
    result: dict[str, Any] = {
        "detect_us": _us(lambda: [detect(r) for r in records], len(records), repeat),
        "parse_known_format_us": _us(lambda: [parse(r, fmt) for _, r, fmt in samples],
                                     len(records), repeat),
        "detect_and_parse_us": _us(lambda: [parse(r) for r in records], len(records), repeat),
        "per_format": {},
    }
    for fmt, recs in sorted(by_fmt.items()):
        result["per_format"][fmt] = {
            "detect_us": _us(lambda recs=recs: [detect(r) for r in recs], len(recs), repeat),
            "parse_us": _us(lambda recs=recs, fmt=fmt: [parse(r, fmt) for r in recs], len(recs), repeat),
        }
    return result


def _us(fn: Callable[[], Any], count: int, repeat: int) -> float:
    """Microseconds per record of the fastest run."""
    return round(best_time(fn, repeat) / max(count, 1) * 1e6, 2)


def vector_agreement(syslog_dir: Path) -> dict[str, Any]:
    """Our valid/invalid verdict (parse_error is None) against the vectors' expected verdicts."""
    out: dict[str, Any] = {}
    for name, fmt in VECTORS.items():
        agree = total = accepted = unflagged = 0
        for line in (syslog_dir / name).read_text().splitlines():
            case = json.loads(line)
            data = base64.b64decode(case["input_b64"]) if "input_b64" in case else case["input"].encode()
            valid = parse(data, fmt).parse_error is None
            if "valid" in case:
                total += 1
                agree += valid == case["valid"]
            else:
                unflagged += 1
                accepted += valid
        out[name] = ({"agree": agree, "total": total, "agreement": round(agree / total, 4)} if total
                     else {"no_verdicts": unflagged, "accepted": accepted})
    return out


def wild_shapes() -> dict[str, Any]:
    """Detection of the exporters' shapes of ``tests/processing/test_formats_wild.py`` (one fixture each,
    written from the vendors' documentation): family found, its confidence, and µs per detect."""
    shapes: dict[str, Any] = {}
    right = 0
    for name, record, family, _band, *_ in WILD_CASES:
        data = record.encode() if isinstance(record, str) else orjson.dumps(record)
        found = detect(data)
        right += found.format == family
        shapes[name] = {"expected": family, "detected": found.format, "confidence": round(found.confidence, 4),
                        "detect_us": _us(lambda data=data: [detect(data) for _ in range(200)], 200, 3)}
    return {"shapes": len(WILD_CASES), "accuracy": round(right / len(WILD_CASES), 5), "per_shape": shapes}


def loghub_false_positives(loghub_dir: Path) -> dict[str, Any]:
    """Held-out Loghub application logs are free text: how many records a structured format claims."""
    total = claimed = 0
    for path in sorted(loghub_dir.glob("*/*_2k.log")):
        for record in read_records(path):
            total += 1
            claimed += detect(record).format != "text"
    return {"records": total, "claimed_by_a_structured_format": claimed}


def main() -> int:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    formats_dir = args.data / "formats"
    start = time.perf_counter()
    samples = sample_records(formats_dir)
    read_s = time.perf_counter() - start
    report = {"accuracy": accuracy(samples), "timing": timings(samples, args.repeat),
              "read_records_us": round(read_s / len(samples) * 1e6, 2),
              "syslog_vectors": vector_agreement(formats_dir / "syslog"),
              "wild_shapes": wild_shapes(),
              "loghub_text_false_positives": loghub_false_positives(args.data / "loghub")}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
