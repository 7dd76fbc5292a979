"""Benchmark logwarden's template miner against drain3 on the Loghub-2k samples.

Both miners get the same generic masks (logwarden's built-in set, compiled into
one regex, plus the collapse of wildcard runs) and one configuration for every
dataset. Prints JSON: per dataset and mean Grouping Accuracy (GA), Parsing
Accuracy (PA) and throughput (lines/s, single process) for both.

    python bench/templates.py [--data DIR] [--datasets HDFS,BGL] [--repeat 3]

``--ablation`` instead prints GA/PA of logwarden's miner with all heuristics and
with each heuristic switched off in turn, on the in-sample shared samples and on
out-of-sample Loghub-2k logs (``--oos-data``, see ``bench/templates_datasets.yaml``):

    python bench/templates.py --ablation --oos-data logparser/data/loghub_2k_corrected
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import json
import os
import platform
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from logwarden.processing.templates import (  # noqa: E402
    HeaderFormat,
    MinerConfig,
    TemplateMiner,
    grouping_accuracy,
    parsing_accuracy,
)
from logwarden.processing.templates.masking import compile_masks  # noqa: E402

_DIGITS = re.compile(r"\d+")
DEFAULT_DATA = Path(os.environ.get("LOGWARDEN_SHARED_DATA", REPO.parent / "shared" / "data")) / "loghub"
#: Out-of-sample datasets: header formats, ground-truth file name and where they come from.
OOS_DATASETS = Path(__file__).with_name("templates_datasets.yaml")
DEFAULT_OOS_DATA = Path(os.environ.get("LOGWARDEN_LOGHUB_OOS", REPO.parent / "logparser" / "data"
                                       / "loghub_2k_corrected"))
IN_SAMPLE_TRUTH = "{name}_2k.log_structured.csv"
Dataset = tuple[list[str], list[str], list[str]]


def load_dataset(data: Path, name: str, log_format: str, truth_file: str = IN_SAMPLE_TRUTH) -> Dataset:
    """Contents (via the header format), true event ids and true templates of one Loghub-2k sample.

    The header format only cuts the message out of the raw line (data
    preparation); the miner itself gets no per-dataset setting.
    """
    header = HeaderFormat(log_format)
    raw = (data / name / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    with (data / name / truth_file.format(name=name)).open(encoding="utf-8", newline="") as handle:
        truth = list(csv.DictReader(handle))
    if len(truth) != len(raw):
        raise ValueError(f"{name}: {len(raw)} lines but {len(truth)} ground-truth rows")
    contents = [header.content(line) for line in raw]
    return contents, [r["EventId"] for r in truth], [r["EventTemplate"] for r in truth]


Feeder = Callable[[list[str]], object]


def run_ours(messages: list[str], config: MinerConfig) -> tuple[list[str], list[str], Feeder]:
    """Mine with logwarden; returns ids as emitted, final templates per line, and a feeder for more lines."""
    miner = TemplateMiner(config)
    ids = [miner.add(m).template_id for m in messages]
    templates = [miner.get(i).template for i in ids]
    return ids, templates, lambda stream: [miner.add(m) for m in stream]


def drain3_miner(config: MinerConfig, sim_th: float):
    """A drain3 TemplateMiner using exactly logwarden's generic masks."""
    from drain3 import TemplateMiner as Drain3Miner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    drain_config = TemplateMinerConfig()
    drain_config.drain_sim_th = sim_th
    drain_config.masking_instructions = [
        MaskingInstruction(compile_masks(config.masks).pattern, "*"),
        MaskingInstruction(r"<\*>(?:\s+<\*>)+", "*"),
    ]
    drain_config.profiling_enabled = False
    return Drain3Miner(config=drain_config)


def run_drain3(messages: list[str], config: MinerConfig, sim_th: float):
    """Mine with drain3; same outputs as :func:`run_ours`."""
    miner = drain3_miner(config, sim_th)
    ids = [miner.add_log_message(m)["cluster_id"] for m in messages]
    by_id = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    templates = [by_id[i] for i in ids]
    return [str(i) for i in ids], templates, lambda stream: [miner.add_log_message(m) for m in stream]


def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by ``fn`` (garbage collector paused)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def fresh_values(messages: list[str], copies: int, seed: int) -> list[str]:
    """``copies`` replays of ``messages`` with every number replaced by a random one of similar length.

    This is the steady state of a real stream: the templates are known, the
    values (ids, addresses, counters, timestamps) are new.
    """
    rng = random.Random(seed)

    def number(match: re.Match[str]) -> str:
        width = max(1, len(match.group()) + rng.randint(-1, 1))
        return str(rng.randrange(10 ** (width - 1), 10 ** width))

    return [_DIGITS.sub(number, m) for _ in range(copies) for m in messages]


def bench_one(runner, messages, ids, templates, repeat: int, copies: int, **kwargs) -> dict[str, float]:
    """GA/PA and throughput of a cold pass, then the best steady-state throughput on fresh values."""
    holder: dict[str, object] = {}

    def cold() -> None:
        holder["result"] = runner(messages, **kwargs)

    cold_s = timed(cold)
    pred_ids, pred_templates, feed = holder["result"]
    streams = [fresh_values(messages, copies, seed) for seed in range(repeat)]
    steady_s = min(timed(lambda stream=stream: feed(stream)) for stream in streams)
    return {
        "GA": round(grouping_accuracy(ids, pred_ids), 4),
        "PA": round(parsing_accuracy(templates, pred_templates), 4),
        "templates": len(set(pred_ids)),
        "lines_per_s": round(len(streams[0]) / steady_s),
        "lines_per_s_cold": round(len(messages) / cold_s),
    }


def mean_of(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every metric across datasets."""
    keys = ("GA", "PA", "lines_per_s", "lines_per_s_cold")
    return {k: round(sum(r[k] for r in rows) / len(rows), 4 if k in ("GA", "PA") else 0) for k in keys}


#: Heuristic switches of MinerConfig: (field, value that flips it against the default, what changes).
#: The last two are heuristics dropped by this ablation (default off), shown switched back on.
SWITCHES: tuple[tuple[str, object, str], ...] = (
    ("mask_subtokens", False, "masks apply to whole tokens only (`HWID=1973` stays)"),
    ("collapse_wildcards", False, "runs of wildcards are not collapsed (lists of any length)"),
    ("keep_token_affixes", False, "a differing token becomes `<*>`, punctuation ends are not kept"),
    ("words_are_constants", False, "alphabetic words may be generalised like any token"),
    ("cover_across_paths", False, "no reuse of a covering template filed under another tree path"),
    ("min_word_variants", 5, "dropped: merge clusters that differ by one word in 5+ variants"),
    ("absorb_size_units", True, "dropped: `<*> B`/`<*> MiB` absorb the unit"),
)
#: Thresholds shown for sensitivity (not heuristics that can be dropped).
SENSITIVITY: tuple[tuple[str, object], ...] = (
    ("sim_threshold", 0.4), ("sim_threshold", 0.5), ("sim_threshold", 0.7),
    ("depth", 1), ("depth", 3),
)


def ablation_variants() -> list[tuple[str, str, MinerConfig]]:
    """``(name, what changes, config)``: the default first, then one heuristic flipped at a time, then thresholds."""
    base = MinerConfig()
    variants = [("all", "default MinerConfig()", base)]
    for mask, _ in base.masks:
        kept = tuple(m for m in base.masks if m[0] != mask)
        variants.append((f"-mask:{mask}", f"the `{mask}` mask removed", replace(base, masks=kept)))
    for field, value, change in SWITCHES:
        variants.append((f"{field}={value}", change, replace(base, **{field: value})))
    for field, value in SENSITIVITY:
        variants.append((f"{field}={value}", f"threshold (default {getattr(base, field)})",
                         replace(base, **{field: value})))
    return variants


def accuracy(config: MinerConfig, datasets: dict[str, Dataset]) -> dict[str, dict[str, float]]:
    """GA and PA of one miner configuration on every dataset (one fresh miner per dataset)."""
    scores = {}
    for name, (messages, ids, templates) in datasets.items():
        pred_ids, pred_templates, _ = run_ours(messages, config)
        scores[name] = {"GA": round(grouping_accuracy(ids, pred_ids), 4),
                        "PA": round(parsing_accuracy(templates, pred_templates), 4)}
    return scores


def _mean_scores(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    return {k: round(sum(s[k] for s in scores.values()) / len(scores), 4) for k in ("GA", "PA")}


def load_sets(args: argparse.Namespace) -> tuple[dict[str, Dataset], dict[str, Dataset], str]:
    """The in-sample shared samples and the out-of-sample logs (empty when ``--oos-data`` is absent)."""
    formats = yaml.safe_load((args.data / "datasets.yaml").read_text(encoding="utf-8"))
    in_sample = {name: load_dataset(args.data, name, fmt) for name, fmt in formats.items()}
    spec = yaml.safe_load(OOS_DATASETS.read_text(encoding="utf-8"))
    if not args.oos_data.is_dir():
        print(f"out-of-sample data not found at {args.oos_data}: {spec['source']} (see {OOS_DATASETS.name})",
              file=sys.stderr)
        return in_sample, {}, spec["source"]
    out = {name: load_dataset(args.oos_data, name, fmt, spec["truth_file"])
           for name, fmt in spec["formats"].items()}
    return in_sample, out, spec["source"]


def run_ablation(args: argparse.Namespace) -> dict[str, object]:
    """GA/PA with all heuristics and with each one off, in and out of sample, as a JSON-ready report."""
    in_sample, out_sample, source = load_sets(args)
    rows = []
    for name, change, config in ablation_variants():
        row: dict[str, object] = {"variant": name, "change": change}
        for label, datasets in (("in_sample", in_sample), ("out_of_sample", out_sample)):
            if datasets:
                scores = accuracy(config, datasets)
                row[label] = {"mean": _mean_scores(scores), "datasets": scores}
        rows.append(row)
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "protocol": "one fresh miner per dataset, one pass, GA on ids as emitted, PA on final templates; "
                    "every variant is MinerConfig() with one field changed",
        "in_sample": {"datasets": list(in_sample), "source": str(args.data)},
        "out_of_sample": {"datasets": list(out_sample), "source": source},
        "variants": rows,
    }


def ablation_table(report: dict[str, object]) -> str:
    """The ablation report as a Markdown table (means, and the change against all heuristics)."""
    rows = report["variants"]
    base = rows[0]
    lines = ["| variant | GA in | ΔGA in | PA in | GA out | ΔGA out | PA out | out datasets GA ↑/↓ |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        cells = [f"`{row['variant']}`"]
        for label in ("in_sample", "out_of_sample"):
            if label not in row:
                cells += ["", "", ""]
                continue
            mean, ref = row[label]["mean"], base[label]["mean"]
            cells += [f"{mean['GA']:.4f}", f"{mean['GA'] - ref['GA']:+.4f}", f"{mean['PA']:.4f}"]
        cells.append(_moves(row, base) if "out_of_sample" in row else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _moves(row: dict, base: dict) -> str:
    """How many out-of-sample datasets gain / lose GA against the default."""
    pairs = [(score["GA"], base["out_of_sample"]["datasets"][name]["GA"])
             for name, score in row["out_of_sample"]["datasets"].items()]
    return f"{sum(new > old for new, old in pairs)}/{sum(new < old for new, old in pairs)}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with datasets.yaml and <Name>/ samples")
    parser.add_argument("--datasets", default="", help="comma-separated subset, e.g. HDFS,BGL")
    parser.add_argument("--repeat", type=int, default=3, help="steady-state passes (best is kept)")
    parser.add_argument("--copies", type=int, default=3,
                        help="steady-state stream length, in replays of the sample with fresh values")
    parser.add_argument("--drain3-sim-th", type=float, default=0.4,
                        help="drain3 similarity threshold (default: drain3's own default)")
    parser.add_argument("--ablation", action="store_true",
                        help="accuracy with each heuristic off, in and out of sample (no drain3, no timing)")
    parser.add_argument("--oos-data", type=Path, default=DEFAULT_OOS_DATA,
                        help="out-of-sample Loghub-2k folder (logparser's data/loghub_2k_corrected)")
    parser.add_argument("--markdown", action="store_true", help="with --ablation: print the table instead")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the JSON report."""
    args = parse_args(argv)
    if args.ablation:
        report = run_ablation(args)
        print(ablation_table(report) if args.markdown else json.dumps(report, indent=2))
        return 0
    formats = yaml.safe_load((args.data / "datasets.yaml").read_text(encoding="utf-8"))
    names = [n for n in args.datasets.split(",") if n] or list(formats)
    unknown = [n for n in names if n not in formats]
    if unknown:
        print(f"unknown datasets: {', '.join(unknown)} (known: {', '.join(formats)})", file=sys.stderr)
        return 2
    config = MinerConfig()
    report: dict[str, object] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpu".strip(),
        "python": platform.python_version(),
        "protocol": "GA on ids as emitted, PA on final templates, both from one pass over the sample "
                    "from an empty miner (lines_per_s_cold is that pass); lines_per_s = steady state: "
                    "after that pass, best of --repeat runs over --copies replays of the sample with "
                    "every number replaced by a fresh random one; single process, header parsing "
                    "excluded; logwarden also extracts parameters, drain3 does not",
        "config": {"logwarden": config.to_dict() | {"masks": [m[0] for m in config.masks]},
                   "drain3": {"sim_th": args.drain3_sim_th, "depth": 4, "max_children": 100}},
        "datasets": {},
    }
    # Warm-up outside the timings: imports (drain3 pulls in jsonpickle, cachetools...) and regex compiles.
    run_ours(["warm up 1 at 10.0.0.1"], config)
    run_drain3(["warm up 1 at 10.0.0.1"], config, args.drain3_sim_th)
    ours_rows, drain_rows = [], []
    for name in names:
        messages, ids, templates = load_dataset(args.data, name, formats[name])
        ours = bench_one(run_ours, messages, ids, templates, args.repeat, args.copies, config=config)
        drain = bench_one(run_drain3, messages, ids, templates, args.repeat, args.copies,
                          config=config, sim_th=args.drain3_sim_th)
        report["datasets"][name] = {"lines": len(messages), "logwarden": ours, "drain3": drain}
        ours_rows.append(ours)
        drain_rows.append(drain)
    report["mean"] = {"logwarden": mean_of(ours_rows), "drain3": mean_of(drain_rows)}
    mean = report["mean"]
    report["logwarden_wins"] = all(mean["logwarden"][k] > mean["drain3"][k]
                                   for k in ("GA", "PA", "lines_per_s"))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
