"""The ``logwarden templates`` command writes the Loghub structured-CSV layout."""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from logwarden.commands import templates as command

LOG_FORMAT = "<Date> <Time> <Level> <Component>: <Content>"
LINES = [
    "17/06/09 20:10:40 INFO executor.Backend: Running task 1.0 in stage 0.0 (TID 1)",
    "17/06/09 20:10:41 INFO executor.Backend: Running task 2.0 in stage 0.0 (TID 2)",
    "this line has no header at all",
    "17/06/09 20:10:42 WARN storage.Memory: Block rdd_2_1 stored as bytes in memory",
]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="logwarden")
    command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_writes_loghub_layout(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "app.csv"
    args = parse(["templates", "--log-format", LOG_FORMAT, str(log), "--out", str(out)])
    assert args.func is command.run
    assert command.run(args) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == ["LineId", "Content", "EventId", "EventTemplate"]
    rows = read_rows(out)
    assert [r["LineId"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["Content"] == "Running task 1.0 in stage 0.0 (TID 1)"
    assert rows[0]["EventId"] == rows[1]["EventId"]
    assert rows[0]["EventTemplate"] == "Running task <*> in stage <*> (TID <*>)"
    assert rows[2]["Content"] == "this line has no header at all"
    assert len({r["EventId"] for r in rows}) == 3


def test_state_dir_keeps_ids_across_runs(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("\n".join(LINES), encoding="utf-8")
    state = tmp_path / "state"
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    for out in (first, second):
        argv = ["templates", "--log-format", LOG_FORMAT, str(log), "--out", str(out),
                "--state-dir", str(state)]
        assert command.run(parse(argv)) == 0
    assert (state / "templates_state.json").is_file()
    assert [r["EventId"] for r in read_rows(first)] == [r["EventId"] for r in read_rows(second)]


def test_bad_input_returns_error_code(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    assert command.run(parse(["templates", "--log-format", LOG_FORMAT, str(tmp_path / "missing.log"),
                              "--out", str(out)])) == 2
    log = tmp_path / "a.log"
    log.write_text("x\n", encoding="utf-8")
    assert command.run(parse(["templates", "--log-format", "<Date> only", str(log), "--out", str(out)])) == 2
    assert not out.exists()


def test_miner_config_file(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("\n".join(LINES), encoding="utf-8")
    config = tmp_path / "miner.yaml"
    config.write_text("masks: []\ncollapse_wildcards: false\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    argv = ["templates", "--log-format", LOG_FORMAT, str(log), "--out", str(out),
            "--miner-config", str(config)]
    assert command.run(parse(argv)) == 0
    rows = read_rows(out)
    # Without masks only the differing parts of tokens generalise.
    assert rows[0]["EventTemplate"] == "Running task <*>.0 in stage 0.0 (TID <*>)"
    config.write_text("no_such_option: 1\n", encoding="utf-8")
    assert command.run(parse(argv)) == 2
