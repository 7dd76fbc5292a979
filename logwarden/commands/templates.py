"""``logwarden templates``: mine templates from a log file into a Loghub-style structured CSV."""
from __future__ import annotations

import argparse
import csv
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


from logwarden.processing.templates import FileTemplateStore, HeaderFormat, MinerConfig, TemplateMiner

logger = logging.getLogger(__name__)

COLUMNS = ("LineId", "Content", "EventId", "EventTemplate")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``templates`` subcommand to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "templates",
        help="mine log templates into a Loghub-style CSV",
        description="Parse each line with a Loghub header format, mine templates online from the "
        "Content and write LineId,Content,EventId,EventTemplate (one row per input line, in order).",
    )
    parser.add_argument("input", metavar="INPUT.log", type=Path, help="log file to read")
    parser.add_argument(
        "--log-format", required=True, metavar="FORMAT",
        help="header format, e.g. '<Date> <Time> <Level> <Component>: <Content>'",
    )
    parser.add_argument("--out", required=True, metavar="OUT.csv", type=Path, help="CSV file to write")
    parser.add_argument(
        "--state-dir", metavar="DIR", type=Path, default=None,
        help="load the miner state from DIR when present and save it back afterwards",
    )
    parser.add_argument(
        "--miner-config", metavar="FILE", type=Path, default=None,
        help="MinerConfig settings as a YAML/JSON mapping (a state in --state-dir keeps its own)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute the command; returns a process exit code."""
    try:
        header = HeaderFormat(args.log_format)
        config = _load_config(args.miner_config)
    except (ValueError, TypeError, OSError) as exc:
        logger.error("%s", exc)
        return 2
    if not args.input.is_file():
        logger.error("input file not found: %s", args.input)
        return 2
    store = FileTemplateStore(args.state_dir) if args.state_dir else None
    miner = store.load_or_create(lambda: TemplateMiner(config)) if store else TemplateMiner(config)
    lines = _mine_to_csv(miner, header, args.input, args.out)
    if store is not None:
        store.save(miner)
    logger.info("wrote %d rows, %d templates to %s", lines, len(miner), args.out)
    return 0


def _load_config(path: Path | None) -> MinerConfig:
    if path is None:
        return MinerConfig()
    from logwarden.common.yamlconf import describe, load_yaml

    doc = load_yaml(path)  # the one YAML loader: duplicate keys, alias bombs refused; ${ENV} expanded
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise doc.error([], f"a miner config must be a mapping, got {describe(data)}")
    try:
        return MinerConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise doc.error([], str(exc)) from None


def _read_lines(path: Path) -> Iterator[str]:
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        for line in handle:
            yield line.rstrip("\r\n")


def _mine_to_csv(miner: TemplateMiner, header: HeaderFormat, source: Path, out: Path) -> int:
    """Mine every line, spooling ids to a temp file; then write rows with the final templates.

    Templates generalise while the file streams, so the final text of each
    template (and the id that absorbed a merged one) is only known at the end.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
        spool_writer = csv.writer(spool)
        for line in _read_lines(source):
            content = header.content(line)
            spool_writer.writerow((content, miner.add(content).template_id))
            count += 1
        spool.seek(0)
        tmp_out = out.with_name(out.name + ".tmp")
        with tmp_out.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for line_id, (content, template_id) in enumerate(csv.reader(spool), start=1):
                info = miner.get(template_id)
                template = info.template if info is not None else content
                writer.writerow((line_id, content, miner.resolve(template_id), template))
        os.replace(tmp_out, out)
    return count
