"""The ``logwarden detect`` subcommand."""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from logwarden.commands import detect as detect_cmd


def run(argv: list[str]) -> tuple[int, str]:
    """Parse ``argv`` with a parser holding only the detect subcommand and run it."""
    parser = argparse.ArgumentParser()
    detect_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    out = io.StringIO()
    return args.func(args, out=out), out.getvalue()


def test_json_output_one_line_per_record(shared_data: Path) -> None:
    code, out = run(["detect", "--json", str(shared_data / "formats/json/lnav/logfile_mixed_json2.json")])
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows[0] == {"line": 1, "format": "json", "confidence": 0.95}
    assert {"line": 4, "format": "logfmt", "confidence": 0.9} in rows
    assert rows[4]["format"] == "text"


def test_summary_for_evtx(shared_data: Path) -> None:
    path = shared_data / "formats/windows/evtx-attack-samples/DE_RDP_Tunnel_5156.evtx"
    code, out = run(["detect", str(path)])
    lines = out.splitlines()
    assert code == 0 and lines[1].split()[:3] == ["windows-event", "101", "100.0%"]


def test_missing_file_exit_code(tmp_path: Path) -> None:
    code, out = run(["detect", str(tmp_path / "missing.log")])
    assert code == 2 and out == ""
